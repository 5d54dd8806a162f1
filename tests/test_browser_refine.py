"""A session in a real browser: search, pick references, generate (Ctrl+Enter), refine twice, branch
from version 1, save the session; the saved versions are searchable and know their parents.

Also: both paid buttons are locked while a request runs, a retry is announced in words, the model
picker sets the reference cap, and on a 1280x720 screen the references, the prompt, Generate and
the newest result are all in view. Screenshots at 1280x720 and at phone size go to
test-artifacts/screenshots/ (docs/screenshots/ with UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import Reply, rate_limit_reply, signed_reply
from tests.test_browser import SHOTS, browser, search_and_pick  # noqa: F401  (browser: the module's Chromium)
from ui.common import display_name

pytestmark = pytest.mark.browser

FLASH, PRO = "gemini-3.1-flash-image", "gemini-3-pro-image"


def slow(reply: Reply, seconds: float) -> Reply:
    return Reply(status=reply.status, body=reply.body, delay=seconds)


def in_view(page, selector: str, height: int = 720) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def versions_shown(page, n: int) -> None:
    page.get_by_text(f"Versions of this session ({n})").wait_for(timeout=60_000)


def refine(page, text: str) -> None:
    page.locator("#refine-box textarea").fill(text)
    page.locator("#refine-button").click()


def test_search_generate_refine_branch_save(browser, tmp_path: Path, embedder, fake_gemini) -> None:  # noqa: F811
    fake_gemini.models = [FLASH, PRO]
    settings = test_settings(tmp_path, gemini_api_key="browser-refine-key", gemini_base_url=fake_gemini.base_url,
                             gemini_retries=1)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    art = sorted((SAMPLE / "transportation").iterdir())
    fake_gemini.push(
        signed_reply(art[0].read_bytes(), b"sig-v1", text="A first take."),
        slow(signed_reply(art[1].read_bytes(), b"sig-v2"), 2.5),
        rate_limit_reply("3s"), signed_reply(art[2].read_bytes(), b"sig-v3"),
        signed_reply(art[3].read_bytes(), b"sig-v4"),
    )
    SHOTS.mkdir(parents=True, exist_ok=True)

    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        search_and_pick(page, "a bowl of soup", 2)
        page.get_by_role("button", name="Use in Generate →").click()
        page.get_by_text(re.compile(r"2 of 14 references from the library")).wait_for(timeout=10_000)

        page.locator("#prompt textarea").fill("These dishes as a toy car")
        page.locator("#prompt textarea").press("Control+Enter")  # the keyboard runs Generate
        versions_shown(page, 1)
        assert page.get_by_text("A first take.").is_visible()

        refine(page, "now make it red")
        page.wait_for_function("() => document.querySelector('#generate-button').disabled"
                               " && document.querySelector('#refine-button').disabled", timeout=5_000)
        versions_shown(page, 2)

        page.locator("#refine-box textarea").fill("add racing stripes")
        page.locator("#refine-box textarea").press("Control+Enter")  # the keyboard runs Refine too
        page.get_by_text(re.compile(r"retrying in 3 s \(attempt 2 of 2\)")).first.wait_for(timeout=10_000)
        versions_shown(page, 3)
        page.get_by_text("v3 · add racing stripes").first.wait_for(timeout=10_000)
        page.evaluate("window.scrollTo(0, 0)")
        for selector in ("#generate-button", "#prompt", "#version-view", "#refine-box"):
            assert in_view(page, selector), f"{selector} is not visible at 1280x720"
        page.screenshot(path=str(SHOTS / "generate.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url)
        phone.get_by_role("tab", name="Generate").click()
        phone.get_by_text("Recent sessions").click()
        phone.locator("#generate-shortcuts").wait_for(state="attached")
        page.bring_to_front()

        page.locator("#version-strip button.thumbnail-item").nth(0).click()  # back to v1: the next turn branches
        page.get_by_text("Refine v1").wait_for(timeout=10_000)
        refine(page, "make it a convertible")
        versions_shown(page, 4)
        # Issue 26.12: a branch says where it came from, and the strip shows whole thumbnails
        page.locator("#version-strip").get_by_text("v4 from v1 · make it a convertible").wait_for(timeout=10_000)
        strip = page.locator("#version-strip").bounding_box()
        last = page.locator("#version-strip button.thumbnail-item").nth(3).bounding_box()
        assert last["y"] + last["height"] <= strip["y"] + strip["height"], (last, strip)
        branch = fake_gemini.requests[-1]
        assert branch.signatures() == [b"sig-v1"] and "now make it red" not in branch.texts()

        page.locator("#save-session").click()
        page.get_by_text(re.compile(r"Saved: 4 added")).wait_for(timeout=60_000)
        assert page.get_by_text(re.compile(r"v2 \(from v1\), v3 \(from v2\), v4 \(from v1\)")).is_visible()

        page.locator("#model-picker input").click()
        page.get_by_role("option", name=re.compile("Nano Banana Pro")).click()
        page.get_by_text(re.compile(r"2 of 14 references from the library")).wait_for(timeout=10_000)

        page.get_by_role("tab", name="History").click()
        page.get_by_text(re.compile(r"Spent today: \$0\.26\d")).wait_for(timeout=10_000)
        thumbnails = page.locator("#history-table img")
        thumbnails.nth(3).wait_for(timeout=10_000)  # one per request that made an image
        assert page.locator("#history-table").get_by_text("failed").count() == 0  # the 429 was retried, not lost
        page.screenshot(path=str(SHOTS.parent.parent / "test-artifacts" / "history.png"), full_page=True)

        _phone_shot(phone)
        page.close()

    generated = studio.search("a toy car", sources=["generated"], k=10)
    assert len(generated) == 4
    by_version = {h.asset.meta["provenance"]["version"]: h.asset for h in generated}
    references = {r["id"] for r in by_version["v1"].meta["provenance"]["references"]}
    assert len(references) == 2 and {a.id for a in studio.asset(by_version["v1"].id).parents} == references
    # a branch's parents: the version it refines and the references behind it, never its siblings
    assert {a.id for a in studio.asset(by_version["v4"].id).parents} == {by_version["v1"].id} | references
    assert by_version["v3"].meta["parents"][0] == by_version["v2"].id
    assert re.fullmatch(r"these-dishes-as-a-toy-car-v3-[0-9a-f]{24}\.png", by_version["v3"].filename)  # its own random part
    assert display_name(by_version["v3"]) == "v3 · add racing stripes"  # the grid's caption: the number first
    studio.close()


def _phone_shot(phone) -> None:
    """The phone reopens the session (from Recent sessions) and is photographed with its strip."""
    recent = phone.locator("input[aria-label='Reopen a session to continue it']")
    recent.click()
    phone.get_by_role("option").first.click()
    phone.get_by_role("button", name="Open", exact=True).click()
    versions_shown(phone, 4)
    phone.screenshot(path=str(SHOTS / "generate-phone.png"), full_page=True)
    phone.close()

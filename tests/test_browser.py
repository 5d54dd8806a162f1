"""The app in a real browser: Debian's headless Chromium driven by Playwright.

Upload an image, search, pick a result as a reference, switch to Generate and see it there.
Screenshots of each tab land in test-artifacts/screenshots/, and with UPDATE_SCREENSHOTS=1 in
docs/screenshots/, which the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rag.search.rank import CUES
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import ROOT, SAMPLE, test_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-artifacts") / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: apt-get install chromium (.ci/run does)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        yield b
        b.close()


def search_and_pick(page, query: str, picks: int) -> None:  # noqa: ANN001 - a Playwright page
    """On the Search tab: search, then open each of the first ``picks`` results and press "Add to references"."""
    page.get_by_role("tab", name="Search").click()
    page.get_by_label("Describe what you are looking for").fill(query)
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#search-results button.thumbnail-item")
    results.nth(picks - 1).wait_for(timeout=60_000)
    for n in range(picks):  # a result opens its page; picking it is a button there
        results.nth(n).click()
        page.locator("#asset-pick").click()
        page.get_by_text(re.compile(rf"{n + 1} of \d+")).first.wait_for(timeout=10_000)
        page.locator("#asset-close").click()


def test_upload_search_select_generate(browser, tmp_path: Path, embedder) -> None:
    studio = Studio(test_settings(tmp_path), embedder=embedder)
    studio.ingest_folder(SAMPLE)  # a realistic library to search in
    upload = sorted((SAMPLE / "food").iterdir())[0]
    upload_copy = tmp_path / "my_new_asset.png"
    upload_copy.write_bytes(upload.read_bytes() + b"\0")  # new bytes, so not a duplicate of the sample
    SHOTS.mkdir(parents=True, exist_ok=True)
    expected = studio.count() + 1

    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        page.get_by_role("tab", name="Library").click()
        page.locator("input[type=file]").first.set_input_files(str(upload_copy))  # adding starts on drop
        page.locator("#library-count", has_text=f"{expected} images").wait_for(timeout=60_000)
        assert page.get_by_text(re.compile(r"1 added, 0 already in the library")).first.is_visible()
        page.get_by_text("my_new_asset.png", exact=True).first.wait_for(timeout=10_000)

        page.get_by_role("tab", name="Search").click()
        page.get_by_label("Describe what you are looking for").fill("a bowl of soup")
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_text("12 results").wait_for(timeout=60_000)
        results = page.locator("#search-results button.thumbnail-item")
        results.first.wait_for()
        page.evaluate("window.scrollTo(0, 0)")  # Issue 26.11: a row of results above the fold at 1280x720
        first = results.first.bounding_box()
        assert first["y"] + first["height"] <= 720, first
        page.set_viewport_size({"width": 390, "height": 844})  # and on a phone the caption is under the picture
        picture, caption = (results.first.locator(part).bounding_box() for part in ("img", ".caption-label"))
        assert caption["y"] >= picture["y"] + picture["height"] - 1, (picture, caption)
        page.set_viewport_size({"width": 1280, "height": 720})
        first_caption = results.first.inner_text().split(" · ")[0].strip()
        # Issue 26.7: each caption's label comes from the relevance that ordered it, so labels never rise
        cues = [c.split(" · ")[-2] for c in results.all_inner_texts()]
        ladder = [cue for _, cue in CUES]
        assert [ladder.index(c) for c in cues] == sorted(ladder.index(c) for c in cues), cues
        assert all(c.endswith(" · picture") or " · words" in c for c in results.all_inner_texts())
        results.first.click()  # opens the result's page; picking it is a button there
        page.locator("#asset-pick").click()
        page.get_by_text(re.compile(r"1 of \d+")).first.wait_for(timeout=10_000)
        page.locator("#asset-close").click()

        # Issue 26.7: the file named like the query ranks first and its label says so, above the pictures
        page.get_by_label("Describe what you are looking for").fill("honey")
        page.get_by_role("button", name="Search", exact=True).click()
        page.locator("#search-status", has_text="1 with matching words").wait_for(timeout=60_000)
        assert "honey.png · food · best match · words" in results.first.inner_text()
        cues = [c.split(" · ")[-2] for c in results.all_inner_texts()]
        assert [ladder.index(c) for c in cues] == sorted(ladder.index(c) for c in cues), cues
        # Issue 26.8: the cut-off is in words, and the strictest keeps the image that holds every word
        page.locator("#search-cutoff input").click()
        page.get_by_role("option", name="Only the best").click()
        page.get_by_role("button", name="Search", exact=True).click()
        page.locator("#search-status", has_text="hidden by the cut").wait_for(timeout=60_000)
        assert "honey.png · food · best match · words" in results.first.inner_text()

        page.get_by_role("button", name="Use in Generate →").click()
        page.get_by_text(re.compile(r"1 of \d+.*references from the library")).wait_for(timeout=10_000)
        assert page.get_by_text("Generation is off").is_visible()
        assert first_caption
        page.close()


def test_generate_and_save_in_the_browser(browser, tmp_path: Path, embedder, fake_gemini) -> None:
    from tests.fake_gemini import image_reply

    settings = test_settings(tmp_path, gemini_api_key="browser-test-key", gemini_base_url=fake_gemini.base_url)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    result_png = (SAMPLE / "food" / sorted(p.name for p in (SAMPLE / "food").iterdir())[1]).read_bytes()
    fake_gemini.push(image_reply(result_png, text="Here is your banana-themed product shot."))

    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        search_and_pick(page, "a bowl of soup", 2)
        page.get_by_role("button", name="Use in Generate →").click()
        page.get_by_text(re.compile(r"2 of \d+.*references from the library")).wait_for(timeout=10_000)
        assert page.get_by_text("Generation is on").is_visible()
        page.get_by_label("Prompt").fill("These dishes as a banana-themed menu photo")
        page.get_by_role("button", name="Generate", exact=True).click()
        page.get_by_text("Here is your banana-themed product shot.").wait_for(timeout=60_000)
        page.get_by_role("button", name="Save to library").click()
        page.get_by_text(re.compile(r"Saved: 1 added")).wait_for(timeout=60_000)
        # The documented Generate shot is test_browser_refine's; this one (after a save) stays an artifact.
        (ROOT / "test-artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "test-artifacts" / "screenshots" / "generate-saved.png"), full_page=True)
        page.close()
    request = fake_gemini.requests[-1]
    assert len(request.inline()) == 2 and "banana-themed menu" in " ".join(request.texts())
    assert studio.stats()["by_source"].get("generated") == 1


def test_generate_pays_once_and_save_follows_what_is_shown(browser, tmp_path: Path, embedder, fake_gemini) -> None:
    """Impatient clicks send one paid request; after a failed run, Save cannot save the previous images."""
    from tests.fake_gemini import Reply, error_reply, image_reply

    settings = test_settings(tmp_path, gemini_api_key="browser-test-key", gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    png = sorted((SAMPLE / "food").iterdir())[0].read_bytes()
    slow = image_reply(png, text="Slow but worth it.")
    fake_gemini.push(Reply(status=slow.status, body=slow.body, delay=3.0))

    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        page.get_by_role("tab", name="Generate").click()
        page.get_by_label("Prompt").fill("A banana on a marble counter")
        go, save = page.locator("#generate-button"), page.locator("#save-generated")
        for _ in range(3):
            go.click(force=True, no_wait_after=True)
        page.get_by_text("Slow but worth it.").wait_for(timeout=60_000)
        assert len(fake_gemini.requests) == 1
        page.wait_for_function("() => !document.querySelector('#generate-button').disabled", timeout=10_000)
        assert save.is_enabled()

        fake_gemini.push(error_reply(503, "UNAVAILABLE", "The model is overloaded."))
        go.click()
        page.get_by_text("Nothing was generated.").wait_for(timeout=60_000)
        assert len(fake_gemini.requests) == 2
        assert save.is_disabled() and page.locator("#generate-button").is_enabled()
        assert page.get_by_text("Slow but worth it.").count() == 0
        page.close()
    assert studio.count() == 0

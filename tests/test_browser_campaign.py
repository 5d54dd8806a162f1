"""A campaign in a real browser: three products from a folder, the cost shown before it runs, review, approve
two, save; they are in the library with their parents and the campaign's name. On the way, a result whose text
differs and a reviewer's verdict from a review link: the filter holds through a mark, the reviewer's verdict shows
on its tile until accepted, Approve the rest approves only what the filter shows, and each review button is off
with a word of why while it has nothing to do. Also the API endpoints.
Screenshots at 1280x720 and phone size go to test-artifacts/screenshots/ (docs/ with UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from gradio_client import Client
from playwright.sync_api import Page, expect

from rag.generation import read_provenance
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply
from tests.test_browser import SHOTS, browser  # noqa: F401  (browser: the module's Chromium)

pytestmark = pytest.mark.browser
PRODUCTS = sorted((SAMPLE / "food").iterdir())[:3]


@pytest.fixture
def three(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    (tmp_path / "lib" / "teas").mkdir(parents=True)
    for p in PRODUCTS:
        shutil.copy(p, tmp_path / "lib" / "teas" / p.name)
    settings = test_settings(tmp_path / "data", gemini_api_key="browser-campaign-key", gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(tmp_path / "lib")
    art = sorted((SAMPLE / "transportation").iterdir())
    fake_gemini.route = lambda r: image_reply(art[len(" ".join(r.texts())) % len(art)].read_bytes())
    yield studio
    studio.close()


def test_campaign_review_approve_two_and_save(browser, three: Studio, fake_gemini: FakeGemini) -> None:  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(three) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        page.get_by_role("tab", name="Campaigns").click()
        page.locator("#campaign-name textarea").fill("Tea launch")
        page.locator("#campaign-source textarea").fill("teas")
        three.settings = replace(three.settings, gemini_daily_budget_usd=0.05)  # the plan (about $0.20) is over it
        page.locator("#campaign-preview").click()
        page.get_by_text(re.compile(r"Over today's budget: Run now waits")).wait_for(timeout=30_000)
        expect(page.locator("#campaign-run")).to_be_disabled()
        three.settings = replace(three.settings, gemini_daily_budget_usd=None)
        page.locator("#campaign-preview").click()
        page.get_by_text(re.compile(r"3 requests \(3 images\) on gemini-3.1-flash-image: about \$0\.20; no daily")).wait_for(timeout=30_000)
        expect(page.locator("#campaign-run")).to_be_enabled()
        expect(page.locator("#campaign-save")).to_be_disabled()  # nothing to act on yet, and the page says why
        assert fake_gemini.requests == []
        page.locator("#campaign-run").click()
        page.get_by_text(re.compile(r"Tea launch\*\* · done · 3 of 3 done|Tea launch · done · 3 of 3 done")).wait_for(timeout=90_000)
        tiles = page.locator("#campaign-review .tile.result")
        assert tiles.count() == 3 and page.locator("#campaign-review .tile.source").count() == 3
        page.get_by_text(re.compile(r"press P to approve")).wait_for(timeout=10_000)
        expect(page.locator("#campaign-save")).to_be_disabled()
        _filter_and_reviewer(page, three)
        tiles.nth(0).hover()
        tiles.nth(0).get_by_role("button", name="Approve").click()  # the mark on the picture; the next comes into focus
        expect(tiles.nth(1)).to_be_focused(timeout=30_000)
        page.keyboard.press("p")  # Lightroom's keys: P approves the tile in focus, X rejects
        expect(page.locator("#campaign-review .tile.approved")).to_have_count(2, timeout=30_000)
        tiles.nth(2).click()
        page.keyboard.press("x")
        expect(page.locator("#campaign-review .tile.rejected")).to_have_count(1, timeout=30_000)
        expect(page.locator("#campaign-approve")).to_be_disabled()  # every result has a verdict
        expect(page.locator("#campaign-again")).to_be_enabled()
        page.screenshot(path=str(SHOTS / "campaign.png"), full_page=True)
        page.locator("#review-accept").click()  # the reviewer's verdict becomes the review's; its line goes
        page.get_by_text("Took 1 reviewer verdict(s) into the review.").wait_for(timeout=30_000)
        expect(page.locator("#campaign-review .reviewer")).to_have_count(0, timeout=30_000)
        expect(page.locator("#review-accept")).to_be_disabled()
        page.locator("#campaign-save").click()
        page.get_by_text("Saved 2 approved images to campaigns/Tea launch.").wait_for(timeout=60_000)
        expect(page.locator("#campaign-review .tile.saved")).to_have_count(2, timeout=30_000)
        expect(page.locator("#campaign-save")).to_be_disabled()  # nothing new to save, and the review stays
        assert page.locator(".error").count() == 0
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url)
        phone.locator(".overflow-menu button").first.click()  # five tabs: the last ones fold into a menu on a phone
        phone.locator(".overflow-dropdown").get_by_text("Campaigns").click()
        phone.locator("#campaign-picker input").click()
        phone.get_by_role("option").first.click()
        phone.locator("#campaign-open").click()
        expect(phone.locator("#campaign-review .tile.saved")).to_have_count(2, timeout=30_000)
        phone.screenshot(path=str(SHOTS / "campaign-phone.png"), full_page=True)
        phone.close()
        page.close()
    saved = three.campaign_assets(tag="campaign:Tea launch")[0]
    sources = {a.id for a in three.campaign_assets(folder="teas")[0]}
    assert len(saved) == 2 and all(a.meta["campaign"] == "Tea launch" and a.folder == "campaigns/Tea launch" for a in saved)
    assert all(len(a.meta["parents"]) == 1 and a.meta["parents"][0] in sources for a in saved)
    assert len(fake_gemini.requests) == 3


def _filter_and_reviewer(page: Page, studio: Studio) -> None:
    """The first result's text reads wrong and a reviewer rejects the third, outside the page; Refresh shows both."""
    guide, accept, again_text = (page.locator(f"#{e}") for e in ("campaign-guide", "review-accept", "campaign-again-text"))
    expect(again_text).to_be_disabled()  # no result's text differs, no reviewer has spoken: both off, and why
    expect(accept).to_be_disabled()
    expect(guide).to_contain_text("No result's text differs from what its prompt quotes. No reviewer's verdict waits to be "
                                  "accepted.")
    (campaign,) = studio.campaigns()
    versions = [v for i in studio.campaign_review(campaign.id).items for v in i.version_ids]
    studio.sessions.record_text_checks({versions[0]: ("text differs", "text differs: 'Acrne Oolong'", ["Acme Oolong"],
                                                      ["Acrne Oolong"])})  # what the OCR check records (test_ocr.py)
    link = studio.reviews.door(studio.reviews.share(campaign=campaign.id, comments=True).token)
    studio.reviews.note(link, "Jane (client)", "3:rejected", {3: "<i>too dark</i>"})
    page.locator("#review-refresh").click()
    tiles = page.locator("#campaign-review .tile.result")
    expect(tiles.nth(2).locator(".reviewer")).to_have_text("Reviewer: ✗ — <i>too dark</i>", timeout=30_000)  # as text
    expect(page.locator("#campaign-review .tile.rejected")).to_have_count(0)  # not the owner's verdict until accepted
    expect(accept).to_be_enabled()
    expect(again_text).to_be_enabled()
    page.locator("#campaign-text-differs input").check()
    expect(tiles).to_have_count(1, timeout=30_000)
    approve, approved, hidden = (page.locator("#campaign-approve"), page.locator("#campaign-review .tile.approved"),
                                 "Approve the rest approves only the results shown: 2 hidden by the filter wait for a verdict.")
    expect(guide).to_contain_text(hidden)
    approve.click()  # what is shown, not the two the filter hides
    expect(approved).to_have_count(1, timeout=30_000)
    expect(approve).to_be_disabled()
    expect(guide).to_contain_text(f"No result shown waits for a verdict. {hidden}")
    tiles.nth(0).click()
    page.keyboard.press("x")
    expect(page.locator("#campaign-review .tile.rejected")).to_have_count(1, timeout=30_000)
    expect(tiles).to_have_count(1)  # the mark drew the sheet again, and the filter still holds
    assert "text differs: 'Acrne Oolong'" in tiles.nth(0).inner_text()
    page.locator("#campaign-text-differs input").uncheck()
    expect(tiles).to_have_count(3, timeout=30_000)
    expect(approved).to_have_count(0)  # the two the filter hid still wait, and Approve the rest is for them now
    expect(approve).to_be_enabled()
    expect(guide).not_to_contain_text("hidden by the filter")
    tiles.nth(1).click()
    page.keyboard.press("x")  # its text is as asked: the filter hides it, and the paid button says it will remake it
    expect(page.locator("#campaign-review .tile.rejected")).to_have_count(2, timeout=30_000)
    page.locator("#campaign-text-differs input").check()
    expect(guide).to_contain_text("Regenerate rejected also remakes 1 rejected result the filter hides.", timeout=30_000)
    page.locator("#campaign-text-differs input").uncheck()
    expect(tiles).to_have_count(3, timeout=30_000)
    expect(guide).not_to_contain_text("the filter hides")


def test_campaign_api(three: Studio, fake_gemini: FakeGemini) -> None:
    with running_app(three) as url:
        client = Client(url, verbose=False)
        found = client.predict("a cup of tea", 2, "", api_name="/find_references")
        assert [f["id"] for f in found] == [h.asset.id for h in three.search("a cup of tea", k=2)]
        made = client.predict("a cup of tea", [], "1:1", 1, "", "", "", 2, api_name="/generate")
        assert len(fake_gemini.requests[-1].inline()) == 2 and len(made["images"]) == 1
        fake_gemini.requests.clear()
        plan = client.predict("{name}, ad", "teas", "", "", [], [], ["1:1", "9:16"], 1, "", "API line",
                              api_name="/plan_campaign")
        assert len(plan["requests"]) == 6 and fake_gemini.requests == []
        made = client.predict("{name}, ad", "teas", "", "", [], [], ["1:1"], 1, "", "API line", api_name="/run_campaign")
        assert made["status"] == "done" and [i["status"] for i in made["items"]] == ["done"] * 3
        first = made["items"][0]["version_ids"][0]
        client.predict(made["id"], [first], "approved", api_name="/review_campaign")
        ids = client.predict(made["id"], api_name="/save_approved")
        assert three.get(ids)[0].meta["campaign"] == "API line"
        second = made["items"][1]
        three.sessions.record_text_checks({second["version_ids"][0]: ("text differs", "text differs: 'Acrne'", ["Acme"],
                                                                      ["Acrne"])})  # what the OCR check records
        sent = len(fake_gemini.requests)
        again = client.predict(made["id"], api_name="/regenerate_campaign")  # where text differs, as the tab and CLI
        assert again["regenerated"] == [second["seq"]] and len(fake_gemini.requests) == sent + 1
        assert len(again["items"][1]["version_ids"]) == 2 and again["text_checks"] == {second["version_ids"][0]: "text differs: 'Acrne'"}
        assert client.predict(made["id"], "rejected", api_name="/regenerate_campaign")["regenerated"] == []
        with pytest.raises(Exception, match="or those whose text differs, not 'sideways'"):
            client.predict(made["id"], "sideways", api_name="/regenerate_campaign")
        assert len(fake_gemini.requests) == sent + 1
        assert [c["id"] for c in client.predict(api_name="/campaigns")] == [made["id"]]
        with pytest.raises(Exception, match="not a campaign here"):
            client.predict("nope", api_name="/campaign")
        fake_gemini.batch_states = ["BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]
        job = client.predict("{name}, batch", "teas", "", "", [], [], ["4:5"], 1, "", "API batch",
                             api_name="/submit_campaign_batch")
        assert (job["status"], job["batch_job"], len(fake_gemini.batches[job["batch_job"]])) == ("batch", "batches/job1", 3)
        assert client.predict(job["id"], api_name="/resume_campaign")["status"] == "batch"  # still running
        landed = client.predict(job["id"], api_name="/resume_campaign")
        assert landed["status"] == "done" and all(len(i["version_ids"]) == 1 for i in landed["items"])


def test_find_references_fills_the_tray_and_the_provenance_says_so(browser, three: Studio,  # noqa: F811
                                                                     fake_gemini: FakeGemini) -> None:
    prompt = "a hot cup of tea on a table"
    top = [h.asset.id for h in three.search(prompt, k=3)]
    with running_app(three) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        page.get_by_role("tab", name="Generate").click()
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#find-references").click()
        page.get_by_text(re.compile(r"3 of 14 references from the library")).wait_for(timeout=30_000)
        page.locator("#generate-button").click()
        page.get_by_text("Versions of this session (1)").wait_for(timeout=60_000)
        page.close()
    (request,) = fake_gemini.requests
    assert len(request.inline()) == 3
    (session,) = three.recent_sessions()
    (version,) = three.open_session(session.id)[1]
    assert read_provenance(version.path)["references_found"] == {"query": prompt, "ids": top}

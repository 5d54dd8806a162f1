"""A review link in real browsers (issue 30): alice, signed in, shares her campaign from the Campaigns tab; a
stranger opens the link on a phone, approves two results and comments on one (with markup, shown as text); alice
sees both in the campaign review and takes them over; once she revokes it the link reads "not valid", and neither
another token nor the app's other pages and files open for the stranger. Screenshot: review-phone.png."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply
from tests.test_browser import SHOTS, browser  # noqa: F401  (browser: the module's Chromium)
from tests.test_browser_users import signed_in

pytestmark = pytest.mark.browser
COMMENT = "Warmer light please <script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"


@pytest.fixture
def teas(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    (tmp_path / "lib" / "teas").mkdir(parents=True)
    for p in sorted((SAMPLE / "food").iterdir())[:3]:
        shutil.copy(p, tmp_path / "lib" / "teas" / p.name)
    (tmp_path / "team.txt").write_text("alice:wonder-1\n")
    art = sorted((SAMPLE / "transportation").iterdir())
    fake_gemini.route = lambda r: image_reply(art[len(" ".join(r.texts())) % len(art)].read_bytes())
    settings = test_settings(tmp_path / "data", gemini_api_key="browser-review-key", gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0, users_file=str(tmp_path / "team.txt"))
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(tmp_path / "lib")
    plan = studio.plan_campaign("{name}, a premium ad", folder="teas", name="Tea launch", user="alice")
    studio.run_campaign(studio.start_campaign(plan).id, user="alice")
    yield studio
    studio.close()


def test_a_stranger_reviews_a_campaign_from_a_link_on_a_phone(browser, teas: Studio) -> None:  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(teas) as url:
        alice = signed_in(browser, url, "alice", "wonder-1")
        alice.get_by_role("tab", name="Campaigns").click()
        alice.locator("#campaign-picker input").click()
        alice.get_by_role("option").first.click()
        alice.locator("#campaign-open").click()
        alice.locator("#share-campaign").get_by_text("Share for review").click()
        alice.locator("#share-campaign-make").click()
        link = alice.locator("#share-campaign-url textarea")
        expect(link).to_have_value(re.compile(r"/review/[A-Za-z0-9_-]{43}$"), timeout=30_000)
        address = link.input_value()

        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2).new_page()
        phone.goto(address)
        expect(phone.get_by_role("heading", name="For review: Tea launch")).to_be_visible()
        expect(phone.locator("section.item img")).to_have_count(3)
        phone.locator("#reviewer").fill("Jane (client)")
        phone.locator("#item-1").get_by_role("button", name="Approve").click()
        expect(phone.locator("#item-1 .verdict")).to_contain_text("Approved by Jane (client)")
        expect(phone.locator("#reviewer")).to_have_value("Jane (client)")  # typed once
        phone.locator("#item-2").get_by_role("button", name="Approve").click()
        expect(phone.locator("#item-2 .verdict")).to_contain_text("Approved by Jane (client)")
        phone.locator("#comment-3").fill(COMMENT)
        phone.locator("#item-3").get_by_role("button", name="Comment").click()
        expect(phone.locator("#item-3 ul.notes")).to_contain_text(COMMENT)  # as text, not markup
        assert phone.evaluate("window.__xss") is None and phone.locator("section.item img").count() == 3
        phone.screenshot(path=str(SHOTS / "review-phone.png"), full_page=True)

        alice.locator("#review-refresh").click()
        feedback = alice.locator("#review-feedback")
        expect(feedback.get_by_text("Approved by Jane (client)")).to_have_count(2, timeout=30_000)
        expect(feedback).to_contain_text(COMMENT)
        assert alice.evaluate("window.__xss") is None and feedback.locator("img, script").count() == 0
        alice.locator("#review-accept").click()
        expect(alice.locator("#review-accepted")).to_contain_text("Took 2 reviewer verdict(s)", timeout=30_000)
        alice.locator("#review-revoke").click()
        expect(alice.locator("#review-links input")).to_have_value(re.compile("revoked"), timeout=30_000)

        phone.reload()
        expect(phone.get_by_text("This link is not valid")).to_be_visible()
        token = address.rsplit("/", 1)[1]
        for elsewhere in (address.replace(token, token[::-1]), f"{address}/img/1"):
            assert phone.goto(elsewhere).status == 404 and phone.get_by_text("This link is not valid").is_visible()
        preview = teas.preview(teas.campaign_assets(folder="teas")[0][0])
        assert phone.request.get(f"{url}gradio_api/file={preview}").status in (401, 403)  # the app's files: sign-in
        phone.goto(url)
        expect(phone.get_by_label("username")).to_be_visible()  # the app itself: sign-in, as before
    review = teas.campaign_review(teas.campaigns(user="alice")[0].id, user="alice")
    verdicts = [review.verdicts.get(v, ("",))[0] for i in review.items for v in i.version_ids]
    assert verdicts.count("approved") == 2 and "rejected" not in verdicts

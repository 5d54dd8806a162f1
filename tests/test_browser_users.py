"""Two users in real browsers (``--users FILE``): a wrong password is refused, alice's session is in
her Generate tab and History, and bob, signed in beside her, sees neither; the library is shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import image_reply, png_bytes
from tests.test_browser import SHOTS, browser  # noqa: F401  (browser: the module's Chromium)

pytestmark = pytest.mark.browser


def signed_in(browser, url: str, user: str, password: str):  # noqa: ANN001, ANN201, F811 - Playwright objects
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.get_by_role("tab", name="Generate").wait_for(timeout=30_000)
    return page


def sessions_offered(page) -> list[str]:  # noqa: ANN001
    page.get_by_role("tab", name="Generate").click()
    recent = page.locator("input[aria-label='Reopen a session to continue it']")
    if not recent.is_visible():
        page.get_by_text("Recent sessions").click()
    recent.click()
    options = page.get_by_role("option")
    page.wait_for_timeout(500)
    texts = [options.nth(i).inner_text() for i in range(options.count())]
    page.keyboard.press("Escape")
    return texts


def test_each_user_sees_only_their_own_work(browser, tmp_path: Path, embedder, fake_gemini) -> None:  # noqa: F811
    users = tmp_path / "team.txt"
    users.write_text("alice:wonder-1\nbob:builder-2\n")
    settings = test_settings(tmp_path, gemini_api_key="browser-users-key", gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0, users_file=str(users))
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    fake_gemini.push(image_reply(png_bytes()))
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(studio) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.goto(url)
        page.get_by_label("username").fill("alice")
        page.get_by_label("password").fill("not-her-password")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect Credentials", exact=False).wait_for(timeout=15_000)
        page.screenshot(path=str(SHOTS / "sign-in-refused.png"))

        alice = signed_in(browser, url, "alice", "wonder-1")
        alice.get_by_role("tab", name="Generate").click()
        alice.locator("#prompt textarea").fill("A lemon on a marble counter")
        alice.locator("#generate-button").click()
        alice.get_by_text("Versions of this session (1)").wait_for(timeout=60_000)
        assert any("A lemon on a marble counter" in t for t in sessions_offered(alice))

        bob = signed_in(browser, url, "bob", "builder-2")
        assert not any("lemon" in t for t in sessions_offered(bob))
        bob.get_by_role("tab", name="History").click()
        # Issue 26.15: who is signed in, a way out, and which totals are the team's
        bob.locator("#history-budget").get_by_text("Spent today by the whole team").wait_for(timeout=15_000)
        assert "your own requests" in bob.locator("#history-budget").inner_text()
        assert bob.locator("#signed-in").inner_text().startswith("Signed in as bob")
        assert "lemon" not in bob.locator("#history-table").inner_text().lower()
        bob.get_by_role("tab", name="Library").click()
        bob.locator("#library-grid button.thumbnail-item").first.wait_for(timeout=30_000)  # the library is shared
        alice.get_by_role("tab", name="History").click()
        alice.wait_for_function("() => document.querySelector('#history-table').innerText.includes('A lemon on a marble')",
                                timeout=15_000)
        bob.locator("#signed-in").get_by_role("link", name="Sign out").click()
        bob.get_by_role("button", name="Login").wait_for(timeout=15_000)  # signed out: the sign-in page again
    studio.close()

"""The library as a user meets it, in headless Chromium: first run, the grid and its filters, an
asset page, "More like this", picking references (with the cap refused where the user looks),
generating and saving, then the lineage both ways; and upload on drop, the table and the Trash.

Screenshots land in test-artifacts/screenshots/, and with UPDATE_SCREENSHOTS=1 in docs/screenshots/
(library.png, search.png, asset.png, generate-edit.png at 1280x720, library-phone.png at 390x844).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from rag.library import LibraryFilter
from rag.studio import Studio
from tests import test_browser
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.test_browser import CHROMIUM, SHOTS

browser = test_browser.browser  # the same module-scoped Chromium fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: apt-get install chromium (.ci/run does)"),
]
DESKTOP, PHONE = {"width": 1280, "height": 720}, {"width": 390, "height": 844}


def open_item(page, gallery: str, n: int, expect: str | re.Pattern | None = None) -> str:
    """Click item ``n`` of a gallery and wait for its asset page (titled ``expect``); returns the title."""
    page.locator(f"{gallery} button.thumbnail-item").nth(n).click()
    page.locator("#asset-page").wait_for(timeout=20_000)
    if expect is not None:
        page.locator("#asset-title", has_text=expect).wait_for(timeout=20_000)
    return page.locator("#asset-title").inner_text().strip()


def pick_on_page(page, expect: str) -> None:
    page.locator("#asset-pick").click()
    page.locator("#asset-status", has_text=expect).wait_for(timeout=10_000)


def close_page(page) -> None:
    page.locator("#asset-close").click()
    page.locator("#asset-page").wait_for(state="hidden", timeout=10_000)


def test_grid_asset_page_and_lineage_both_ways(browser, tmp_path: Path, embedder, fake_gemini) -> None:
    from tests.fake_gemini import image_reply

    # Nano Banana 2 Lite: a model whose reference cap (3) the page reaches in a few clicks
    fake_gemini.models = [*fake_gemini.models, "gemini-3.1-flash-lite-image"]
    settings = test_settings(tmp_path, gemini_api_key="browser-lib-key", gemini_base_url=fake_gemini.base_url,
                             gemini_model="gemini-3.1-flash-lite-image")
    studio = Studio(settings, embedder=embedder)
    fake_gemini.push(image_reply((SAMPLE / "food" / "honey.png").read_bytes(), text="Two dishes, one plate."))
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(studio) as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        page.get_by_text("Your library is empty.").wait_for(timeout=30_000)  # first run: one click away from a library
        page.get_by_role("button", name="Add the sample library").click()
        expect(page.locator("#add-sample")).to_be_disabled()  # Issue 26.17: locked while it runs
        page.get_by_text(re.compile(r"Sample library: \d+ added")).wait_for(timeout=240_000)
        total = studio.count()
        page.locator("#library-count", has_text=f"{total} images").wait_for(timeout=30_000)
        assert page.locator("#library-grid button.thumbnail-item").count() == 60 and page.locator("#library-more").is_visible()
        assert not page.get_by_text("Your library is empty.").is_visible()
        # the first paint shows placeholders; the previews replace them once made
        page.wait_for_function("() => document.querySelectorAll('#library-grid img').length === 60 && "
                               "!document.querySelector('#library-grid img[src^=\"data:image/svg\"]')", timeout=120_000)
        page.locator("#library-more").scroll_into_view_if_needed()  # thumbnails load lazily, as they come into view
        page.wait_for_timeout(1_500)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / "library.png"), full_page=True)

        page.get_by_label("Folder", exact=True).click()  # filter to a folder: its count is in the choice
        page.get_by_role("option", name=f"sample ({total})").wait_for(timeout=10_000)  # a folder holds its subfolders
        page.get_by_role("option", name="sample/food (8)").click()
        page.keyboard.press("Escape")
        page.locator("#library-count", has_text="8 images").wait_for(timeout=20_000)
        food = studio.library_page(LibraryFilter(folders=("sample/food",)), limit=8).assets
        assert page.locator("#library-grid button.thumbnail-item").count() == 8
        assert open_item(page, "#library-grid", 0) == food[0].filename  # newest first
        assert "sample/food" in page.locator("#asset-details").inner_text()

        page.get_by_role("button", name="More like this").click()
        page.locator("#search-status", has_text=f"results like {food[0].filename}").wait_for(timeout=60_000)
        assert page.locator("#asset-page").is_hidden() and page.get_by_role("tab", name="Search", selected=True).is_visible()
        names = [h.asset.filename for h in studio.search(image_id=food[0].id, k=12)]
        assert names[0] == food[0].filename
        picked = []
        for n, said in ((1, "(1 of 3)"), (2, "(2 of 3)"), (3, "(3 of 3)")):
            open_item(page, "#search-results", n)
            pick_on_page(page, f"Added to the references {said}")
            close_page(page)
            picked.append(names[n])
        open_item(page, "#search-results", 4)  # a fourth is refused on the page itself
        pick_on_page(page, "Not added: Nano Banana 2 Lite (gemini-3.1-flash-lite-image) takes at most 3 reference images")
        assert page.locator("#asset-pick").inner_text() == "Add to references"
        close_page(page)
        open_item(page, "#search-results", 3)
        assert page.locator("#asset-pick").inner_text().startswith("✓ In references")
        pick_on_page(page, "Removed from the references (2 of 3)")
        page.keyboard.press("Escape")  # closes the page like its ✕ button
        page.locator("#asset-page").wait_for(state="hidden", timeout=10_000)
        expect(page.locator("#search-results").get_by_text("✓ picked")).to_have_count(2, timeout=10_000)
        assert page.locator("#tray-text", has_text="References: 2 of 3").is_visible()
        page.screenshot(path=str(SHOTS / "search.png"), full_page=True)

        page.get_by_role("button", name="Use in Generate →").click()
        page.get_by_text(re.compile(r"2 of \d+.*references from the library")).wait_for(timeout=10_000)
        page.get_by_label("Prompt").fill("Both dishes on one plate")
        page.get_by_role("button", name="Generate", exact=True).click()
        page.get_by_text("Two dishes, one plate.").wait_for(timeout=60_000)
        page.get_by_role("button", name="Save to library").click()
        page.get_by_text(re.compile(r"Saved: 1 added")).wait_for(timeout=60_000)
        page.locator("#recent-generated button.thumbnail-item").first.wait_for(timeout=20_000)
        open_item(page, "#recent-generated", 0)  # the new image's page, from the Generate tab
        page.get_by_text("Made from 2 image(s)").wait_for(timeout=10_000)
        assert page.locator("#asset-parents button.thumbnail-item").count() == 2
        assert "Both dishes on one plate" in page.locator("#asset-page").inner_text()
        page.screenshot(path=str(SHOTS / "asset.png"))  # a modal: the viewport is the page
        assert page.locator("#asset-title").inner_text().startswith("Generated v1: Both dishes on one plate")
        parent_title = open_item(page, "#asset-parents", 0, re.compile("|".join(map(re.escape, picked[:2]))))
        assert parent_title in picked[:2]
        page.get_by_text("Made from this: 1 image(s)").wait_for(timeout=10_000)
        assert page.locator("#asset-children button.thumbnail-item").count() == 1
        assert len(fake_gemini.requests[-1].inline()) == 2

        fake_gemini.push(image_reply((SAMPLE / "food" / "orange.png").read_bytes(), text="On a blue plate."))
        page.get_by_role("button", name="Edit this").click()  # the parent, edited: Refine is the action
        expect(page.locator("#edit-refs-note")).to_contain_text(  # the tray still holds two references: not sent
            "Refine sends only that picture; the references below are not sent with it.", timeout=10_000)
        page.locator("#refine-box textarea").fill("put it on a blue plate")
        page.locator("#refine-button").click()
        page.locator("#version-strip").get_by_text("v1 · put it on a blue plate").wait_for(timeout=60_000)
        assert len(fake_gemini.requests[-1].inline()) == 1  # the edited image is in the request
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / "generate-edit.png"), full_page=True)
        page.close()
    (child,) = studio.library_page(LibraryFilter(sources=("generated",))).assets
    assert [a.filename for a in studio.asset(child.id).parents] == picked[:2]


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (48, 48), color)
    img.putpixel((3, 5), (255 - color[0], 0, 0))
    img.save(buf, "PNG")
    return buf.getvalue()


def test_upload_on_drop_table_trash_and_phone(browser, tmp_path: Path, embedder) -> None:
    studio = Studio(test_settings(tmp_path, max_upload_mb=0.5), embedder=embedder)
    studio.ingest_folder(SAMPLE / "animals")
    known = sorted((SAMPLE / "animals").iterdir())[0]
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "fresh.png").write_bytes(_png((10, 200, 30)))
    (drop / "copy_of_known.png").write_bytes(known.read_bytes())
    with zipfile.ZipFile(drop / "set.zip", "w") as zf:
        zf.writestr("shoes/red.png", _png((200, 10, 10)))
    before = studio.count()
    with running_app(studio) as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        page.locator("#library-count", has_text=f"{before} images").wait_for(timeout=30_000)
        huge = tmp_path / "huge.png"
        huge.write_bytes(_png((1, 2, 3)) + bytes(700_000))
        page.locator("#library-upload input[type=file]").set_input_files(str(huge))  # refused before it is sent
        page.get_by_text("Not uploaded: huge.png is over the 0.5 MB limit per image set for this app").wait_for(timeout=10_000)
        page.wait_for_timeout(1_000)
        assert studio.count() == before and page.locator("#upload-result").inner_text().strip() == ""
        page.get_by_label("Tags for these files (comma-separated)").fill("spring")
        page.locator("#library-upload input[type=file]").set_input_files([str(p) for p in sorted(drop.iterdir())])
        page.get_by_text("2 added, 1 already in the library (your tags added to 1 of them), 0 failed").wait_for(timeout=60_000)  # no button to press
        page.get_by_text(f"already in the library as {known.name} in animals").filter(visible=True).first.wait_for(timeout=10_000)
        page.locator("#library-count", has_text=f"{before + 2} images").wait_for(timeout=20_000)
        folders = studio.stats()["by_folder"]
        assert folders["uploads"] == 1 and folders["uploads/shoes"] == 1
        assert studio.library_page(LibraryFilter(tags=("spring",))).total == 3  # the duplicate's library copy too

        page.get_by_text("Table view: mark many images").click()
        cell = page.locator("#library-table [data-testid='cell-0-1']").filter(visible=True)  # first row, file name
        cell.wait_for(timeout=20_000)
        cell.click()
        page.get_by_text("Marked 1:").wait_for(timeout=10_000)
        assert page.locator("#library-table [data-testid='cell-0-0']").filter(visible=True).inner_text().strip() == "✓"
        page.get_by_role("button", name="Delete marked…").click()
        page.get_by_role("button", name="Yes, move 1 image(s) to the Trash").click()
        page.locator("#library-count", has_text=f"{before + 1} images").wait_for(timeout=20_000)
        assert page.get_by_role("button", name=re.compile("Yes, move 0")).count() == 0
        assert page.get_by_role("button", name="Delete marked…").is_disabled()

        page.get_by_text("Trash", exact=True).click()
        page.get_by_text("1 image(s) in the Trash.").wait_for(timeout=20_000)
        page.locator("#trash-grid button.thumbnail-item").first.click()
        page.get_by_text("1 marked.").wait_for(timeout=10_000)
        page.get_by_role("button", name="Restore marked").click()
        page.get_by_text("The Trash is empty.").wait_for(timeout=20_000)
        page.locator("#library-count", has_text=f"{before + 2} images").wait_for(timeout=20_000)

        page.locator("#library-grid button.thumbnail-item").nth(4).click()  # Issue 26.17: delete from the asset page
        page.locator("#asset-page").wait_for(timeout=20_000)
        page.get_by_role("button", name="Delete", exact=True).click()
        page.get_by_role("button", name="Yes, move it to the Trash").click()
        page.locator("#library-count", has_text=f"{before + 1} images").wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        assert page.locator("#library-grid button.thumbnail-item.selected").count() == 0  # no stray orange frame

        page.get_by_role("tab", name="Search").click()
        page.get_by_role("combobox", name="Folders").click()  # folders added since the page loaded are offered
        page.get_by_role("option", name="uploads/shoes (1)").wait_for(timeout=10_000)
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_text("Type what you are looking for").wait_for(timeout=10_000)  # not an error
        assert page.get_by_text("Error").count() == 0
        page.close()

        phone = browser.new_page(viewport=PHONE)
        phone.goto(url)
        phone.locator("#library-grid button.thumbnail-item").first.wait_for(timeout=30_000)
        box = phone.locator("#library-grid button.thumbnail-item").first.bounding_box()
        assert box and box["width"] < PHONE["width"] / 2  # a grid of several columns, not one
        phone.locator("#library-count").scroll_into_view_if_needed()
        phone.screenshot(path=str(SHOTS / "library-phone.png"), full_page=False)
        phone.close()
    assert studio.count() == before + 1

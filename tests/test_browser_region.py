"""Editing a region in a real browser: brush over part of v1 in "Edit a region", press Edit region, and v2
appears; the model was sent the crop, v2 equals v1 outside the brushed mask grown by the feather, and the
provenance names the mask kept beside it. Then the same through ``/edit_region`` (the API)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from rag.generation import read_provenance
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import test_settings
from tests.fake_gemini import png_bytes, signed_reply
from tests.test_browser import browser  # noqa: F401  (the module's Chromium)
from tests.test_region import encoded, gradient, pixels

pytestmark = pytest.mark.browser


def grown(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask grown by ``px`` in every direction, computed here without the app's code."""
    padded = np.pad(mask, px)
    out = np.zeros_like(mask)
    for dy in range(2 * px + 1):
        for dx in range(2 * px + 1):
            out |= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out


def brush(page, left: float, top: float, right: float) -> None:  # noqa: ANN001 - a Playwright page
    """Drag the brush across the editor's canvas, from (left, top) to (right, top + a little), as shares of it."""
    page.evaluate("document.querySelector('#region-editor').scrollIntoView({block: 'center'})")
    box = page.locator("#region-editor canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * left, box["y"] + box["height"] * top)
    page.mouse.down()
    for step in range(1, 5):  # few moves: each one redraws the canvas, slowly in a GPU-less browser
        share = step / 4
        page.mouse.move(box["x"] + box["width"] * (left + (right - left) * share),
                        box["y"] + box["height"] * (top + 0.04 * share))
    page.mouse.up()


def test_brush_a_region_edit_it_and_only_it_changes(browser, tmp_path: Path, embedder, fake_gemini) -> None:  # noqa: F811
    studio = Studio(test_settings(tmp_path, gemini_api_key="browser-region-key", gemini_base_url=fake_gemini.base_url,
                                  gemini_retries=0), embedder=embedder)
    fake_gemini.push(signed_reply(encoded(gradient((512, 512))), b"sig-v1"))
    session = studio.generate("a gradient poster").session_id
    fake_gemini.push(signed_reply(png_bytes((1024, 1024), (255, 0, 0)), b"sig-v2"),
                     signed_reply(png_bytes((1024, 1024), (0, 0, 255)), b"sig-v3"))

    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.get_by_role("tab", name="Generate").click()
        page.get_by_text("Recent sessions").click()
        page.locator("input[aria-label='Reopen a session to continue it']").click()
        page.get_by_role("option").first.click()
        page.get_by_role("button", name="Open", exact=True).click()
        page.get_by_text("Versions of this session (1)").wait_for(timeout=30_000)
        page.get_by_text("Edit a region").click()
        page.locator("#region-edit:not([disabled])").wait_for(timeout=10_000)  # the editor holds v1 now
        brush(page, 0.42, 0.3, 0.58)
        page.locator("#region-instruction textarea").fill("make the label red")
        page.locator("#region-edit").click()
        page.get_by_text("Versions of this session (2)").wait_for(timeout=60_000)
        page.get_by_text("v2 · region: make the label red").first.wait_for(timeout=10_000)
        page.close()

        v1, v2 = studio.open_session(session)[1]
        record = read_provenance(v2.path)["region"]
        mask = np.asarray(Image.open(Path(v2.path).parent / record["mask"])) > 0
        assert v2.parent_id == v1.id and 0 < mask.mean() < 0.2  # a stroke, kept beside v2 and named by it
        left, top, right, bottom = record["box"]
        sent = Image.open(io.BytesIO(fake_gemini.requests[-1].inline()[0][1]))
        assert sent.size == (right - left, bottom - top) and fake_gemini.requests[-1].roles() == ["user"]
        before, after = pixels(v1.path), pixels(v2.path)
        outside = ~grown(mask, record["feather_px"])
        assert np.array_equal(before[outside], after[outside]) and (after[mask] != before[mask]).any()

        stroke = base64.b64encode(encoded(Image.fromarray(mask.astype(np.uint8) * 255))).decode()
        client = Client(url, verbose=False)
        made = client.predict(session, "make it blue", stroke, "v1", api_name="/edit_region")
        (v3,) = studio.open_session(session)[1][2:]
        assert made["version_ids"] == [v3.id] and v3.parent_id == v1.id
        with pytest.raises(Exception, match="not valid base64"):
            client.predict(session, "make it blue", "%%%", api_name="/edit_region")
    studio.close()

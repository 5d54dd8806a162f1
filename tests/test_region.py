"""Region edits (issue 31): the model gets the crop around the mask, the answer is blended back inside it, and
every pixel outside the mask grown by the feather is the original's, byte for byte. "Expand canvas" keeps the
original pixels in place; masks that cover nothing or everything are refused before anything is sent; the
budget applies; the CLI's ``edit`` (``--remove``) works. The real SDK talks to the fake Gemini server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rag.core import BananaError, BudgetExceeded
from rag.generation import read_provenance
from rag.studio import Studio
from tests.conftest import test_settings
from tests.fake_gemini import FakeGemini, png_bytes, signed_reply

KEY = "region-test-key-5d1"
RECT = (400, 300, 460, 380)  # left, top, right, bottom (exclusive) of the brushed rectangle


def gradient(size: tuple[int, int]) -> Image.Image:
    """A smooth picture (JPEG keeps it close, so the crop sent can be compared with the original)."""
    y, x = np.mgrid[0:size[1], 0:size[0]]
    return Image.fromarray(np.dstack([x * 255 // size[0], y * 255 // size[1], np.full_like(x, 90)]).astype(np.uint8))


def encoded(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def brush_layer(size: tuple[int, int], rect: tuple[int, int, int, int] | None) -> Image.Image:
    """What the editor hands over: a transparent layer, painted (half-opaque red) where the brush went."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    if rect:
        ImageDraw.Draw(layer).rectangle((rect[0], rect[1], rect[2] - 1, rect[3] - 1), fill=(255, 45, 85, 150))
    return layer


def pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture
def region_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    studio = Studio(test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0),
                    embedder=embedder)
    yield studio
    studio.close()


def first_version(studio: Studio, fake: FakeGemini, picture: Image.Image) -> tuple[str, str]:
    fake.push(signed_reply(encoded(picture), b"sig-v1"))
    run = studio.generate("a gradient bottle")
    return run.session_id, run.versions[0].path


def test_only_the_brushed_region_changes_and_the_model_sees_the_crop(region_studio: Studio, fake_gemini: FakeGemini) -> None:
    original = gradient((1024, 1024))
    session, v1_path = first_version(region_studio, fake_gemini, original)
    fake_gemini.push(signed_reply(png_bytes((1024, 1024), (255, 0, 0)), b"sig-region"))
    run = region_studio.regions.edit(session, "make the label say Oolong", [brush_layer(original.size, RECT)])

    (v2,) = run.versions
    v1 = region_studio.open_session(session)[1][0]
    assert (v2.label, v2.parent_id, v2.instruction) == ("v2", v1.id, "region: make the label say Oolong")
    record = read_provenance(v2.path)
    region = record["region"]
    left, top, right, bottom = region["box"]
    request = fake_gemini.requests[-1]
    (sent,) = [Image.open(io.BytesIO(data)) for _, data in request.inline()]
    assert request.roles() == ["user"] and request.signatures() == []  # the crop alone, no conversation
    assert sent.size == (right - left, bottom - top) == (512, 512) and request.aspect_ratio() == "1:1"
    assert np.abs(np.asarray(sent.convert("RGB")).astype(int) - pixels(v1_path)[top:bottom, left:right]).mean() < 3
    assert left <= RECT[0] and top <= RECT[1] and right >= RECT[2] and bottom >= RECT[3]
    assert "make the label say Oolong" in request.texts()[0]

    before, after = pixels(v1_path), pixels(v2.path)
    reach = region["feather_px"]
    outside = np.ones(before.shape[:2], bool)
    outside[RECT[1] - reach:RECT[3] + reach, RECT[0] - reach:RECT[2] + reach] = False
    assert np.array_equal(before[outside], after[outside])  # byte-identical outside the dilated mask
    assert (after[RECT[1]:RECT[3], RECT[0]:RECT[2]] == [255, 0, 0]).all()

    mask_file = Path(v2.path).parent / region["mask"]  # stored beside the version, named in its provenance
    assert mask_file.is_file() and Image.open(mask_file).getbbox() == RECT
    assert record["parent_version_id"] == v1.id and region["edited_version"] == "v1"
    latest = region_studio.history()[0]
    assert (latest.outcome, latest.prompt, latest.cost_usd) == ("ok", v2.instruction, pytest.approx(0.067))

    fake_gemini.push(signed_reply(png_bytes((1024, 1024)), b"sig-v3"))
    region_studio.refine(session, "make it brighter")  # refining the result sends its picture, not the crop's talk
    again = fake_gemini.requests[-1]
    assert again.roles() == ["user"] and [Image.open(io.BytesIO(d)).size for _, d in again.inline()] == [(1024, 1024)]


def test_expand_canvas_keeps_the_original_pixels_in_place(region_studio: Studio, fake_gemini: FakeGemini) -> None:
    original = gradient((512, 512))
    session, v1_path = first_version(region_studio, fake_gemini, original)
    with pytest.raises(BananaError, match="is 1:1 already"):
        region_studio.regions.edit(session, "", mode="expand", expand_to="1:1")
    fake_gemini.push(signed_reply(png_bytes((1376, 768), (0, 200, 0)), b"sig-wide"))
    (v2,) = region_studio.regions.edit(session, "more beach", mode="expand", expand_to="16:9").versions

    assert fake_gemini.requests[-1].aspect_ratio() == "16:9" and v2.aspect_ratio == "16:9"
    wide = pixels(v2.path)
    x, y = read_provenance(v2.path)["region"]["placed_at"]
    assert wide.shape[:2] == (512, 910) and (x, y) == (199, 0)
    assert np.array_equal(wide[:, x:x + 512], pixels(v1_path))  # every original pixel, where it was
    assert (wide[:, :x] == [0, 200, 0]).all() and v2.instruction == "region: expand the canvas to 16:9 (more beach)"


@pytest.mark.parametrize(("layer", "why"), [
    (brush_layer((512, 512), None), "The mask covers nothing"),
    (Image.new("RGB", (512, 512), "white"), "The mask covers the whole picture"),
    (Image.new("L", (300, 100), 255), "the mask is 300×100 but the picture is 512×512"),
], ids=["nothing", "everything", "another-shape"])
def test_masks_that_cannot_be_edited_are_refused_before_anything_is_sent(
        region_studio: Studio, fake_gemini: FakeGemini, layer: Image.Image, why: str) -> None:
    session, _ = first_version(region_studio, fake_gemini, gradient((512, 512)))
    files = sorted(region_studio.settings.outputs_dir.iterdir())
    with pytest.raises(BananaError, match=why):
        region_studio.regions.edit(session, "make it red", [layer])
    assert len(fake_gemini.requests) == 1 and len(region_studio.history()) == 1
    assert sorted(region_studio.settings.outputs_dir.iterdir()) == files  # no mask left behind


def test_the_budget_refuses_a_region_edit_as_it_refuses_a_refinement(region_studio: Studio, fake_gemini: FakeGemini) -> None:
    session, _ = first_version(region_studio, fake_gemini, gradient((512, 512)))
    region_studio.settings = region_studio.settings.with_(gemini_daily_budget_usd=0.1)
    assert region_studio.regions.estimate() == pytest.approx(0.067)
    files = sorted(region_studio.settings.outputs_dir.iterdir())
    with pytest.raises(BudgetExceeded, match="was not sent"):
        region_studio.regions.edit(session, "make it red", [brush_layer((512, 512), RECT)])
    assert len(fake_gemini.requests) == 1 and region_studio.history()[0].outcome == "refused"
    assert sorted(region_studio.settings.outputs_dir.iterdir()) == files


def test_the_cli_removes_a_region_given_a_mask_file(tmp_path: Path, embedder, cli, fake_gemini: FakeGemini) -> None:
    studio = Studio(test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url), embedder=embedder)
    try:
        session, _ = first_version(studio, fake_gemini, gradient((512, 512)))
    finally:
        studio.close()
    mask = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(mask).rectangle((200, 200, 259, 279), fill=255)  # white = the region, as a person draws it
    mask.save(tmp_path / "mask.png")
    fake_gemini.push(signed_reply(png_bytes((1024, 1024), (10, 20, 30)), b"sig-remove"))
    out = cli(["edit", session[:8], "--mask", str(tmp_path / "mask.png"), "--remove", "--from", "v1", "--json"],
              tmp_path, GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url, GEMINI_RETRIES="0")
    assert out.returncode == 0, out.stderr
    assert "Estimated cost: about $0.067" in out.stderr
    (version,) = json.loads(out.stdout)["versions"]
    assert version["label"] == "v2" and read_provenance(version["path"])["region"]["mode"] == "remove"
    (sent,) = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")).astype(int) for _, d in fake_gemini.requests[-1].inline()]
    assert sent[200:280, 200:260].std(axis=(0, 1)).max() < 2  # the region was a flat patch to fill, not the object
    usage = cli(["edit", session, "make it red"], tmp_path)
    assert usage.returncode == 1 and "Give the mask with --mask FILE" in usage.stderr

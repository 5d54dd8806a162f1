"""Words in the pictures: OCR with the real model (RapidOCR's PP-OCRv4 from its wheel) on the test set in
tests/data/ocr, the background stage after an ingest, word search for a printed word, the back-fill command,
the pixel limit and time box, and the text check of generated images through the fake Gemini."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from rag.core import ImageError
from rag.generation import asked_text
from rag.generation.text_check import compare
from rag.media import OcrLine, TextReader, make_engine
from rag.studio import Studio
from tests.conftest import test_settings
from tests.fake_gemini import FakeGemini, Recorded, image_reply
from ui.text_view import text_in_image_md

DATA = Path(__file__).parent / "data" / "ocr"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
KEY = "ocr-test-key-28"


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[a-z0-9]+", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).lower()))


def label_png(text: str, size: tuple[int, int] = (480, 300)) -> bytes:
    """A tin label as a model might draw it: ``text`` in bold on cream, in a dark band ("" for none)."""
    img = Image.new("RGB", size, (236, 226, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle([20, 90, size[0] - 20, 210], fill=(30, 60, 40))
    if text:
        draw.text((size[0] // 2, 150), text, font=ImageFont.truetype(FONT, 44), fill=(250, 240, 210), anchor="mm")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def reader() -> TextReader:
    engine = make_engine("auto")
    assert engine is not None and engine.name == "rapidocr"  # requirements.txt installs it
    return TextReader(engine, max_pixels=40_000_000, timeout_s=60)


def test_the_test_set_is_what_the_issue_asks_for() -> None:
    files = {e["file"] for e in MANIFEST}
    assert len(files) >= 40 and all((DATA / f).is_file() for f in files)
    groups = Counter(e["group"] for e in MANIFEST)
    assert groups["horizontal"] >= 20 and groups["rotated"] >= 5 and groups["small"] >= 4 and groups["real"] >= 5
    assert len({e["font"] for e in MANIFEST if e["kind"] == "rendered"}) >= 5
    assert sum((DATA / f).stat().st_size for f in files) < 1_000_000


def test_horizontal_labels_of_24_px_and_more_are_read(reader: TextReader) -> None:
    """Word recall on a slice of the set (bench/ocr.py measures all of it): >= 0.9, the issue's target."""
    chosen = [e for e in MANIFEST if e["group"] == "horizontal"][::6] + [e for e in MANIFEST if e["group"] == "real"][5:6]
    wanted = found = 0
    for entry in chosen:
        expected = words(entry["text"])
        got = words(" ".join(reader.read(DATA / entry["file"]).lines))
        wanted, found = wanted + sum(expected.values()), found + sum((expected & got).values())
    assert found / wanted >= 0.9, (found, wanted)


def test_the_pixel_limit_refuses_before_decoding_and_the_time_box_holds(reader: TextReader, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("L", (3000, 2000), 255).save(big)
    strict = TextReader(reader.engine, max_pixels=5_000_000, timeout_s=60)
    with pytest.raises(ImageError, match="too large"):
        strict.read(big)

    class Stuck:
        name = "stuck"

        def read(self, image: Image.Image) -> list[OcrLine]:
            time.sleep(1.5)
            return [OcrLine("late", 1.0)]

    stuck = TextReader(Stuck(), max_pixels=5_000_000, timeout_s=0.2)
    with pytest.raises(ImageError, match="longer than 0.2 s"):
        stuck.read(DATA / MANIFEST[0]["file"])
    with pytest.raises(ImageError, match="stayed busy"):  # the overrun keeps its slot: work never piles up
        stuck.read(DATA / MANIFEST[0]["file"])


def test_pictures_read_at_once_read_as_one_at_a_time(reader: TextReader) -> None:
    files = [DATA / entry["file"] for entry in MANIFEST[:6]]
    alone = [reader.read(file).lines for file in files]
    two = TextReader(reader.engine, max_pixels=40_000_000, timeout_s=60, workers=2)
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(lambda file: two.read(file, background=True).lines, files)) == alone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_readings_at_once_stay_within_the_workers_and_background_ones_give_way() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base >= 19:
        pytest.skip("the tests run at the lowest priority already: nothing to give way to")

    class Recording:
        name = "recording"

        def __init__(self) -> None:
            self.meet = threading.Barrier(2, timeout=20)
            self.lock = threading.Lock()
            self.now = self.most = 0
            self.nice: Counter[int] = Counter()

        def read(self, image: Image.Image) -> list[OcrLine]:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.nice[os.getpriority(os.PRIO_PROCESS, threading.get_native_id())] += 1
            self.meet.wait()  # two at once, or a broken barrier after 20 s
            with self.lock:
                self.now -= 1
            return []

    engine = Recording()
    two = TextReader(engine, max_pixels=5_000_000, timeout_s=30, workers=2)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: two.read(DATA / MANIFEST[0]["file"], background=i % 2 == 0), range(6)))
    assert engine.most == 2
    assert engine.nice == {19: 3, base: 3}


def test_the_verdicts_in_words() -> None:
    assert asked_text('a tin labelled "Acme Oolong" and “SKU 4471”, it\'s "" fine') == ["Acme Oolong", "SKU 4471"]
    asked = ["Acme Oolong"]
    assert compare(asked, ["AcmeOolong", "Loose Leaf"]).label == "text as asked"  # OCR dropped the space
    assert compare(asked, ["Acrne Oolong", "Loose Leaf Tea"]).label == "text differs: 'Acrne Oolong'"
    assert compare(asked, []).label == "no text found"


def test_background_stage_after_ingest_makes_printed_words_searchable(studio: Studio, tmp_path: Path) -> None:
    folder = tmp_path / "shelf"
    folder.mkdir()
    picked = {"tin": "r00-horizontal-24px.png", "flag": "real05-usa_arkansas.png", "box": "r01-horizontal-24px.png"}
    for name, file in picked.items():
        shutil.copy(DATA / file, folder / f"{name}{Path(file).suffix}")
    (folder / "broken.png").write_bytes((DATA / picked["box"]).read_bytes()[:400])  # fails at ingest, never read
    assert studio.ocr.start()
    report = studio.ingest_folder(folder)  # returns at once; the text is read afterwards, in the background
    assert len(report.added) == 3
    assert studio.ocr.wait(timeout=120), "the background stage did not finish in time"
    stats = studio.stats()["text_in_images"]
    assert (stats["read"], stats["with_text"], stats["waiting"], stats["background"]) == (3, 3, 0, True)
    for query, wanted in (("oolong", "tin.png"), ("SKU 4471", "box.png"), ("arkansas", "flag.png")):
        best = studio.search(query, k=3)[0]
        assert best.asset.filename == wanted and best.match.startswith("words"), (query, best)
    tin = next(a for a in report.added if a.filename == "tin.png")
    page = text_in_image_md(studio.get([tin.id])[0])
    assert "Text in the image" in page and "Acme" in page and "Oolong" in page


def test_ocr_command_back_fills_resumes_and_says_what_failed(cli, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    (folder / "signs").mkdir(parents=True)
    shutil.copy(DATA / "r21-horizontal-64px.png", folder / "signs" / "exit.png")
    shutil.copy(DATA / "r12-horizontal-40px.jpg", folder / "hours.jpg")
    data = tmp_path / "data"
    assert cli(["ingest", str(folder), "--json"], data).returncode == 0
    first = cli(["ocr", "--folder", "signs", "--json"], data, OCR_MAX_PIXELS="1000000")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["read"] == 1 and json.loads(first.stdout)["library"]["waiting"] == 1
    rest = cli(["ocr", "--json"], data, OCR_MAX_PIXELS="50000")  # hours.jpg is 0.09 MP: over this limit
    body = json.loads(rest.stdout)
    assert rest.returncode == 1 and body["read"] == 1 and "too large" in body["failed"][0]["reason"]
    again = cli(["ocr"], data)
    assert again.returncode == 0 and "read already" in again.stdout  # resumed: nothing left
    stats = cli(["stats"], data)
    assert "1 read, 1 with text, 1 could not be read, 0 waiting" in stats.stdout


def test_generated_text_is_checked_on_versions_and_campaigns(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    settings = test_settings(tmp_path / "data", gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0, campaign_concurrency=1)
    studio = Studio(settings, embedder=embedder)
    try:
        right, wrong, blank = label_png("Acme Oolong"), label_png("Acrne Oolong"), label_png("")
        fake_gemini.push(image_reply(right), image_reply(wrong), image_reply(blank), image_reply(right))
        asked = 'a tin labelled "Acme Oolong" on a marble counter'
        first = studio.generate(asked, n=3).versions
        assert [v.text_check for v in first] == ["text as asked", "text differs: 'Acrne Oolong'", "no text found"]
        refined = studio.refine(first[0].session_id, "now make the tin red").versions  # no quotes: the parent's
        assert refined[0].text_check == "text as asked"
        assert [v.text_check for v in studio.open_session(first[0].session_id)[1]][:3] == [v.text_check for v in first]
        fake_gemini.push(image_reply(blank))
        assert studio.generate("a tin on a counter").versions[0].text_check == ""  # nothing quoted, nothing read

        folder = tmp_path / "teas"
        folder.mkdir()
        for name in ("oolong", "sencha"):
            (folder / f"{name}.png").write_bytes(label_png(name.upper()))
        studio.ingest_folder(folder)

        garble = {"oolong": True}  # the model misspells the oolong tin until it is asked again

        def route(recorded: Recorded) -> object:
            return image_reply(wrong if "tin of oolong" in " ".join(recorded.texts()) and garble["oolong"] else right)

        fake_gemini.route = route
        plan = studio.plan_campaign('A tin of {name} labelled "Acme Oolong"', folder="teas")
        campaign = studio.run_campaign(studio.start_campaign(plan).id)
        review = studio.campaign_review(campaign.id)
        assert sorted(review.text_checks.values()) == ["text as asked", "text differs: 'Acrne Oolong'"]
        assert [i.asset_name for i in review.text_differs] == ["oolong.png"]
        sent, garble["oolong"] = len(fake_gemini.requests), False
        again = studio.regenerate_rejected(campaign.id, which="text differs")
        assert len(fake_gemini.requests) == sent + 1 and [i.asset_name for i in again] == ["oolong.png"]
        assert studio.campaign_review(campaign.id).text_differs == []
    finally:
        studio.close()

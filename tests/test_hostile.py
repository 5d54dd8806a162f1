"""Hostile input: every file is either stored correctly or refused with a reason; nothing crashes.

The corpus is generated in a temporary folder by :mod:`tests.hostile` (see there for each case).
Real components throughout: open_clip (weightless), Milvus Lite, Pillow.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.core import ImageError
from rag.library import Ingestor, IngestReport
from rag.media import decode, display_name
from rag.studio import Studio
from tests.conftest import ROOT
from tests.hostile import BACKGROUND, Case, build_corpus, busy_row, encode, ico_wrapping_png, png_bytes

TECHNICAL = re.compile(r"Error\b|Exception|Traceback|errno|\bNone\b|<|>|0x[0-9a-f]", re.IGNORECASE)


def assert_plain_english(reason: str) -> None:
    assert reason and reason[0].isalpha() and not TECHNICAL.search(reason), reason
    assert len(reason) < 200, reason


def relative(path: str, root: Path) -> str:
    for base in (str(root), str(root.resolve())):
        if path.startswith(base + os.sep):
            return path[len(base) + 1 :]
    raise AssertionError(f"{path} is not under {root}")


def disk_entries(root: Path) -> int:
    """What a folder walk meets: files and links to files, plus links to folders (which are not followed)."""
    count = 0
    for _dirpath, dirnames, filenames in os.walk(root):
        count += len(filenames) + sum(1 for d in dirnames if (Path(_dirpath) / d).is_symlink())
    return count


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[Case], list[str]]:
    root = tmp_path / "corpus"
    cases, ignored = build_corpus(root, tmp_path / "outside")
    return root, cases, ignored


def outcomes(report: IngestReport, root: Path) -> dict[str, tuple[str, object]]:
    """name -> ("added", asset) | ("duplicate", id) | ("failed", reason); each name exactly once."""
    seen: dict[str, tuple[str, object]] = {}
    entries = [(relative(a.path, root) if a.source == "folder" else None, "added", a) for a in report.added]
    entries += [(relative(p, root), "duplicate", i) for p, i in report.duplicates]
    entries += [(relative(p, root), "failed", r) for p, r in report.failed]
    for name, kind, value in entries:
        assert name not in seen, f"{name} reported twice"
        seen[name] = (kind, value)
    return seen


def test_hostile_folder_every_file_accounted_for(studio: Studio, corpus: tuple[Path, list[Case], list[str]]) -> None:
    root, cases, ignored = corpus
    report = studio.ingest_folder(root)

    # Bookkeeping: every entry on disk is added, a duplicate, refused or ignored, exactly once.
    assert report.seen == len(cases)
    assert report.seen + len(report.ignored) == disk_entries(root)
    assert sorted(relative(p, root) for p in report.ignored) == sorted(ignored)
    got = outcomes(report, root)
    assert set(got) == {c.name for c in cases}

    stored = {c.name: got[c.name][1] for c in cases if c.ok}
    for case in cases:
        kind, value = got[case.name]
        if case.reason:
            assert kind == "failed", (case.name, kind, value)
            assert case.reason in value, (case.name, value)
            assert_plain_english(value)
        elif case.duplicate_of:
            assert (kind, value) == ("duplicate", stored[case.duplicate_of].id), case.name
        else:
            assert kind == "added", (case.name, value)
            asset = value
            assert (asset.width, asset.height, asset.format) == (case.width, case.height, case.format), case.name
            assert asset.filename == Path(case.name).name and asset.source == "folder"
            parent = Path(case.name).parent.as_posix()
            assert asset.folder == (root.name if parent == "." else parent)
            assert Path(asset.path) == (root / case.name).resolve()

    # No partial records: the store holds exactly what was reported added, with the same metadata.
    added = {a.id: a for a in report.added}
    assert studio.count() == len(added) == sum(c.ok for c in cases)
    assert {a.id: a for a in studio.get(list(added))} == added

    # The vector stored for a transparent picture is the one of its flattened version on the background.
    for case in cases:
        if case.ok and case.expected is not None:
            assert np.abs(pixels(decode(root / case.name).image) - pixels(case.expected)).max() <= 2, case.name
            # Solid-colour cases (the GIF's red frame, the red CMYK JPEG) tie at 1.0, in any order.
            best = {h.asset.id for h in studio.search(image=case.expected, k=3) if h.score > 0.999}
            assert stored[case.name].id in best, case.name


def test_hostile_pixels_decode_as_expected(corpus: tuple[Path, list[Case], list[str]]) -> None:
    root, _cases, _ignored = corpus
    grey = decode(root / "grey16.png").image  # 16-bit 0xC000 scales to 192, not clipped to white
    assert grey.size == (512, 219) and set(np.unique(pixels(grey))) == {192}
    red = pixels(decode(root / "cmyk.jpg").image)[40, 60]
    assert red[0] > 240 and red[1] < 15 and red[2] < 15, red
    rotated = decode(root / "rotated.jpg")  # 1600×800 stored landscape, displayed portrait
    assert (rotated.width, rotated.height) == (800, 1600) and rotated.image.size == (256, 512)
    top, bottom = pixels(rotated.image)[10, 128], pixels(rotated.image)[500, 128]
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]  # the blue strip was on the left
    big = decode(root / "big but allowed.png")
    assert (big.width, big.height) == (10_000, 9_000) and big.image.width == 512 and abs(big.image.height - 461) <= 1


# Uploads follow links (the user picked the file) and never look at names, so these differ from a folder walk.
UPLOAD_OUTCOMES = {
    "link outside.png": "", "latin1 caf\\xe9.png": "",
    "dangling.png": "no longer exists", "loop-a.png": "cannot be read", "loop-b.png": "cannot be read",
    "linked folder": "not a regular file", "notes.txt": "not a recognised image", "sub/.DS_Store": "not a recognised image",
}


def test_hostile_uploads_stay_inside_the_library(studio: Studio, corpus: tuple[Path, list[Case], list[str]], tmp_path: Path) -> None:
    root, cases, _ignored = corpus
    paths = sorted(p for p in root.rglob("*") if p.is_symlink() or not p.is_dir())
    names = {p: f"../../{p.name}" for p in paths}  # a hostile browser: display names that climb out
    names[root / "cmyk.jpg"] = "..\\..\\windows\\cmyk.jpg"
    names[root / "empty.jpg"] = "\x00\n.png"
    label = {display_name(names[p]): p for p in paths}
    assert len(label) == len(paths)

    report = studio.ingest_files(paths, folder="uploads", names=names)

    assert report.seen == len(paths)
    shown = lambda p: relative(os.fsencode(p).decode("utf-8", "backslashreplace"), root)  # noqa: E731
    got = {shown(label[a.filename]): ("added", a) for a in report.added}
    got |= {relative(p, root): ("duplicate", i) for p, i in report.duplicates}
    got |= {relative(p, root): ("failed", r) for p, r in report.failed}
    assert set(got) == {shown(p) for p in paths}
    cases_by_name = {c.name: c for c in cases}
    for name, (kind, value) in got.items():
        case = cases_by_name.get(name)
        reason = UPLOAD_OUTCOMES[name] if name in UPLOAD_OUTCOMES else case.reason
        if reason:
            assert kind == "failed" and reason in value, (name, kind, value)
            assert_plain_english(value)
        elif case and case.duplicate_of:
            assert kind == "duplicate", (name, kind)
        else:
            assert kind == "added", (name, kind, value)
            if case and case.ok:
                assert (value.width, value.height, value.format) == (case.width, case.height, case.format), name

    # Every record is a content-addressed copy inside the library, named for its id; nothing else was written.
    library = studio.settings.library_dir.resolve()
    files = sorted(p for p in library.rglob("*") if p.is_file())
    assert len(files) == len(report.added) == studio.count()
    for asset in report.added:
        stored = Path(asset.path)
        assert stored.is_relative_to(library) and stored.stem == asset.id and stored.exists()
        assert "/" not in asset.filename and "\\" not in asset.filename and asset.filename.isprintable()
        assert asset.source == "upload" and asset.folder == "uploads"
    assert {"cmyk.jpg", "link outside.png", "latin1 caf\ufffd.png"} <= {a.filename for a in report.added}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "credentials", "library", "milvus.db", "outside"]
    assert studio.remove_orphans() == []


class VanishingList(list):
    """A file list that deletes one file the moment the ingest reaches it (after it was listed)."""

    def __init__(self, items: list[tuple[Path, str]], victim: Path) -> None:
        super().__init__(items)
        self.victim = victim

    def __iter__(self) -> Iterator[tuple[Path, str]]:
        for item in super().__iter__():
            if item[0] == self.victim:
                self.victim.unlink()
            yield item


def _pngs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = Image.new("RGB", (40, 30), (i * 20 % 256, 100, 255 - i * 10))
        img.putpixel((i, i), (0, 0, 0))
        out.append(folder / f"img_{i:02d}.png")
        img.save(out[-1])
    return out


def test_file_deleted_during_folder_ingest_is_reported(studio: Studio, tmp_path: Path) -> None:
    files = _pngs(tmp_path / "lib", 8)
    studio.settings = studio.settings.with_(batch_size=2)
    calls = []

    def progress(done: int, total: int, _msg: str) -> None:
        calls.append(done)
        if len(calls) == 1:  # the first batch is stored; the last file is not yet
            files[-1].unlink()

    report = studio.ingest_folder(tmp_path / "lib", progress=progress)
    assert report.failed == [(str(files[-1]), "the file no longer exists")]
    assert len(report.added) == 7 and report.seen == 8 and studio.count() == 7
    assert all(Path(a.path).exists() for a in studio.get([a.id for a in report.added]))


def test_file_deleted_during_upload_is_reported(studio: Studio, tmp_path: Path) -> None:
    files = _pngs(tmp_path / "in", 6)
    ingestor = Ingestor(studio.settings, studio.embedder, studio.store)
    victim = files[3]
    report = ingestor.run(VanishingList([(p, "uploads") for p in files], victim), source="upload", copy=True)
    assert report.failed == [(str(victim), "the file no longer exists")]
    assert len(report.added) == 5 and studio.count() == 5
    library = sorted(p for p in studio.settings.library_dir.rglob("*") if p.is_file())
    assert sorted(Path(a.path) for a in report.added) == [p.resolve() for p in library]


_MEASURE = r"""
import resource, sys, json
from rag.media import decode
from rag.core import ImageError
data = open(sys.argv[1], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    d = decode(data)
    out = {"ok": [d.width, d.height]}
except ImageError as exc:
    out = {"error": str(exc)}
out["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "name, data, outcome, limit_mb",
    [
        # Declares 40000×40000 (1.6 GP, 6.4 GB as RGBA) over a few bytes: refused from the header.
        ("bomb", lambda: png_bytes(40_000, 40_000, color_type=6, rows=4), "too large", 20),
        # A 16×16 icon directory around a 6000×6000 RGBA PNG: Pillow's ICO reader would decode it
        # inside Image.open(), before any size check; such formats are not opened at all.
        ("ico", lambda: ico_wrapping_png(6000, 6000), "not a recognised image format", 20),
        # Allowed pictures cost about their own decoded size (L: 1 byte a pixel, RGBA: 4), no more:
        # no full-size copies, conversions or premultiplied-alpha temporaries.
        ("grey", lambda: png_bytes(9_000, 9_000, row=busy_row(9_000)), [9000, 9000], 81 * 1.4),
        ("rgba", lambda: png_bytes(5_000, 5_000, color_type=6, row=busy_row(20_000)), [5000, 5000], 100 * 1.4),
    ],
)
def test_decoding_memory_stays_bounded(tmp_path: Path, name: str, data, outcome, limit_mb: int) -> None:
    path = tmp_path / f"{name}.png"
    path.write_bytes(data())
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    if isinstance(outcome, list):
        assert result.get("ok") == outcome, result
    else:
        assert outcome in result.get("error", ""), result
    assert result["grew_mb"] < limit_mb, result


def test_bomb_is_refused_before_its_pixels_are_read() -> None:
    # The pixel stream is garbage: had decoding started, the reason would be "corrupt".
    with pytest.raises(ImageError, match="too large"):
        decode(png_bytes(20_000, 20_000, idat=b"garbage"))
    with pytest.raises(ImageError, match="too large"):  # the limit is configurable and exact
        decode(png_bytes(1001, 1000, idat=b"garbage"), max_pixels=1_000_000)
    assert decode(png_bytes(1000, 1000), max_pixels=1_000_000).width == 1000


def test_sixteen_bit_and_palette_pictures_larger_than_the_working_size() -> None:
    grey = np.tile(np.linspace(0, 65535, 1200).astype(np.uint16), (900, 1))
    decoded = decode(encode(Image.fromarray(grey), "PNG"))
    row = pixels(decoded.image)[100, :, 0]
    assert (decoded.width, decoded.height) == (1200, 900) and row[0] < 3 and row[-1] > 252
    assert np.all(np.diff(row.astype(int)) >= 0)  # a smooth ramp, not clipped to white
    pal = Image.new("P", (1000, 600), 0)
    pal.putpalette([0, 0, 0, 255, 255, 0] + [0] * 762)
    pal.paste(1, (0, 0, 500, 600))
    flat = pixels(decode(encode(pal, "PNG", transparency=0), background=BACKGROUND).image)
    assert tuple(flat[100, 50]) == (255, 255, 0) and tuple(flat[100, 450]) == BACKGROUND


def test_decoding_a_caller_image_leaves_it_untouched() -> None:
    img = Image.open(io.BytesIO(encode(Image.new("P", (900, 700), 3), "PNG")))
    decode(img)
    assert img.size == (900, 700) and img.mode == "P"

"""One way to open an image (rag.media.images) and one way to write a file (rag.core.files).

Formats outside the allow-list (EPS, which Pillow hands to Ghostscript, and PSD) and a PNG declaring
60000×60000 pixels are refused with a sentence wherever a file enters: as a generation reference,
an upload, a library folder and a gallery preview. Every Pillow decoder outside the allow-list is
spied on, and none may ever be called. Real Milvus Lite, real open_clip (weightless), the real
google-genai SDK against tests/fake_gemini.py.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from rag.core import Asset, GenerationError, ImageError, atomic_path, atomic_write
from rag.media import THUMB_SIZE
from rag.media.images import allowed_formats, decode
from rag.store import export_parquet
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply
from tests.fake_gemini import png_bytes as generated_png
from tests.hostile import encode, png_bytes, rgb_png

API_KEY = "test-key-images-0123456789"
TOO_LARGE = "too large"
NOT_IMAGE = "not a recognised image format"


def eps_bytes() -> bytes:
    """A real EPS (Pillow writes it without Ghostscript; reading its pixels would run Ghostscript)."""
    return encode(Image.new("RGB", (8, 8), (200, 0, 0)), "EPS")


def psd_bytes(width: int = 6, height: int = 4) -> bytes:
    """A minimal Photoshop file: header, three empty sections, raw RGB planes."""
    header = b"8BPS" + struct.pack(">H", 1) + b"\0" * 6 + struct.pack(">HIIHH", 3, height, width, 8, 3)
    return header + struct.pack(">IIIH", 0, 0, 0, 0) + bytes(3 * width * height)


def huge_png() -> bytes:
    """64 bytes that declare 60000×60000 pixels (3.6 GP): refused from the header, never decoded."""
    return png_bytes(60_000, 60_000, idat=b"garbage")


# file name -> (content, the phrase its refusal must contain)
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "art.eps": (eps_bytes, NOT_IMAGE),
    "layers.psd": (psd_bytes, NOT_IMAGE),
    "huge.png": (huge_png, TOO_LARGE),
}
# the same contents under names that pass the extension check of a folder walk
DISGUISED: dict[str, tuple[Callable[[], bytes], str]] = {
    "art.jpg": (eps_bytes, NOT_IMAGE),
    "layers.png": (psd_bytes, NOT_IMAGE),
    "huge.png": (huge_png, TOO_LARGE),
}


def write(folder: Path, files: dict[str, tuple[Callable[[], bytes], str]]) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (make, reason) in files.items():
        (folder / name).write_bytes(make())
        written[folder / name] = reason
    return written


@pytest.fixture
def foreign_decoders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Pillow decoder outside the allow-list, spied on; the list of those that were called.

    Spied on through Pillow's public registry of decoders (``Image.OPEN``, filled by ``Image.register_open``):
    ``Image.open`` looks each format's opener up there when it tries the format, so a call reaches the spy."""
    Image.init()
    called: list[str] = []
    spied = set()
    for fmt, (factory, accept) in list(Image.OPEN.items()):
        if fmt in allowed_formats():
            continue

        def spy(fp: object, filename: object, _fmt: str = fmt, _factory: Callable = factory) -> ImageFile.ImageFile:
            called.append(_fmt)
            return _factory(fp, filename)

        monkeypatch.setitem(Image.OPEN, fmt, (spy, accept))
        spied.add(fmt)
    assert {"EPS", "PSD"} <= spied
    return called


@pytest.fixture
def gen_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    settings = test_settings(tmp_path, gemini_api_key=API_KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    yield studio
    studio.close()


# ----------------------------------------------------------------------------- where files enter


@pytest.mark.parametrize("name", list(HOSTILE))
def test_generation_reference_outside_the_allow_list_is_refused(
    gen_studio: Studio, fake_gemini: FakeGemini, foreign_decoders: list[str], tmp_path: Path, name: str
) -> None:
    (path, reason), = write(tmp_path / "refs", {name: HOSTILE[name]}).items()
    fake_gemini.push(image_reply(generated_png()))
    with pytest.raises(GenerationError) as err:
        gen_studio.generate("a banana", reference_files=[path])
    message = str(err.value)
    assert message.startswith(f"Reference {name} cannot be used: ") and reason in message, message
    assert fake_gemini.requests == []  # nothing was sent, nothing paid for
    assert not gen_studio.settings.outputs_dir.exists()
    assert foreign_decoders == []


def test_upload_outside_the_allow_list_is_refused(studio: Studio, foreign_decoders: list[str], tmp_path: Path) -> None:
    disguised = {name: DISGUISED[name] for name in DISGUISED if name not in HOSTILE}
    files = write(tmp_path / "drop", HOSTILE) | write(tmp_path / "drop", disguised)
    report = studio.ingest_uploads(list(files))
    assert not report.added and studio.count() == 0
    reasons = dict(report.failed)
    assert len(reasons) == len(files)
    for path, reason in files.items():
        assert reason in reasons[path.name], (path, reasons)
    assert foreign_decoders == []


def test_library_folder_and_previews_outside_the_allow_list(
    studio: Studio, foreign_decoders: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "library"
    hostile = write(root, DISGUISED)
    (root / "art.eps").write_bytes(eps_bytes())  # an EPS by name is not even looked at
    goods = [root / f"good{i}.png" for i in range(len(DISGUISED))]
    for i, path in enumerate(goods):
        path.write_bytes(rgb_png((40 * i, 90, 200)))
    report = studio.ingest_folder(root)
    assert sorted(Path(a.path).name for a in report.added) == [p.name for p in goods]
    assert report.ignored == [str(root / "art.eps")]
    reasons = {Path(p).name: r for p, r in report.failed}
    assert sorted(reasons) == sorted(p.name for p in hostile)
    for path, reason in hostile.items():
        assert reason in reasons[path.name], reasons

    # The originals are replaced by hostile files after indexing: their previews are refused too.
    caplog.set_level("INFO", logger="rag.media.thumbs")
    assets = sorted(report.added, key=lambda a: a.path)
    for asset, (make, reason) in zip(assets, DISGUISED.values(), strict=True):
        Path(asset.path).write_bytes(make())
        assert studio.preview(asset) is None
        assert f"No preview for {asset.filename}: " in caplog.text and reason in caplog.text
        caplog.clear()
    thumbs = studio.settings.data_dir / "thumbs"
    assert not thumbs.exists() or not [p for p in thumbs.rglob("*") if p.is_file()]
    assert foreign_decoders == []


# ----------------------------------------------------------------------------- the limits themselves


def test_pillow_bomb_guard_reads_as_too_large() -> None:
    # A limit raised past Pillow's own guard: Pillow refuses first, with the same "too large" reason.
    with pytest.raises(ImageError, match=TOO_LARGE):
        decode(huge_png(), max_pixels=10**10)


# ----------------------------------------------------------------------------- one atomic write


def sample_asset(tmp_path: Path) -> Asset:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(Image.new("RGB", (900, 600), (20, 140, 60)), "JPEG"))
    return Asset(id="ab" + "0" * 62, path=str(path), filename=path.name, folder="x", width=900, height=600,
                 format="JPEG", bytes=path.stat().st_size, created=0.0, source="folder")


def test_two_requests_for_the_same_preview_both_succeed(
    studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = sample_asset(tmp_path)
    both_written = threading.Barrier(2, timeout=10)
    real_replace = os.replace

    def replace_when_both_wrote(src: object, dst: object) -> None:  # both temporaries exist before either rename
        both_written.wait()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_when_both_wrote)
    results: list[Path | None] = [None, None]

    def make(i: int) -> None:
        results[i] = studio.preview(asset)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    target = studio.settings.data_dir / "thumbs" / "ab" / f"{asset.id}.webp"
    assert results == [target, target]
    with Image.open(target) as img:
        assert img.format == "WEBP" and img.size == (THUMB_SIZE, THUMB_SIZE * 2 // 3)
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporaries left


def test_atomic_path_removes_its_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.bin"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".part-") and tmp.suffix == ".bin"
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and sorted(target.parent.iterdir()) == [target]
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second  # two writers of one target never share a temporary


def test_interrupted_export_leaves_nothing_in_the_folder(
    studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio.ingest_folder(SAMPLE / "food")
    store = studio.store
    real_iter = store.iter_records

    def fails_after_one_batch(**kwargs: object) -> Iterator[list[dict]]:
        yield next(real_iter(**kwargs))
        raise OSError("disk full")

    out = tmp_path / "export"
    out.mkdir()
    monkeypatch.setattr(store, "iter_records", fails_after_one_batch)
    with pytest.raises(OSError, match="disk full"):
        export_parquet(store, out / "library.parquet", batch=2)
    assert list(out.iterdir()) == []  # neither the file nor its temporary, whatever it is called

"""The upload path: archives, limits, display names."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

from rag.studio import Studio


def _png_bytes(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "PNG")
    return buf.getvalue()


def test_zip_upload_is_unpacked_safely(studio: Studio, tmp_path: Path) -> None:
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("shoes/red.png", _png_bytes((200, 0, 0)))
        zf.writestr("../../escape.png", _png_bytes((0, 200, 0)))
        zf.writestr("notes.txt", "hello")
        zf.writestr("__MACOSX/._red.png", b"junk")
    report = studio.ingest_uploads([archive], folder="drop")
    assert sorted(a.filename for a in report.added) == ["escape.png", "red.png"]
    assert report.failed == [("drop.zip/notes.txt", "not an image file type")]
    assert not (tmp_path.parent / "escape.png").exists() and not Path("escape.png").exists()
    assert all(Path(a.path).is_relative_to(studio.settings.library_dir.resolve()) for a in report.added)


def test_upload_limits_are_explained(studio: Studio, tmp_path: Path) -> None:
    studio.settings = studio.settings.with_(max_upload_files=2, max_upload_mb=0.001)
    small = [tmp_path / f"s{i}.png" for i in range(3)]
    for i, p in enumerate(small):
        p.write_bytes(_png_bytes((i, i, i)))
    big = tmp_path / "big.png"
    big.write_bytes(_png_bytes((1, 2, 3)) + b"\0" * 2048)
    report = studio.ingest_uploads([*small, big])
    reasons = dict(report.failed)
    assert "MAX_UPLOAD_MB" in reasons["big.png"] and "MAX_UPLOAD_FILES" in reasons["s2.png"]
    assert len(report.added) == 2


def test_corrupt_zip_is_reported(studio: Studio, tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    report = studio.ingest_uploads([bad])
    assert report.failed == [("broken.zip", "not a valid .zip archive")] and not report.added

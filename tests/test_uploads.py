"""The upload path: archives, limits, display names."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

from rag.media import expand_uploads
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
    studio.settings = studio.settings.with_(max_upload_files=3, max_upload_mb=0.001)
    small = [tmp_path / f"s{i}.png" for i in range(3)]
    for i, p in enumerate(small):
        p.write_bytes(_png_bytes((i, i, i)))
    big = tmp_path / "big.png"
    big.write_bytes(_png_bytes((1, 2, 3)) + b"\0" * 2048)
    report = studio.ingest_uploads([big, *small])  # a refused file counts towards the limit too
    reasons = dict(report.failed)
    assert "MB limit per file set for this app" in reasons["big.png"] and "files per upload set for this app" in reasons["s2.png"]
    assert len(report.added) == 2


def test_corrupt_zip_is_reported(studio: Studio, tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    report = studio.ingest_uploads([bad])
    assert report.failed == [("broken.zip", "not a valid .zip archive")] and not report.added


def _bomb(path: Path, members: int, size: int) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            zf.writestr(f"zeros/{i:03d}.png", b"\0" * size)


def _written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_zip_bomb_writes_nothing(studio: Studio, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    # 120 MB of zeros in ~120 KB. What makes a member a bomb is its ratio (~1000:1, refused past 100:1) and a size
    # past the 1 MB under which small members are exempt; 20 MB members made the same bomb ten times slower to pack.
    _bomb(bomb, members=60, size=2 * 1024 * 1024)
    assert bomb.stat().st_size < 300 * 1024
    studio.settings = studio.settings.with_(max_upload_files=5)
    work = tmp_path / "work"
    work.mkdir()
    out = expand_uploads([bomb], studio.settings, work)
    assert _written(work) == 0 and not out.files
    reasons = [r for _, r in out.refused]
    assert sum("zip bomb" in r for r in reasons) == 5  # the count limit stops it before all 60 are even checked
    assert out.refused[-1] == ("55 more archive member(s)", "not unpacked: over the limit of 5 files per upload set for this app")
    report = studio.ingest_uploads([bomb])
    assert not report.added and len(report.failed) == 6


def test_the_total_unpacked_per_upload_is_capped(studio: Studio, tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(6):
            zf.writestr(f"img{i}.png", _png_bytes((i, 0, 0)) + bytes(range(256)) * 1024)  # ~256 KB, incompressible-ish
    studio.settings = studio.settings.with_(max_upload_total_mb=1.0)
    work = tmp_path / "work"
    work.mkdir()
    out = expand_uploads([archive], studio.settings, work)
    assert len(out.files) == 3 and _written(work) <= 1024 * 1024
    assert [r for _, r in out.refused] == ["the archive expands past the 1 MB limit per upload set for this app"] * 3


def test_a_member_whose_header_lies_is_cut_off(studio: Studio, tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("big.png", b"\x89PNG" + b"x" * 4000)
    data = bytearray(archive.read_bytes())
    # Shrink the declared size in both headers (local at 22, central directory at its own +24) to 10 bytes.
    central = data.rfind(b"PK\x01\x02")
    for offset in (22, central + 24):
        data[offset : offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    studio.settings = studio.settings.with_(max_upload_mb=0.001)  # 1 KB per file
    work = tmp_path / "work"
    work.mkdir()
    out = expand_uploads([archive], studio.settings, work)
    assert not out.files and _written(work) == 0
    assert len(out.refused) == 1 and out.refused[0][0] == "liar.zip/big.png"  # zipfile's own checks, or our cap

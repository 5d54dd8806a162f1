"""A full disk, for real: the data folder on a small tmpfs. Every action fails with a sentence, leaves
no record without its file, and works again once there is space."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.core import BananaError, GenerationError
from rag.generation.base import GeneratedImage, GenerationResult
from rag.generation.provenance import save_result
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings

FOOD = sorted((SAMPLE / "food").iterdir())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)  # lazy: Milvus Lite may still hold files


def fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def consistent(studio: Studio) -> None:
    """No record without its file; no library file without its record once orphans are cleared."""
    studio.remove_orphans()
    records = {a.id: a for a in studio.store.page(0, 1000)}
    assert all(Path(a.path).is_file() for a in records.values())
    files = [p for p in studio.settings.library_dir.rglob("*") if p.is_file()]
    assert {p.stem for p in files} <= set(records)


def test_uploads_on_a_full_disk_fail_in_words_and_work_again(small_disk: Path, embedder) -> None:
    studio = Studio(test_settings(small_disk / "data"), embedder=embedder)
    try:
        assert studio.count() == 0
        filler = fill(small_disk, leave=16 * 1024)
        try:
            report = studio.ingest_uploads(FOOD)
            reasons = {r for _, r in report.failed}
            assert reasons and all("the disk is full; free some space and try again" in r for r in reasons)
        except BananaError as exc:  # the copies fitted, the database's write did not
            assert "the disk is full" in str(exc)
        consistent(studio)
        filler.unlink()
        report = studio.ingest_uploads(FOOD)
        assert not report.failed and studio.count() == len(FOOD)
        consistent(studio)
    finally:
        studio.close()


def test_a_generated_image_on_a_full_disk_leaves_no_file(small_disk: Path) -> None:
    png = FOOD[0].read_bytes()
    result = GenerationResult(images=[GeneratedImage(png, "image/png")] * 2, text="", prompt="p", model="m",
                              aspect_ratio="1:1", references=[], created=0.0)
    outputs = small_disk / "outputs"
    filler = fill(small_disk, leave=len(png) + 8 * 1024)  # room for about one image, not two
    with pytest.raises(GenerationError, match="the disk is full; free some space and try again"):
        save_result(result, outputs, max_pixels=10**8)
    assert not [p for p in outputs.rglob("*") if p.is_file()]
    filler.unlink()
    saved = save_result(result, outputs, max_pixels=10**8)
    assert len(saved) == 2 and all(p.is_file() for p in saved)

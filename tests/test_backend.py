"""The backend end to end: real open_clip (weightless), real Milvus Lite in a temporary folder."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.clip import ClipEmbedder
from rag.core import BananaError, ConfigError, ImageError, ModelLoadError, Settings
from rag.media import decode
from rag.store import build_filter
from rag.studio import Studio
from tests.conftest import SAMPLE


def _png(path: Path, color: tuple[int, int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGBA", size, color)
    for x in range(0, size[0], 4):  # some structure, so images differ beyond colour
        img.putpixel((x, x % size[1]), (255 - color[0], 0, color[2], 255))
    img.save(path)
    return path


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for i, name in enumerate(["cats", "cars", "cars/red"]):
        for j in range(3):
            _png(root / name / f"img_{i}_{j}.PNG", (40 * i + 10 * j, 200 - 30 * j, 60 * i, 255), (64 + 8 * j, 48))
    return root


def test_image_search_finds_the_image_itself_first(sample_studio: Studio) -> None:
    probe = next(p for p in sorted((SAMPLE / "food").iterdir()))
    hits = sample_studio.search(image=probe, k=5)
    assert hits[0].asset.path == str(probe.resolve())
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_by_stored_id_matches_search_by_file(sample_studio: Studio) -> None:
    probe = sorted((SAMPLE / "animals").iterdir())[0]
    by_file = sample_studio.search(image=probe, k=3)
    by_id = sample_studio.search(image_id=by_file[0].asset.id, k=3)
    assert [h.asset.id for h in by_id] == [h.asset.id for h in by_file]


def test_text_search_returns_k_ranked_results_with_metadata(sample_studio: Studio) -> None:
    hits = sample_studio.search("a red car", k=7)
    assert len(hits) == 7
    first = hits[0].asset
    assert first.width > 0 and first.height > 0 and first.format == "PNG" and first.bytes > 0
    assert first.source == "folder" and first.folder in {p.name for p in SAMPLE.iterdir()}


def test_text_plus_image_lies_between_text_and_image(sample_studio: Studio) -> None:
    probe = sorted((SAMPLE / "tools").iterdir())[0]
    image_only = sample_studio.search(image=probe, k=1)[0]
    mixed = sample_studio.search("a red car", image=probe, image_weight=0.9, k=1, words=False)[0]
    # Mostly image: the image itself still wins, with a score below a pure image match.
    assert mixed.asset.id == image_only.asset.id
    assert mixed.score < image_only.score


def test_filters_restrict_folder_and_source(sample_studio: Studio) -> None:
    hits = sample_studio.search("anything", k=50, folders=["food", "plants"])
    assert hits and {h.asset.folder for h in hits} <= {"food", "plants"}
    assert sample_studio.search("anything", k=5, sources=["generated"]) == []
    assert len(sample_studio.search("anything", k=50, sources=["folder"])) == 50


def test_filter_quoting_survives_hostile_folder_names() -> None:
    expr = build_filter(['a"b', "c\\d"], ["upload"])
    assert expr == ('(folder in ["a\\"b", "c\\\\d"] or (folder >= "a\\"b/" and folder < "a\\"b0") '
                    'or (folder >= "c\\\\d/" and folder < "c\\\\d0")) and source in ["upload"]')  # subfolders too


def test_reingest_adds_nothing_and_reports_duplicates(studio: Studio, small_folder: Path) -> None:
    first = studio.ingest_folder(small_folder)
    assert len(first.added) == 9 and not first.failed
    second = studio.ingest_folder(small_folder)
    assert second.added == [] and len(second.duplicates) == 9
    assert studio.count() == 9


def test_same_content_twice_in_one_batch_is_one_record(studio: Studio, small_folder: Path) -> None:
    shutil.copy(small_folder / "cats" / "img_0_0.PNG", small_folder / "copy.png")
    report = studio.ingest_folder(small_folder)
    assert len(report.added) == 9 and len(report.duplicates) == 1
    (dup_path, dup_id), = report.duplicates
    assert Path(dup_path).name == "img_0_0.PNG"  # files at the top of the folder are walked first
    assert dup_id in {a.id for a in report.added if a.filename == "copy.png" and a.folder == "lib"}


def test_bad_files_are_reported_not_fatal(studio: Studio, small_folder: Path) -> None:
    (small_folder / "empty.jpg").write_bytes(b"")
    (small_folder / "noise.jpg").write_bytes(os.urandom(2048))
    (small_folder / "notes.png").write_text("this is not a picture\n")
    (small_folder / "readme.txt").write_text("ignored")
    report = studio.ingest_folder(small_folder)
    reasons = dict((Path(p).name, r) for p, r in report.failed)
    assert set(reasons) == {"empty.jpg", "noise.jpg", "notes.png"}
    assert "empty" in reasons["empty.jpg"]
    assert "not a recognised image" in reasons["noise.jpg"]
    assert len(report.added) == 9
    assert report.seen == 12 and [Path(p).name for p in report.ignored] == ["readme.txt"]
    assert studio.count() == 9


def test_uploads_are_copied_content_addressed(studio: Studio, tmp_path: Path) -> None:
    src = _png(tmp_path / "in" / "logo.png", (0, 0, 0, 0))
    report = studio.ingest_files([src], folder="brand")
    (asset,) = report.added
    stored = Path(asset.path)
    assert stored.parent.parent == studio.settings.library_dir.resolve()
    assert stored.name == f"{asset.id}.png" and stored.read_bytes() == src.read_bytes()
    assert asset.source == "upload" and asset.folder == "brand" and asset.filename == "logo.png"
    src.unlink()  # the library keeps working when the original goes away
    assert studio.search(image=stored, k=1)[0].asset.id == asset.id


def test_delete_removes_record_and_trashes_owned_file(studio: Studio, tmp_path: Path, small_folder: Path) -> None:
    studio.ingest_folder(small_folder)
    up = studio.ingest_files([_png(tmp_path / "u.png", (1, 2, 3, 255))]).added[0]
    folder_asset = studio.table(folders=["cats"]).iloc[0]
    assert studio.delete([up.id, folder_asset["id"], "f" * 64]) == 2
    assert studio.count() == 8
    assert studio.get([up.id]) == []
    assert not Path(up.path).exists() and (studio.settings.data_dir / "trash" / Path(up.path).name).exists()
    assert Path(folder_asset["path"]).exists()  # the user's own files are never touched
    assert all(h.asset.id != up.id for h in studio.search(image=small_folder / "cats" / "img_0_0.PNG", k=20))


def test_table_and_stats(studio: Studio, small_folder: Path) -> None:
    studio.ingest_folder(small_folder)
    table = studio.table()
    assert len(table) == 9 and list(table.columns)[:3] == ["filename", "folder", "source"]
    assert len(studio.table(folders=["cars/red"])) == 3
    stats = studio.stats()
    assert stats["count"] == 9 and stats["by_folder"] == {"cars": 3, "cars/red": 3, "cats": 3}
    assert stats["by_source"] == {"folder": 9}


def test_remove_orphans_after_interrupted_upload(studio: Studio, tmp_path: Path) -> None:
    kept = studio.ingest_files([_png(tmp_path / "a.png", (9, 9, 9, 255))]).added[0]
    orphan = studio.settings.library_dir / "ab" / ("ab" + "0" * 62 + ".png")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    partial = studio.settings.library_dir / "ab" / ".part-123.png"
    partial.write_bytes(b"x")
    assert sorted(studio.remove_orphans()) == sorted([orphan, partial])
    assert Path(kept.path).exists()


def test_transparent_pixels_become_the_neutral_background() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(buf, "PNG")
    decoded = decode(buf.getvalue(), background=(128, 128, 128))
    assert decoded.image.mode == "RGB" and decoded.image.getpixel((0, 0)) == (128, 128, 128)
    half = Image.new("LA", (4, 4), (0, 128))
    assert decode(half).image.getpixel((0, 0)) == (64, 64, 64)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    decoded = decode(buf.getvalue())
    assert (decoded.width, decoded.height) == (20, 40) and decoded.image.size == (20, 40)


def test_image_too_large_is_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buf, "PNG")
    with pytest.raises(ImageError, match="too large"):
        decode(buf.getvalue(), max_pixels=1_000_000)


def test_embeddings_are_normalised_float32(embedder) -> None:
    vecs = embedder.embed_texts(["a red silk cape", "a red silk cape", "gold trim"])
    assert vecs.dtype == np.float32 and vecs.shape == (3, 512)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vecs[0], vecs[1])
    with pytest.raises(ImageError, match="empty"):
        embedder.embed_images([b""])


def test_empty_query_is_a_clear_error(sample_studio: Studio) -> None:
    with pytest.raises(BananaError, match="Type something"):
        sample_studio.search("   ")
    with pytest.raises(BananaError, match="No asset"):
        sample_studio.search(image_id="0" * 64)


def test_settings_from_env() -> None:
    s = Settings.from_env({"BANANA_DATA_DIR": "/x", "EMBED_BATCH_SIZE": "8", "GOOGLE_API_KEY": "k-123"})
    assert s.milvus_uri == "/x/milvus.db" and s.library_dir == Path("/x/library") and s.batch_size == 8
    assert s.gemini_api_key == "k-123" and "k-123" not in repr(s)
    assert not s.is_server and Settings.from_env({"MILVUS_URI": "http://milvus:19530"}).is_server
    with pytest.raises(ConfigError, match="EMBED_BATCH_SIZE"):
        Settings.from_env({"EMBED_BATCH_SIZE": "many"})
    assert Settings.from_env({}).clip_pretrained == "laion2b_s34b_b79k"  # never 'none' by default


def test_unloadable_weights_warm_up_logs_and_search_explains(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = ClipEmbedder(Settings(clip_pretrained=str(tmp_path / "gone.safetensors")))
    broken.warm_up()  # at app start: logs, never raises
    assert "CLIP_PRETRAINED" in caplog.text
    with pytest.raises(ModelLoadError, match="CLIP_PRETRAINED"):
        broken.embed_texts(["x"])


def test_files_over_max_file_mb_are_refused_before_reading(studio: Studio, tmp_path: Path) -> None:
    folder = tmp_path / "huge"
    folder.mkdir()
    big = folder / "poster.png"
    with open(big, "wb") as fh:  # sparse: 3 GB that cost no disk and would take seconds to hash
        fh.truncate(3 * 1024**3)
    shutil.copy(SAMPLE / "food" / sorted(p.name for p in (SAMPLE / "food").iterdir())[0], folder / "small.png")
    report = studio.ingest_folder(folder)
    assert [a.filename for a in report.added] == ["small.png"]
    assert report.failed == [(str(big), "the file is 3072 MB, over the 200 MB limit set for this app")]


def test_the_app_indexes_server_folders_only_under_library_roots(studio: Studio, tmp_path: Path) -> None:
    with pytest.raises(BananaError, match="no folders on this server are open to it") as refused:
        studio.ingest_allowed_folder(SAMPLE / "food")
    assert refused.value.setting == "LIBRARY_ROOTS" and "LIBRARY_ROOTS" not in str(refused.value)  # the page's words
    root = tmp_path / "shared-drive"
    (root / "shoes").mkdir(parents=True)
    shutil.copy(next((SAMPLE / "food").iterdir()), root / "shoes" / "one.png")
    (root / "escape").symlink_to(SAMPLE)
    studio.settings = studio.settings.with_(library_roots=(root,))
    for outside in ("/etc", str(SAMPLE), f"{root}/../", str(root / "escape"), ""):
        with pytest.raises(BananaError, match="Only folders under"):
            studio.ingest_allowed_folder(outside)
    report = studio.ingest_allowed_folder(root / "shoes")
    assert [a.filename for a in report.added] == ["one.png"] and report.added[0].source == "folder"

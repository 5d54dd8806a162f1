"""The library as a browser: the grid (newest first, pages, facet counts), asset pages (parents and
children), tags, moves, the Trash, and the upload fixes. Real Milvus Lite, real (weightless) CLIP."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rag.library.grid as library_module
from rag.core import SAMPLE_DIR, BananaError
from rag.library import PAGE_SIZE, LibraryFilter
from rag.library.assets import clean_folder, clean_tags, rewrite
from rag.search import Query
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings


def _png(color: tuple[int, int, int], size: int = 40) -> bytes:
    img = Image.new("RGB", (size, size), color)
    for x in range(0, size, 3):
        img.putpixel((x, (x * 7) % size), (255 - color[0], color[1] // 2, 255 - color[2]))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _files(folder: Path, n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img_{seed}_{i}.png"
        path.write_bytes(_png(((seed * 50 + i * 20) % 256, (i * 70) % 256, (seed * 90) % 256)))
        paths.append(path)
    return paths


@pytest.fixture
def library(studio: Studio, tmp_path: Path) -> Studio:
    """Three uploads, one after another (so "newest first" has an order): 3 cats, 3 cars, 2 generated."""
    studio.ingest_files(_files(tmp_path / "in" / "cats", 3, 1), folder="cats")
    studio.ingest_files(_files(tmp_path / "in" / "cars", 3, 2), folder="cars")
    cats = studio.library_page(LibraryFilter(folders=("cats",))).assets
    studio.ingest_files(_files(tmp_path / "in" / "gen", 2, 3), source="generated", folder="generated",
                        meta={"model": "gemini-3.1-flash-image", "prompt": "two cats", "parents": [cats[0].id, cats[1].id]})
    return studio


def test_grid_is_newest_first_paged_with_counts_per_facet(library: Studio) -> None:
    page = library.library_page(limit=5)
    assert page.total == 8 and len(page.assets) == 5 and page.more
    everything = page.assets + library.library_page(offset=5, limit=5).assets
    assert len({a.id for a in everything}) == 8  # the two pages cover the library once
    created = [a.created for a in everything]
    assert created == sorted(created, reverse=True) and everything[0].source == "generated"
    assert page.facets["folder"] == {"cars": 3, "cats": 3, "generated": 2}
    assert page.facets["source"] == {"upload": 6, "generated": 2}
    assert page.facets["model"] == {"gemini-3.1-flash-image": 2}
    assert page.facets["added"] == {"past day": 8, "past week": 8, "past month": 8, "older": 0}
    only_uploads = library.library_page(LibraryFilter(sources=("upload",)))
    assert only_uploads.total == 6 and {a.source for a in only_uploads.assets} == {"upload"}
    # each facet counts under the other facets' choices, and keeps its own values choosable
    assert only_uploads.facets["folder"] == {"cars": 3, "cats": 3}
    assert only_uploads.facets["source"] == {"upload": 6, "generated": 2}
    assert library.library_page(limit=0).assets == [] and PAGE_SIZE == 60


def test_date_added_and_the_milvus_filter_agree_with_the_grid(library: Studio) -> None:
    old = library.library_page(LibraryFilter(folders=("cars",))).assets[0]
    rewrite(library.store, [old.id], lambda a: replace(a, created=time.time() - 40 * 86_400))
    library.set_tags(old.id, "vintage, red")
    library.set_tags(library.library_page(LibraryFilter(folders=("cats",))).assets[0].id, "red")
    assert library.library_page(LibraryFilter(added="older")).total == 1
    assert library.library_page(LibraryFilter(added="past week")).total == 7
    assert library.library_page(limit=8).assets[-1].id == old.id  # the oldest comes last
    choices = [
        LibraryFilter(), LibraryFilter(folders=("cats", "cars")), LibraryFilter(sources=("generated",)),
        LibraryFilter(tags=("red",)), LibraryFilter(tags=("vintage", "nothing")), LibraryFilter(models=("gemini-3.1-flash-image",)),
        LibraryFilter(added="older"), LibraryFilter(added="past day", folders=("cars",)), LibraryFilter(tags=("red",), added="past day"),
    ]
    for chosen in choices:  # the in-memory grid and a Milvus query give the same answer
        assert library.library_page(chosen).total == library.store.count(chosen.expression()), chosen
    with pytest.raises(BananaError, match="Date added must be one of"):
        LibraryFilter(added="yesterday")


def test_the_grid_follows_every_write_without_rescanning(library: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library.library_page()  # built once
    scans: list[int] = []
    real = library.store.iter_records
    monkeypatch.setattr(library.store, "iter_records", lambda *a, **k: scans.append(1) or real(*a, **k))
    added = library.ingest_files(_files(tmp_path / "more", 1, 9), folder="new").added[0]
    assert library.library_page().assets[0].id == added.id
    library.move([added.id], "moved")
    assert library.library_page(LibraryFilter(folders=("moved",))).total == 1
    library.set_tags(added.id, "fresh")
    assert library.library_page().facets["tags"] == {"fresh": 1}
    library.delete([added.id])
    assert library.library_page().total == 8
    library.restore([added.id])
    assert library.library_page(LibraryFilter(tags=("fresh",))).assets[0].folder == "moved"
    assert scans == []


def test_asset_page_shows_parents_children_and_how_it_was_made(library: Studio) -> None:
    generated = library.library_page(LibraryFilter(sources=("generated",))).assets
    cats = {a.id: a for a in library.library_page(LibraryFilter(folders=("cats",))).assets}
    child = library.asset(generated[0].id)
    parents = child.asset.meta["parents"]
    assert [a.id for a in child.parents] == parents and set(parents) <= set(cats)
    assert child.generation["prompt"] == "two cats" and child.generation["model"] == "gemini-3.1-flash-image"
    assert child.generation["cost_usd"] == pytest.approx(0.067) and child.generation["image_size"] == "40×40"
    parent = library.asset(parents[0])
    assert {a.id for a in parent.children} == {a.id for a in generated} and parent.generation == {}
    library.delete([parents[1]])
    again = library.asset(generated[0].id)
    assert [a.id for a in again.parents] == parents[:1] and again.missing_parents == parents[1:]
    assert again.to_dict()["parents"] == parents[:1] + parents[1:]
    with pytest.raises(BananaError, match="no longer in the library"):
        library.asset("f" * 64)


def test_tags_and_moves_survive_a_restart_and_come_back_from_search(library: Studio, embedder) -> None:
    target = library.library_page(LibraryFilter(folders=("cars",))).assets[0]
    vector = library.store.vectors([target.id])[target.id]
    assert library.set_tags(target.id, " Red , red,  hero shot ").meta["tags"] == ["Red", "hero shot"]
    assert library.move([target.id, "f" * 64], "products\\\\shoes//") == 1
    assert library.add_tags([target.id], ["new"]) == 1
    settings = library.settings
    library.close()
    reopened = Studio(settings, embedder=embedder)
    try:
        (again,) = reopened.get([target.id])
        assert again.folder == "products/shoes" and again.meta["tags"] == ["Red", "hero shot", "new"]
        assert again.path == target.path and Path(again.path).is_file()  # the file did not move
        np.testing.assert_allclose(reopened.store.vectors([target.id])[target.id], vector, atol=1e-6)
        hits = reopened.search(Query(image_id=target.id, k=3))
        assert hits[0].asset.id == target.id and hits[0].asset.meta["tags"] == ["Red", "hero shot", "new"]
        assert [h.asset.id for h in reopened.search(Query(text="anything", tags=("hero shot",)))] == [target.id]
    finally:
        reopened.close()


@pytest.mark.parametrize("name", ["../../etc", "a/../b", ".", "x" * 300, "line\nbreak", "  /  "])
def test_a_move_to_an_unsafe_folder_is_refused_and_creates_nothing(library: Studio, tmp_path: Path, name: str) -> None:
    def files() -> list[Path]:
        return sorted(p for p in [*tmp_path.rglob("*"), *tmp_path.parent.iterdir()] if "milvus.db" not in p.parts)

    before = files()
    asset = library.library_page(limit=1).assets[0]
    with pytest.raises(BananaError) as err:
        library.move([asset.id], name)
    assert str(err.value).endswith(".") and "folder" in str(err.value).lower()
    assert library.get([asset.id])[0].folder == asset.folder
    assert files() == before


def test_folder_and_tag_names_are_cleaned() -> None:
    assert clean_folder(" a // b \\ c/ ") == "a/b/c" and clean_folder("ünï 文字/x") == "ünï 文字/x"
    assert clean_tags("a, A ,b,, ") == ["a", "b"] and clean_tags(["x y", "x  y"]) == ["x y"]
    assert clean_tags(["tab\there\n"]) == ["tab here"]
    for bad in ("t" * 41, "nul\x00"):
        with pytest.raises(BananaError, match="tag"):
            clean_tags([bad])
    with pytest.raises(BananaError, match="at most 30 tags"):
        clean_tags([f"t{i}" for i in range(31)])


def test_trash_keeps_records_and_restores_them_exactly(library: Studio) -> None:
    child = library.library_page(LibraryFilter(sources=("generated",))).assets[0]
    library.set_tags(child.id, "keep me")
    library.move([child.id], "archive/2024")
    (before,) = library.get([child.id])
    vector = library.store.vectors([child.id])[child.id]
    assert library.delete([child.id]) == 1
    assert library.get([child.id]) == [] and not Path(before.path).exists()
    (entry,) = library.trash.entries()
    assert entry.asset == before and entry.file is not None and entry.file.is_file()
    assert library.remove_orphans() == []
    back, problems = library.restore([child.id, "f" * 64])
    assert [a.id for a in back] == [child.id] and problems == [("f" * 64, "it is not in the Trash (emptied, or already restored)")]
    assert library.get([child.id]) == [before] and Path(before.path).is_file()
    np.testing.assert_allclose(library.store.vectors([child.id])[child.id], vector, atol=1e-6)
    assert library.trash.entries() == []
    library.delete([child.id])
    assert library.trash.empty() == 1 and library.trash.entries() == [] and not list(library.settings.trash_dir.iterdir())
    assert library.restore([child.id])[0] == []


def test_in_place_files_are_never_moved_to_the_trash(studio: Studio, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _files(folder, 2, 5)
    studio.ingest_folder(folder)
    asset = studio.library_page().assets[0]
    studio.delete([asset.id])
    assert Path(asset.path).is_file() and studio.trash.entries()[0].file is None
    assert [a.id for a in studio.restore([asset.id])[0]] == [asset.id]


def test_zip_subfolders_duplicates_and_tags_of_an_upload(studio: Studio, tmp_path: Path) -> None:
    known = tmp_path / "known.png"
    known.write_bytes(_png((9, 9, 9)))
    (first,) = studio.ingest_files([known], folder="old").added
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("shoes/red/a.png", _png((200, 0, 0)))
        zf.writestr("top.png", _png((0, 200, 0)))
        zf.writestr("../sneaky/b.png", _png((0, 0, 200)))
        zf.writestr("again.png", known.read_bytes())
    messages: list[str] = []
    report = studio.ingest_uploads([archive], folder="drop", tags="spring, Launch",
                                   progress=lambda done, total, text: messages.append(text))
    folders = {a.filename: a.folder for a in report.added}
    assert folders == {"a.png": "drop/shoes/red", "top.png": "drop", "b.png": "drop/sneaky"}
    assert all(a.meta["tags"] == ["spring", "Launch"] for a in report.added)
    assert studio.duplicate_reasons(report) == [("drop.zip/again.png", "already in the library as known.png in old")]
    assert studio.get([first.id])[0].meta["tags"] == ["spring", "Launch"]  # the library's copy got the tags
    assert any("1 already in the library" in m for m in messages[:-1]) and messages[-1].startswith("3 added")
    with pytest.raises(BananaError, match=r"\.\."):
        studio.ingest_uploads([archive], folder="../up")


def test_a_folder_holds_its_subfolders_everywhere(studio: Studio, tmp_path: Path, cli) -> None:
    """Issue 26.9: "spring launch" includes "spring launch/food" (and deeper) in the Library grid and its
    Milvus filter, Search, a campaign's folder and the CLI's --folder; not "spring launchpad" nor
    "spring launch-b", whose names only start alike. The pickers list every level with its count."""
    from ui.campaign import folder_choices

    names = ["spring launch", "spring launch/food", "spring launch/food/hot", "spring launchpad", "spring launch-b",
             "spring launch2"]
    files = {path: name for n, name in enumerate(names) for path in _files(tmp_path / "in" / str(n), 1, n + 10)}
    studio.ingest_files(list(files), folders=files)
    inside = {"spring launch", "spring launch/food", "spring launch/food/hot"}
    chosen = LibraryFilter(folders=("spring launch",))
    page = studio.library_page(chosen)
    assert page.total == 3 and {a.folder for a in page.assets} == inside
    assert studio.store.count(chosen.expression()) == 3  # the table view's Milvus filter agrees
    assert studio.library_page(LibraryFilter(folders=("spring launch/food/",))).total == 2
    facets = studio.library_page(limit=0).facets["folder"]
    assert facets["spring launch"] == 3 and facets["spring launch/food"] == 2 and facets["spring launchpad"] == 1
    assert ("spring launch (3)", "spring launch") in folder_choices(studio)  # the campaign's folder picker
    assert {h.asset.folder for h in studio.search("anything", k=20, folders=["spring launch"])} == inside
    assert {a.folder for a in studio.campaign_assets(folder="spring launch")[0]} == inside
    found = cli(["search", "anything", "-k", "20", "--folder", "spring launch", "--json"], tmp_path)
    assert found.returncode == 0, found.stderr
    assert {r["folder"] for r in json.loads(found.stdout)["results"]} == inside


def test_the_sample_library_is_one_call(studio: Studio, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    for topic in ("animals", "food"):
        for src in sorted((SAMPLE / topic).iterdir())[:2]:
            (sample / topic).mkdir(parents=True, exist_ok=True)
            (sample / topic / src.name).write_bytes(src.read_bytes())
    report = studio.add_sample_library(sample=sample)
    assert len(report.added) == 4 and studio.stats()["by_folder"] == {"sample/animals": 2, "sample/food": 2}
    assert all(Path(a.path).is_relative_to(studio.settings.library_dir.resolve()) for a in report.added)
    assert SAMPLE_DIR == SAMPLE and (SAMPLE / "animals").is_dir()  # the default is the bundled folder


def test_grid_previews_never_wait(library: Studio) -> None:
    asset = library.library_page(limit=1).assets[0]
    assert library.preview(asset, make=False) is None  # not made by asking
    made = library.preview(asset)
    assert made is not None and library.preview(asset, make=False) == made
    assert library.placeholder().read_text().startswith("<svg") and library.preview(asset, large=True) != made


def test_a_server_index_rebuilds_when_old(tmp_path: Path, embedder) -> None:
    studio = Studio(test_settings(tmp_path), embedder=embedder)
    try:
        studio.ingest_files(_files(tmp_path / "x", 1, 4))
        server, lite = (library_module.LibraryIndex(studio.store, max_age_s=age) for age in (0.0, None))
        assert len(server.rows()) == len(lite.rows()) == 1
        for index in (server, lite):
            index.stop_listening()  # as if another process wrote
        studio.ingest_files(_files(tmp_path / "y", 1, 6))
        assert len(server.rows()) == 2 and len(lite.rows()) == 1
    finally:
        studio.close()


def test_download_original_keeps_the_file_name(library: Studio, tmp_path: Path) -> None:
    from ui.asset import download_copy

    asset = library.library_page(LibraryFilter(folders=("cats",)), limit=1).assets[0]
    copy = Path(download_copy(asset))
    assert copy.name == asset.filename and copy.read_bytes() == Path(asset.path).read_bytes()
    assert Path(asset.path).name == f"{asset.id}.png"  # the library's copy is named by content, the download is not
    library.delete([asset.id])
    assert download_copy(replace(asset, id="0" * 64)) is None  # its file is in the Trash now

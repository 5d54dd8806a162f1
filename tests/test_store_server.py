"""The store's behaviours on both back ends: Milvus Lite (a file) and a real Milvus server.

Every test runs twice, ``[lite]`` and ``[server]``. The server is ``MILVUS_TEST_URI`` when set,
else the embedded Milvus 2.3.5 standalone of ``tests/milvus_server.py`` (started once a session,
on loopback only); ``[server]`` tests are skipped, with the reason, when neither is possible.

Each test gets collections of its own (unique names, dropped afterwards) except the read-only
checks, which share one filled collection per back end: on the server every new collection costs
~3 s (creating the index and loading it), so one shared read-only collection saves ~30 s of CI.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from rag.clip import ClipEmbedder
from rag.core import Asset, StoreError
from rag.store import build_filter
from rag.store.milvus import QUERY_WINDOW, MilvusStore
from rag.studio import Studio
from tests.conftest import SAMPLE, MilvusBackend, test_settings, unique_collection

DIM = 16
MODEL = "test/model"
N = 240
HOSTILE = ['quote"d', "back\\slash", "it's", 'x" or folder != "', "ünï 文字", "new\nline", "tab\tand ; -- drop"]
FOLDERS = ["plain", "cars/red", *HOSTILE]


def make_assets(n: int, start: int = 0, *, seed: int = 7) -> tuple[list[Asset], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assets = [
        Asset(
            id=f"{start + i:064x}",
            path=f"/lib/{FOLDERS[(start + i) % len(FOLDERS)]}/img_{start + i}.png",
            filename=f"img_{start + i}.png",
            folder=FOLDERS[(start + i) % len(FOLDERS)],
            width=10 + i,
            height=20 + i,
            format="PNG",
            bytes=1000 + i,
            created=1_700_000_000.5 + i,
            source=("folder", "upload", "generated")[(start + i) % 3],
            meta={"i": start + i, "prompt": 'say "hi"\\n', "parents": [f"{i:064x}"], "nested": {"ü": [1, 2.5, None]}},
        )
        for i in range(n)
    ]
    return assets, vectors


def open_store(backend: MilvusBackend, dim: int = DIM, model: str = MODEL, **changes: object) -> MilvusStore:
    return MilvusStore(backend.settings(**changes), dim, model)


@pytest.fixture
def store(milvus_backend: MilvusBackend) -> MilvusStore:
    s = open_store(milvus_backend)
    yield s
    s.close()


# -- one filled, read-only collection per back end ------------------------------------------------
@pytest.fixture(scope="module", params=["lite", "server"])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp(f"filled-{request.param}")
    uri = request.getfixturevalue("milvus_test_uri") if request.param == "server" else str(tmp / "milvus.db")
    backend = MilvusBackend(request.param, uri, tmp)
    s = open_store(backend)
    assets, vectors = make_assets(N)
    for start in range(0, N, 100):  # several upserts, as ingest does
        s.upsert(assets[start : start + 100], vectors[start : start + 100])
    s.flush()
    yield s, assets, vectors
    s.close()
    backend.drop_all()


def test_get_existing_ids_and_vectors(filled) -> None:
    s, assets, vectors = filled
    missing = "f" * 64
    got = s.get([assets[5].id, missing, assets[3].id, assets[5].id])
    assert [a.id for a in got] == [assets[5].id, assets[3].id]  # asked order, no duplicates, no missing
    assert got[0] == assets[5]  # every field, meta JSON included, comes back as written
    assert s.existing_ids([assets[0].id, missing, assets[-1].id]) == {assets[0].id, assets[-1].id}
    assert s.get([]) == [] and s.existing_ids([]) == set() and s.vectors([]) == {}
    found = s.vectors([assets[7].id, missing])
    assert set(found) == {assets[7].id}
    assert found[assets[7].id].dtype == np.float32
    np.testing.assert_allclose(found[assets[7].id], vectors[7], atol=1e-6)


def test_count_with_filters_and_hostile_quotes(filled) -> None:
    s, assets, _ = filled
    assert s.count() == N
    for folder in FOLDERS:
        expected = sum(a.folder == folder for a in assets)
        assert s.count(build_filter([folder])) == expected, folder
    assert s.count(build_filter(HOSTILE[:2], ["generated"])) == sum(
        a.folder in HOSTILE[:2] and a.source == "generated" for a in assets
    )
    assert s.count(build_filter(['nothing" or folder != "'])) == 0  # an injection attempt matches nothing


def test_search_finds_each_vector_itself_first(filled) -> None:
    s, assets, vectors = filled
    for i in (0, 17, N - 1):
        hits = s.search(vectors[i], 5)
        assert hits[0].asset == assets[i]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_with_hostile_filters_returns_only_matches(filled) -> None:
    s, assets, vectors = filled
    for folder in HOSTILE:
        i = next(j for j, a in enumerate(assets) if a.folder == folder)
        hits = s.search(vectors[i], 50, build_filter([folder]))
        assert hits and hits[0].asset.id == assets[i].id, folder
        assert {h.asset.folder for h in hits} == {folder}
        assert len(hits) == sum(a.folder == folder for a in assets)


def test_search_k_beyond_ef_and_beyond_the_server_window(filled) -> None:
    s, assets, vectors = filled
    exact = np.argsort(-(vectors @ vectors[3]))
    hits = s.search(vectors[3], 100)  # HNSW needs ef >= k: ef is raised with k
    assert [h.asset.id for h in hits[:20]] == [assets[j].id for j in exact[:20]]
    assert len(hits) == 100
    assert len(s.search(vectors[3], QUERY_WINDOW + 5)) == N  # a server refuses top-k > 16384: clamped


def test_page_walks_every_record_once(filled) -> None:
    s, assets, _ = filled
    pages = [s.page(offset, 50) for offset in range(0, N + 50, 50)]
    ids = [a.id for page in pages for a in page]
    assert sorted(ids) == sorted(a.id for a in assets) and len(ids) == len(set(ids))
    assert pages[-1] == []
    folder = HOSTILE[0]
    assert {a.folder for a in s.page(0, 1000, build_filter([folder]))} == {folder}


def test_page_past_the_server_query_window(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages past the server's query window come from the query iterator: the same rows as a query.

    ``page()`` takes that path only on a server (Lite has no window), so the store's pages are given
    a small window, on both back ends, and the spy checks the iterator path really ran. A tiny iterator
    batch makes offsets fall inside, across and past batch boundaries.
    """
    s, assets, _ = filled
    plain = [(offset, 30, "") for offset in (0, 7, 30, 200, 235, N + 5)]
    flt = build_filter(["plain", HOSTILE[1]])
    filtered = [(offset, 30, flt) for offset in (0, 10, 55)]
    near = {args: s.page(*args) for args in plain + filtered}
    assert sum(map(len, near.values())) > 0 and near[(N + 5, 30, "")] == []
    far_calls: list[tuple] = []
    far_page = s.pages.far_page
    monkeypatch.setattr(s.pages, "far_page", lambda *args: far_calls.append(args) or far_page(*args))
    monkeypatch.setattr(s.pages, "window", 25)  # a server's window (Lite has none), and every page above is past it
    monkeypatch.setattr(s.pages, "batch", 7)
    for args, expected in near.items():
        assert s.page(*args) == expected, args
    assert len(far_calls) == len(near)
    walked = [a.id for offset in range(0, N, 45) for a in s.page(offset, 45)]
    assert sorted(walked) == sorted(a.id for a in assets)  # every record once


def test_page_beyond_16384_records(milvus_backend: MilvusBackend) -> None:
    """The server refuses offset+limit > 16384 in a query; the store walks the iterator instead."""
    s = MilvusStore(milvus_backend.settings(), 2, MODEL)
    n = QUERY_WINDOW + 16
    vectors = np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))
    template = make_assets(1)[0][0].to_dict()
    assets = [Asset(**{**template, "id": f"{i:064x}", "meta": {}}) for i in range(n)]
    for start in range(0, n, 5000):
        s.upsert(assets[start : start + 5000], vectors[start : start + 5000])
    assert s.count() == n
    last = s.page(QUERY_WINDOW - 4, 50)
    assert len(last) == 20 and len({a.id for a in last}) == 20
    if s.is_server:  # primary-key order there, so the very last ids
        assert [a.id for a in last] == [a.id for a in assets[-20:]]
    s.close()


def test_iter_records_in_batches_with_vectors(filled) -> None:
    s, assets, vectors = filled
    batches = list(s.iter_records(batch=64, with_vectors=True))
    assert [len(b) for b in batches[:-1]] == [64] * (len(batches) - 1) and 0 < len(batches[-1]) <= 64
    rows = {r["id"]: r for b in batches for r in b}
    assert len(rows) == N
    by_id = {a.id: i for i, a in enumerate(assets)}
    for rid, row in list(rows.items())[:: N // 12]:
        np.testing.assert_allclose(np.asarray(row["vector"], dtype=np.float32), vectors[by_id[rid]], atol=1e-6)
        assert row["meta"] == assets[by_id[rid]].meta and row["folder"] == assets[by_id[rid]].folder
    assert "vector" not in next(iter(s.iter_records(batch=10)))[0]


def test_facet_counts_values(filled) -> None:
    s, assets, _ = filled
    by_folder = s.facet("folder")
    assert sum(by_folder.values()) == N and set(by_folder) == set(FOLDERS)
    assert by_folder[HOSTILE[3]] == sum(a.folder == HOSTILE[3] for a in assets)
    assert list(s.facet("source").values()) == [N // 3] * 3


def test_index_is_per_back_end(filled) -> None:
    s, _, _ = filled
    expected = "HNSW" if s.is_server else "FLAT"
    assert s.index_type() == expected and s.search_index == expected
    assert s.client.describe_index(s.collection, "vector")["index_type"] == expected


# -- tests with collections of their own ------------------------------------------------------------
def test_upsert_is_idempotent_and_the_last_copy_wins(store: MilvusStore) -> None:
    assets, vectors = make_assets(20)
    store.upsert(assets, vectors)
    store.upsert(assets, vectors)
    assert store.count() == 20
    changed = Asset(**{**assets[0].to_dict(), "folder": "moved", "meta": {"v": 2}})
    # The same id twice in one batch: a server would keep both rows; the store keeps the last.
    store.upsert([assets[0], changed, assets[1]], np.stack([vectors[0], vectors[2], vectors[1]]))
    assert store.count() == 20 and store.facet("folder")["moved"] == 1
    assert store.get([changed.id]) == [changed]
    np.testing.assert_allclose(store.vectors([changed.id])[changed.id], vectors[2], atol=1e-6)
    assert store.search(vectors[2], 2)[0].asset.id in {changed.id, assets[2].id}
    store.upsert([], np.zeros((0, DIM), np.float32))
    with pytest.raises(ValueError):
        store.upsert(assets[:2], vectors[:1])


def test_delete_returns_how_many_were_there(store: MilvusStore) -> None:
    assets, vectors = make_assets(12)
    store.upsert(assets, vectors)
    assert store.delete([assets[0].id, assets[1].id, "f" * 64, assets[0].id]) == 2
    assert store.count() == 10 and store.delete([assets[0].id]) == 0 and store.delete([]) == 0
    assert store.get([assets[0].id]) == [] and store.existing_ids([assets[1].id]) == set()
    assert all(h.asset.id not in {assets[0].id, assets[1].id} for h in store.search(vectors[0], 12))
    assert store.count(build_filter([assets[2].folder])) == sum(a.folder == assets[2].folder for a in assets[2:])


def test_reopen_an_existing_collection(milvus_backend: MilvusBackend, caplog: pytest.LogCaptureFixture) -> None:
    first = open_store(milvus_backend)
    name = first.collection
    assets, vectors = make_assets(9)
    first.upsert(assets, vectors)
    first.flush()
    first.close()

    again = open_store(milvus_backend, collection=name)
    assert again.count() == 9 and again.search(vectors[4], 1)[0].asset == assets[4]
    again.close()

    with caplog.at_level(logging.WARNING, logger="rag.store.milvus"):
        other_model = open_store(milvus_backend, collection=name, model="ViT-L-14/other")
    assert "re-index" in caplog.text and other_model.count() == 9
    other_model.close()

    with pytest.raises(StoreError, match=f"holds {DIM}-d vectors but the model makes 32-d"):
        open_store(milvus_backend, dim=32, collection=name)


def test_configured_index_and_reopening_keeps_the_real_one(milvus_backend: MilvusBackend) -> None:
    s = open_store(milvus_backend, index_type="IVF_FLAT")  # MILVUS_INDEX=IVF_FLAT
    assert s.client.describe_index(s.collection, "vector")["index_type"] == "IVF_FLAT"
    assets, vectors = make_assets(30)
    s.upsert(assets, vectors)
    assert s.search(vectors[6], 3)[0].asset.id == assets[6].id  # IVF search parameters (nprobe) accepted
    s.close()
    reopened = open_store(milvus_backend, collection=s.collection, index_type="HNSW")
    assert reopened.search_index == "IVF_FLAT"  # search parameters follow the collection, not the setting
    assert reopened.search(vectors[8], 3)[0].asset.id == assets[8].id
    reopened.close()


def test_hnsw_on_indexed_segments_matches_exact_search(milvus_backend: MilvusBackend) -> None:
    """Enough rows for a server to seal, index and load a segment: HNSW with ef really answers."""
    s = open_store(milvus_backend, index_type="HNSW")
    n = 2000
    assets, vectors = make_assets(n, seed=11)
    for start in range(0, n, 500):
        s.upsert(assets[start : start + 500], vectors[start : start + 500])
    s.flush()
    deadline = time.monotonic() + 60
    while (info := s.client.describe_index(s.collection, "vector"))["indexed_rows"] < n and time.monotonic() < deadline:
        time.sleep(0.25)
    assert info["index_type"] == "HNSW" and info["indexed_rows"] >= n, info
    for i in (1, 999):
        exact = [assets[j].id for j in np.argsort(-(vectors @ vectors[i]))[:10]]
        assert [h.asset.id for h in s.search(vectors[i], 10)] == exact
    assert len(s.search(vectors[0], 300)) == 300  # ef = k = 300
    s.close()


# -- the product end to end on a server ------------------------------------------------------------
def test_studio_ingests_and_searches_on_a_server(
    milvus_test_uri: str, tmp_path: Path, embedder: ClipEmbedder
) -> None:
    folder = tmp_path / "pictures"
    for sub in ("animals", "food", "tools"):
        for src in sorted((SAMPLE / sub).iterdir())[:2]:
            (folder / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, folder / sub / src.name)
    settings = test_settings(tmp_path, milvus_uri=milvus_test_uri, collection=unique_collection("studio"))
    studio = Studio(settings, embedder=embedder)
    try:
        report = studio.ingest_folder(folder)
        assert len(report.added) == 6 and not report.failed
        assert studio.ingest_folder(folder).added == []  # incremental: nothing new
        assert studio.count() == 6 and studio.stats()["by_folder"] == {"animals": 2, "food": 2, "tools": 2}
        probe = sorted((folder / "food").iterdir())[0]
        hits = studio.search(image=probe, k=3)
        assert hits[0].asset.path == str(probe.resolve()) and hits[0].score == pytest.approx(1.0, abs=1e-3)
        assert {h.asset.folder for h in studio.search("a tool", k=6, folders=["tools"])} == {"tools"}
        assert len(studio.search("anything", k=20)) == 6
        assert studio.delete([hits[0].asset.id]) == 1 and studio.count() == 5
        assert len(studio.table()) == 5
        words_on_server(studio)
    finally:
        studio.store.client.drop_collection(settings.collection)
        studio.close()


def words_on_server(studio: Studio) -> None:
    """A server before 2.5 has no BM25: the collection is made without the text field, a text search
    is CLIP's alone and says so in one sentence (stats too); from 2.5 words are matched."""
    version = studio.store.client.get_server_version()
    found = studio.search_results('"fruit" -zebra', k=5, min_score=0.0001)
    if tuple(map(int, re.findall(r"\d+", version)[:2])) >= (2, 5):
        assert studio.stats()["word_search"] and not found.notice
        return
    assert "text" not in {f["name"] for f in studio.store.client.describe_collection(studio.settings.collection)["fields"]}
    notice = f"Word search needs Milvus 2.5 or newer; this server runs {version}, so search matches pictures (CLIP) only."
    assert studio.stats()["words_notice"] == notice and not studio.stats()["word_search"]
    assert found.notice == notice and notice in found.summary()
    assert all(not h.words for h in found.hits) and all(h.relevance >= 0.0001 for h in found.hits)
    assert len(studio.search("a tool", k=5, words=False)) == len(studio.search("a tool", k=5))
    before, report = studio.count(), studio.reindex()  # rebuilds and swaps by renaming there too
    assert report.copied == before and not report.word_search and studio.count() == before
    assert studio.store.client.list_collections().count(studio.settings.collection) == 1
    assert not any(c.startswith(studio.settings.collection + "__") for c in studio.store.client.list_collections())


def test_children_come_from_one_filtered_query_and_tags_filter_on_meta(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An asset page's children: one query filtered on ``meta["parents"]`` (no scan). The grid's tag,
    model and date filters read ``meta`` too, with hostile values quoted safely; both back ends agree."""
    from rag.library import LibraryFilter
    from rag.library.assets import children

    assets, vectors = make_assets(12)
    p1, p2 = assets[0].id, assets[1].id
    meta = {2: {"parents": [p1]}, 3: {"parents": [p1, p2], "tags": ['quote"d', "red"], "model": "m-1"},
            4: {"parents": [p2], "tags": ["red"], "model": 'm"2'}, 5: {"tags": HOSTILE[:3]}}
    rows = [Asset(**{**a.to_dict(), "meta": meta.get(i, {}), "source": "generated" if i in (2, 3, 4) else "upload"})
            for i, a in enumerate(assets)]
    store.upsert(rows, vectors)
    calls: list[str] = []
    real_query = store.client.query
    monkeypatch.setattr(store.client, "query", lambda *a, **k: calls.append(k.get("filter", "")) or real_query(*a, **k))
    assert {a.id for a in children(store, p1)} == {rows[2].id, rows[3].id}
    assert len(calls) == 1 and "parents" in calls[0]
    assert [a.id for a in children(store, p2)] == sorted([rows[3].id, rows[4].id], key=lambda i: -rows[int(i, 16)].created)
    assert children(store, 'x" or id != "') == [] and children(store, rows[5].id) == []
    counts = {
        LibraryFilter(tags=("red",)): 2, LibraryFilter(tags=('quote"d',)): 2, LibraryFilter(tags=(HOSTILE[1], "nothing")): 1,
        LibraryFilter(models=("m-1", 'm"2')): 2, LibraryFilter(models=('m"2',), tags=("red",)): 1,
        LibraryFilter(sources=("generated",), added="older"): 3, LibraryFilter(added="past day"): 0,
    }
    for folder in {"cars", *FOLDERS}:  # a folder holds its subfolders ("cars" holds "cars/red"), hostile names too
        counts[LibraryFilter(folders=(folder,))] = sum(r.folder == folder or r.folder.startswith(folder + "/") for r in rows)
    for chosen, expected in counts.items():  # make_assets dates everything in 2023
        assert store.count(chosen.expression()) == expected, chosen

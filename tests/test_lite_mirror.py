"""Lite's vectors in memory (rag/store/lite_mirror.py): the same answers as Milvus Lite, kept current."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.clip import ClipEmbedder
from rag.store.lite_mirror import VectorMirror
from rag.store.lite_words import WordIndex, best, tokens
from rag.store.schema import SPARSE_FIELD
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings

TEXTS = ["a red car", "soup in a bowl", "green leaves", "a cat", "sunset over the sea", "musical instrument",
         "flower", "bird on a branch"]
EVERYTHING = 'id != ""'  # a filter that keeps every record: the search then goes to Lite itself


def _sides(found) -> tuple[list, dict, dict]:  # noqa: ANN001 - rag.store.Candidates
    """Both sides of a search, rounded: the pictures in order, each word match's (BM25, share), every cosine."""
    return ([(i, round(s, 3)) for i, s in found.pictures], {i: (round(b, 3), w) for i, (b, w) in found.words.items()},
            {i: round(s, 3) for i, s in found.cosines.items()})


def test_searches_answer_as_milvus_lite_does(sample_studio: Studio) -> None:
    store = sample_studio.store
    assert store.memory.ready() is not None  # the fixture warmed it, as the app does
    for text in TEXTS:
        vec = sample_studio.embedder.embed_texts([text])[0]
        ours, lite = store.search(vec, 10), store.search(vec, 10, EVERYTHING)
        assert [h.asset.id for h in ours] == [h.asset.id for h in lite], text
        assert np.allclose([h.score for h in ours], [h.score for h in lite], atol=1e-4)
        assert all(h.asset == g.asset for h, g in zip(ours, lite))
        words = text.split()[-1]
        ours_both, lite_both = store.candidates(vec, 10, text=words), store.candidates(vec, 10, EVERYTHING, text=words)
        assert _sides(ours_both) == _sides(lite_both), text
        cut = store.search(vec, 50, min_score=0.2)
        assert [h.asset.id for h in cut] == [h.asset.id for h in store.search(vec, 50, EVERYTHING, min_score=0.2)]
    worded = store.candidates(sample_studio.embedder.embed_texts(["car"])[0], 10, text="car red")
    assert worded.words and set(worded.words) <= set(worded.cosines) and not worded.assets  # records: only the winners'
    assert {w for _, w in worded.words.values()} <= {0.5, 1.0}


def test_word_scores_are_milvus_bm25(sample_studio: Studio) -> None:
    store = sample_studio.store
    mirror = store.memory.ready()
    assert mirror is not None
    for text in ["car", "red car", "soup bowl food", "flower flower garden", "animal bird cat", "the"]:
        rows = store.client.search(store.collection, data=[text], anns_field=SPARSE_FIELD, limit=200,
                                   search_params={"metric_type": "BM25"}, output_fields=["id"])[0]
        lite = {str(r["id"]): abs(float(r["distance"])) for r in rows}  # Lite gives -score
        ours = mirror.word_scores(text)
        assert ours.keys() == lite.keys(), text
        assert all(abs(ours[i] - lite[i]) < 1e-4 for i in lite), text
    assert mirror.word_scores("car") and not mirror.word_scores("the")  # a stop word matches nothing


def test_word_index_follows_puts_and_removes() -> None:
    index = WordIndex()
    index.put("a", " red car red ")
    index.put("b", " blue car the ")
    assert tokens(" blue car the ") == ["blue", "car"]
    idf = np.log((2 - 1 + 0.5) / (1 + 0.5) + 1)  # "red": in one record of two
    avgdl = 2.5  # a: red car red (3 words), b: blue car (2; "the" is a stop word)
    expected = idf * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 3 / avgdl))  # k1 1.5, b 0.75
    assert abs(index.scores("red")["a"] - expected) < 1e-9
    assert best(index.scores("car red"), 1) == ["a"]
    index.put("a", " green ")  # a record's words replaced (new tags)
    assert "a" not in index.scores("red car") and index.scores("green").keys() == {"a"}
    index.remove("a")
    index.remove("missing")
    assert len(index) == 1 and not index.scores("green") and index.scores("car").keys() == {"b"}


def test_writes_reach_the_copy_and_a_reindex_replaces_it(tmp_path: Path, embedder: ClipEmbedder) -> None:
    shutil.copytree(SAMPLE / "food", tmp_path / "food")
    studio = Studio(test_settings(tmp_path / "data"), embedder=embedder)
    try:
        studio.warm_up()  # an empty library's copy (the sample library's test reads a full one)
        studio.ingest_folder(tmp_path / "food")
        probe = sorted((tmp_path / "food").iterdir())[0]
        vec = embedder.embed_images([probe])[0]
        (first,) = studio.store.search(vec, 1)
        assert first.score > 0.999 and (mirror := studio.store.memory.ready()) is not None
        assert first.asset.id in mirror.word_scores("food")  # its folder's word
        studio.delete([first.asset.id])
        assert first.asset.id not in {h.asset.id for h in studio.store.search(vec, 20)}
        assert first.asset.id not in mirror.word_scores("food")
        studio.ingest_files([probe])
        assert studio.store.search(vec, 1)[0].asset.id == first.asset.id
        before = [h.asset.id for h in studio.store.search(vec, 5)]
        studio.reindex()  # closes the store, swaps the collection: the old copy must not answer
        studio.store.warm_up()
        assert [h.asset.id for h in studio.store.search(vec, 5)] == before
    finally:
        studio.close()


def test_writes_while_the_copy_loads_are_not_undone() -> None:
    mirror, one = VectorMirror(4), np.eye(4, dtype=np.float32)
    mirror.put(["a", "b"], one[:2], [" x ", " x "])
    mirror.remove(["a"])  # deleted by the app after the loader had read the page holding "a"
    mirror.put(["b"], one[1:2], [" new tag "])  # and "b" tagged again
    mirror.put(["a", "b", "c"], one[:3], [" x ", " old ", " x "], read=True)
    mirror.loaded()
    assert [i for i, _ in mirror.top(one[0] + one[1] + one[2], 5)] == ["b", "c"]
    assert mirror.word_scores("new").keys() == {"b"} and not mirror.word_scores("old")
    assert mirror.word_scores("x").keys() == {"c"}
    mirror.put(["a"], one[:1], read=True)  # once loaded, a read is a read
    assert mirror.top(one[0], 1) == [("a", 1.0)]
    mirror.remove(["b", "missing"])
    assert sorted(i for i, _ in mirror.top(one[2], 5)) == ["a", "c"] and len(mirror) == 2


@pytest.mark.parametrize("n", [1, 3000])
def test_top_k_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    mirror = VectorMirror(8)
    mirror.put([str(i) for i in range(n)], vectors)
    q = rng.standard_normal(8).astype(np.float32)
    expected = [str(i) for i in np.argsort(-(vectors @ q), kind="stable")[:10]]
    assert [i for i, _ in mirror.top(q, 10)] == expected

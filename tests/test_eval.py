"""The retrieval harness (bench/eval_retrieval.py) and the search options it measures.

Fast: metrics on hand-made rankings, the harness's refusal to run without real weights, and the
words/dedupe/ensemble options on a tiny library (weightless model, real Milvus Lite).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.clip import ClipEmbedder
from rag.search.engine import Query, query_vector, search_results
from rag.search.rank import ENSEMBLE_TEMPLATES
from rag.studio import Studio
from tests.conftest import ROOT, SAMPLE, real_weights, test_settings

HARNESS = ROOT / "bench" / "eval_retrieval.py"


def search(embedder: ClipEmbedder, store, query: Query) -> list:  # noqa: ANN001 - a VectorStore
    """The ranked hits of one query, as the Studio returns them."""
    return search_results(embedder, store, query).hits


def _load_harness():
    spec = importlib.util.spec_from_file_location("eval_retrieval", HARNESS)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


ev = _load_harness()


# -- metrics --------------------------------------------------------------------------------------
def test_precision_and_recall_on_a_hand_made_ranking() -> None:
    ranked = ["a", "x", "b", "y", "z", "c"]
    relevant = {"a", "b", "c", "d"}
    assert ev.precision_at(ranked, relevant, 1) == 1.0
    assert ev.precision_at(ranked, relevant, 3) == pytest.approx(2 / 3)
    assert ev.precision_at(ranked, relevant, 10) == pytest.approx(3 / 10)  # a short list counts as misses
    assert ev.recall_at(ranked, relevant, 3) == pytest.approx(2 / 4)
    assert ev.recall_at(ranked, relevant, 100) == pytest.approx(3 / 4)
    assert ev.hit_at(ranked, relevant, 1) == 1.0 and ev.hit_at(["x", "a"], relevant, 1) == 0.0
    assert ev.reciprocal_rank(["x", "y", "b"], relevant) == pytest.approx(1 / 3)
    assert ev.reciprocal_rank(["x", "y", "b"], relevant, 2) == 0.0


def test_average_precision_on_a_hand_made_ranking() -> None:
    relevant = {"a", "b", "c", "d"}
    # Relevant at places 1, 3 and 6; "d" is never found: (1/1 + 2/3 + 3/6) / 4.
    assert ev.average_precision(["a", "x", "b", "y", "z", "c"], relevant) == pytest.approx((1 + 2 / 3 + 0.5) / 4)
    assert ev.average_precision(["a", "b", "c", "d", "x"], relevant) == pytest.approx(1.0)
    assert ev.average_precision(["x", "y"], relevant) == 0.0
    # Truncated at k: divided by min(relevant, k), so a perfect top-2 scores 1.
    assert ev.average_precision(["a", "b", "x"], relevant, 2) == pytest.approx(1.0)
    assert ev.average_precision(["x", "a", "b"], relevant, 2) == pytest.approx((1 / 2) / 2)
    assert np.isnan(ev.average_precision(["a"], set()))


def test_labels_come_from_folders_and_abstract_ones_have_none() -> None:
    assert ev.labels_for("animals/birds/owl.png") == {"animals", "animals/birds"}
    assert ev.labels_for("recreation/games/cards/white/7.png") == {"recreation", "recreation/games"}
    assert ev.labels_for("food/apple.png") == {"food"}
    assert ev.labels_for("shapes/stars/star_01.png") == set()
    assert ev.labels_for("shapes/arrows/arrow.png") == {"shapes/arrows"}
    assert ev.labels_for("special/patterns/p.png") == set() and ev.labels_for("unsorted/x.png") == set()
    assert ev.spread(list(range(10)), 3) == [0, 3, 6] and ev.spread([1, 2], 5) == [1, 2]


def test_creative_queries_name_existing_sample_files() -> None:
    queries = ev.load_creative()
    assert len(queries) == 30
    assert all(q["ids"] for q in queries)
    lexical = sum(q["lexical"] for q in queries)
    assert 10 <= lexical <= 20  # both halves are represented
    assert all((SAMPLE / folder).is_dir() for folder in ("animals", "transportation"))


# -- refusing to run without weights ---------------------------------------------------------------
def _harness(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "CLIP_PRETRAINED"}
    clean.update(env)
    return subprocess.run([sys.executable, str(HARNESS), *args], capture_output=True, text=True, env=clean, timeout=60)


def test_harness_refuses_without_real_weights() -> None:
    if real_weights() is not None or ev.real_weights() is not None:
        pytest.skip("real weights are present, so the harness would run")
    proc = _harness("--skip-openclipart")
    assert proc.returncode == ev.EXIT_NO_WEIGHTS, proc.stderr
    assert "--allow-random" in proc.stderr and "RESULT" not in proc.stdout


def test_harness_refuses_the_random_model_unless_allowed() -> None:
    proc = _harness("--skip-openclipart", CLIP_PRETRAINED="none")
    assert proc.returncode == ev.EXIT_NO_WEIGHTS, proc.stderr
    assert "random" in proc.stderr


def test_weights_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weights = tmp_path / "ViT-B-32.bin"
    weights.write_bytes(b"x")
    monkeypatch.setenv("CLIP_PRETRAINED", str(weights))
    assert ev.choose_weights(False) == (str(weights), False)
    monkeypatch.setenv("CLIP_PRETRAINED", "none")
    assert ev.choose_weights(True) == ("none", True)
    with pytest.raises(SystemExit) as exc:
        ev.choose_weights(False)
    assert exc.value.code == ev.EXIT_NO_WEIGHTS


# -- the options on a tiny library ------------------------------------------------------------------
def _png(path: Path, seed: int, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder) -> Studio:
    """Nine images, read-only for the tests that share it: six named ones, one in a folder named
    'giraffes', and two near-copies."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    studio = Studio(test_settings(tmp_path / "data"), embedder=embedder)
    root = tmp_path / "lib"
    names = ["alpha_01.png", "beta_02.png", "gamma_03.png", "delta_04.png", "zebra_stripes.png", "epsilon_05.png"]
    for i, name in enumerate(names):
        _png(root / "misc" / name, i)
    _png(root / "giraffes" / "tall_one.png", 50)
    # Two near-copies: the same noise with one pixel changed.
    twin = root / "twins" / "twin_a.png"
    _png(twin, 99)
    img = Image.open(twin)
    img.putpixel((0, 0), (0, 0, 0))
    img.save(root / "twins" / "twin_b.png")
    report = studio.ingest_folder(root)
    assert len(report.added) == 9 and not report.failed
    yield studio
    studio.store.close()


def test_search_without_words_is_one_plain_vector_query(tiny: Studio) -> None:
    """Words off and no other option: exactly what search returned before the options existed."""
    q = Query(text="a zebra", words=False)
    assert (q.ensemble, q.dedupe, Query().words) == (False, False, True)
    before = tiny.store.search(tiny.embedder.embed_texts(["a zebra"])[0], 9, "")
    after = search(tiny.embedder, tiny.store, q)
    assert [(h.asset.id, h.score) for h in after] == [(h.asset.id, h.score) for h in before]
    assert [h.asset.id for h in tiny.search("a zebra", words=False)] == [h.asset.id for h in before]
    probe = sorted(tiny.store.existing_ids([h.asset.id for h in before]))[0]
    plain = tiny.store.search(tiny.store.vectors([probe])[probe], 5, "")
    assert [h.asset.id for h in tiny.search(image_id=probe, k=5)] == [h.asset.id for h in plain]


def test_words_put_name_matches_first(tiny: Studio) -> None:
    plain = tiny.search("a clip art drawing of a zebra", k=9, words=False)
    hybrid = tiny.search("a clip art drawing of a zebra", k=9)
    assert hybrid[0].asset.filename == "zebra_stripes.png"
    assert {h.asset.id for h in hybrid} == {h.asset.id for h in plain}  # same pool, new order
    zebra = next(h for h in hybrid if h.asset.filename == "zebra_stripes.png")
    assert zebra.score == pytest.approx(next(h.score for h in plain if h.asset.id == zebra.asset.id), abs=1e-5)  # still cosine
    # Folder names count too (and plurals match): "giraffe" finds giraffes/tall_one.png.
    assert tiny.search("giraffe", k=3)[0].asset.filename == "tall_one.png"
    # A name match outside the vector pool is still found, and filters still apply.
    assert tiny.search("zebra", k=1)[0].asset.filename == "zebra_stripes.png"
    narrow = search(tiny.embedder, tiny.store, Query(text="zebra", k=1, pool=1))
    assert narrow[0].asset.filename == "zebra_stripes.png"
    filtered = tiny.search("zebra", k=9, folders=["twins"])
    assert filtered and {h.asset.folder for h in filtered} == {"twins"}
    # No word that can match a name: the vector order is kept.
    assert [h.asset.id for h in tiny.search("a picture of", k=9)] == [
        h.asset.id for h in tiny.search("a picture of", k=9, words=False)
    ]


def test_dedupe_collapses_near_copies(tiny: Studio) -> None:
    twin = next(a for a in tiny.get([h.asset.id for h in tiny.search("x", k=9)]) if a.filename == "twin_a.png")
    plain = tiny.search(image_id=twin.id, k=4)
    assert {h.asset.filename for h in plain[:2]} == {"twin_a.png", "twin_b.png"}
    deduped = tiny.search(image_id=twin.id, k=4, dedupe=True)
    names = [h.asset.filename for h in deduped]
    assert names[0] == "twin_a.png" and "twin_b.png" not in names
    assert len(deduped) == 4  # the page is refilled from further down
    vectors = tiny.store.vectors([h.asset.id for h in deduped])
    m = np.stack([vectors[h.asset.id] for h in deduped])
    assert (m @ m.T)[np.triu_indices(4, 1)].max() < 0.97 + 1e-6
    # A threshold above 1 collapses nothing.
    loose = search(tiny.embedder, tiny.store, Query(image_id=twin.id, k=4, dedupe=True, dedupe_threshold=1.01))
    assert [h.asset.id for h in loose] == [h.asset.id for h in plain]


def test_ensemble_averages_the_templates(tiny: Studio) -> None:
    emb = tiny.embedder
    vec = query_vector(emb, tiny.store, Query(text="a dog", ensemble=True))
    parts = emb.embed_texts([t.format("a dog") for t in ENSEMBLE_TEMPLATES])
    expected = parts.mean(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vec, expected, atol=1e-5)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    assert not np.allclose(vec, query_vector(emb, tiny.store, Query(text="a dog")))
    # With an image, the ensembled text is what gets blended.
    probe = tiny.search("x", k=1)[0].asset.id
    mixed = query_vector(emb, tiny.store, Query(text="a dog", image_id=probe, image_weight=0.5, ensemble=True))
    blend = 0.5 * expected + 0.5 * tiny.store.vectors([probe])[probe]
    np.testing.assert_allclose(mixed, blend / np.linalg.norm(blend), atol=1e-5)

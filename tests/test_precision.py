"""CLIP_PRECISION: what ``auto`` picks, the load-time check that undoes a cast, the precision recorded
with a library, and libraries that rank the same whichever precision embedded them.

Real open_clip (the seeded random ViT-B-32), real Milvus Lite (and a server where one runs).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from rag.cli.library import cmd_stats
from rag.clip import ClipEmbedder
from rag.clip import precision as clip_precision
from rag.core import ConfigError, Settings
from rag.store import MilvusStore
from rag.studio import Studio
from tests.conftest import SAMPLE, MilvusBackend, test_settings

TEXTS = [
    "a red bicycle", "a cat asleep on a sofa", "lighthouse at night", "a bowl of fruit", "an office desk",
    "a smiling child", "a green tree in spring", "a guitar", "a map of the world", "a football match",
    "scissors and glue", "a laptop computer", "a slice of cake", "a mountain landscape", "a red car",
]
MIN_OVERLAP = 0.9  # top-10 lists share at least 9 of 10 results on average


def _sample_images(n: int) -> list[Path]:
    files = sorted(p for p in SAMPLE.rglob("*.png"))
    return [files[int(i * len(files) / n)] for i in range(n)]


LIBRARY = _sample_images(60)


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder) -> dict[str, Studio]:
    """60 of the sample library's images, spread over its folders, embedded twice: in fp32 and in bf16, each with
    its own model and collection (the whole library made this the suite's slowest set-up, fp32 at ~0.2 s a picture).

    The session's model serves the precision it runs in (``auto``: bf16 on a CPU with bf16, else fp32);
    only the other one is built here (building one costs seconds)."""
    studios = {}
    for precision in ("fp32", "bf16"):
        settings = test_settings(tmp_path_factory.mktemp(precision), precision=precision)
        model = embedder if embedder.precision == precision else ClipEmbedder(settings)
        studio = Studio(settings, embedder=model)
        report = studio.ingest_files(LIBRARY)
        assert len(report.added) + len(report.duplicates) == len(LIBRARY) and not report.failed
        studios[precision] = studio
    yield studios
    for studio in studios.values():
        studio.close()


def _top10(studio: Studio, query: str | np.ndarray) -> list[str]:
    """A text query as the app runs it; an image query as a vector (see below) searched in the store."""
    hits = studio.store.search(query, 10) if isinstance(query, np.ndarray) else studio.search(query, k=10)
    return [h.asset.id for h in hits]


def _image_vectors(studio: Studio, images: list[Path]) -> dict[Path, np.ndarray]:
    """What each library's model made of these images at ingest: the vector an image query in that
    precision sends (a "more like this" search, ``Query.image_id``, sends exactly this one), so no image
    is embedded again one at a time (each a whole ViT forward pass: most of this module's time)."""
    ids = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in images}
    stored = studio.store.vectors(list(ids.values()))
    return {p: stored[i] for p, i in ids.items()}


def test_a_bf16_library_queried_in_fp32_ranks_like_fp32_and_the_reverse(libraries: dict[str, Studio]) -> None:
    fp32, bf16 = libraries["fp32"], libraries["bf16"]
    assert fp32.embedder.precision == "fp32" and bf16.embedder.precision == "bf16"
    crossed = {  # each library searched with the other precision's query vectors
        "bf16 library, fp32 queries": Studio(bf16.settings, embedder=fp32.embedder, store=bf16.store),
        "fp32 library, bf16 queries": Studio(fp32.settings, embedder=bf16.embedder, store=fp32.store),
    }
    for studio in (fp32, bf16):  # each model's text vectors in one batch: searches take them from its query cache
        studio.embedder.embed_texts(TEXTS)  # (embed_texts' LRU) instead of a forward pass per search
    images = LIBRARY[::4]  # 15 of them
    vectors = {"fp32": _image_vectors(fp32, images), "bf16": _image_vectors(bf16, images)}
    queries: list[tuple[str | np.ndarray, str | np.ndarray]] = [(text, text) for text in TEXTS]  # (fp32, bf16)
    queries += [(vectors["fp32"][p], vectors["bf16"][p]) for p in images]
    overlaps: dict[str, list[float]] = {name: [] for name in crossed}
    for in_fp32, in_bf16 in queries:
        reference = set(_top10(fp32, in_fp32))
        assert len(reference) == 10
        for name, studio in crossed.items():
            query = in_fp32 if name.endswith("fp32 queries") else in_bf16
            overlaps[name].append(len(reference & set(_top10(studio, query))) / 10)
    for name, values in overlaps.items():
        assert np.mean(values) >= MIN_OVERLAP, (name, values)
        assert min(values) >= 0.6, (name, values)  # no query's list falls apart either


def test_the_precision_is_recorded_with_the_library_and_shown(
    libraries: dict[str, Studio], capsys: pytest.CaptureFixture[str]
) -> None:
    bf16, fp32 = libraries["bf16"], libraries["fp32"]
    assert bf16.store.precision == "bf16" and fp32.store.precision == "fp32"
    assert bf16.stats()["precision"] == "bf16"
    cmd_stats(bf16, argparse.Namespace(json=False))
    assert "(model ViT-B-32/none, bf16)" in capsys.readouterr().out


def test_a_library_written_in_two_precisions_says_so(milvus_backend: MilvusBackend) -> None:
    settings = milvus_backend.settings()
    store = MilvusStore(settings, 512, "ViT-B-32/none")
    try:
        assert store.precision == ""  # a new (or older) library does not say
        store.record_precision("bf16")
        store.record_precision("bf16")
        assert store.precision == "bf16"
    finally:
        store.close()
    reopened = MilvusStore(settings, 512, "ViT-B-32/none")
    try:
        assert reopened.precision == "bf16"  # kept with the collection, like the model
        reopened.record_precision("fp32")
        assert reopened.precision == "bf16+fp32"
    finally:
        reopened.close()


def test_a_cast_that_moves_the_probes_is_undone_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, libraries: dict[str, Studio]
) -> None:
    monkeypatch.setattr(clip_precision, "MIN_COSINE", 1.000001)  # no cast can pass: fall back
    emb = ClipEmbedder(test_settings(tmp_path, precision="bf16"))
    with caplog.at_level(logging.WARNING, logger="rag.clip.precision"):
        model = emb.visual.model
    assert emb.precision == "fp32" and "running in fp32" in caplog.text
    reference = libraries["fp32"].embedder.visual.model.state_dict()
    ours = model.state_dict()
    assert all(ours[k].dtype == reference[k].dtype and torch.equal(ours[k], reference[k]) for k in reference)


def test_auto_picks_by_device_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert clip_precision.resolve("auto", "cuda") == "fp16" and clip_precision.resolve("auto", "cuda:1") == "fp16"
    assert clip_precision.resolve("fp16", "cpu") == "fp32"  # fp16 is a GPU precision
    assert clip_precision.resolve("bf16", "cpu") == clip_precision.resolve("bf16", "cuda") == "bf16"  # forced
    flags = Path("/proc/cpuinfo").read_text().split()
    has = any(f in flags for f in clip_precision.CPU_BF16_FLAGS)
    assert clip_precision.cpu_has_bf16() == has  # torch and the kernel agree
    assert clip_precision.resolve("auto", "cpu") == ("bf16" if has else "fp32")
    monkeypatch.setattr(clip_precision, "cpu_has_bf16", lambda: False)
    assert clip_precision.resolve("auto", "cpu") == "fp32"


def test_clip_precision_setting_and_its_deprecated_alias() -> None:
    assert Settings.from_env({}).precision == "auto"
    assert Settings.from_env({"CLIP_PRECISION": " BF16 "}).precision == "bf16"
    assert Settings.from_env({"CLIP_TEXT_PRECISION": "fp32"}).precision == "fp32"  # the old name sets both towers
    assert Settings.from_env({"CLIP_PRECISION": "fp16", "CLIP_TEXT_PRECISION": "bf16"}).precision == "fp16"
    with pytest.raises(ConfigError, match="CLIP_PRECISION must be one of auto, fp32, bf16, fp16"):
        Settings.from_env({"CLIP_PRECISION": "int8"})

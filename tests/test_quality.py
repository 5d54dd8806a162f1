"""Retrieval quality with real CLIP weights (skipped, with the reason, when none are available)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.clip import ClipEmbedder
from rag.studio import Studio
from tests.conftest import SAMPLE, real_weights, test_settings

WEIGHTS = real_weights()
pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.skipif(
        WEIGHTS is None,
        reason="no real CLIP weights: set CLIP_PRETRAINED to a local ViT-B-32 weights file or provide ../shared/models",
    ),
]

QUERIES = {
    "animals": "a drawing of an animal",
    "food": "a drawing of food",
    "transportation": "a drawing of a vehicle",
    "plants": "a drawing of a plant or flower",
    "buildings": "a drawing of a building",
    "tools": "a drawing of a tool",
}


@pytest.fixture(scope="module")
def real_studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    settings = test_settings(tmp_path_factory.mktemp("real"), clip_pretrained=str(WEIGHTS))
    studio = Studio(settings, embedder=ClipEmbedder(settings))
    assert not studio.ingest_folder(SAMPLE).failed
    return studio


def test_text_queries_find_their_category(real_studio: Studio) -> None:
    precisions = {}
    for folder, text in QUERIES.items():
        hits = real_studio.search(text, k=8)
        precisions[folder] = sum(h.asset.folder == folder for h in hits) / len(hits)
    mean = sum(precisions.values()) / len(precisions)
    # Random ranking gives about 1/12 here; real ViT-B-32 weights do far better.
    assert mean >= 0.5, precisions


def test_image_neighbours_share_the_category(real_studio: Studio) -> None:
    same = total = 0
    for folder in QUERIES:
        probe = sorted((SAMPLE / folder).iterdir())[0]
        hits = real_studio.search(image=Path(probe), k=4)[1:]
        same += sum(h.asset.folder == folder for h in hits)
        total += len(hits)
    assert same / total >= 0.4

"""Ranking helpers for search: prompt ensembles and collapsing near-duplicate results.

Each is switched on by an option of :class:`rag.search.query.Query`. Words (BM25) and their fusion with
CLIP are Milvus' own (:meth:`rag.store.milvus.MilvusStore.hybrid_search`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.clip import Embedder
from rag.core import Hit
from rag.store import VectorStore

# Prompt templates averaged by ``Query(ensemble=True)``: CLIP's zero-shot recipe (average the
# normalised text embeddings of one phrase in several templates, then renormalise), with
# templates chosen for an asset library of drawings, icons and photos. The query itself is one.
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a photo of {}.",
    "a drawing of {}.",
    "a clip art illustration of {}.",
    "an icon of {}.",
    "a cartoon of {}.",
    "a black and white drawing of {}.",
    "a colourful illustration of {}.",
)

DEDUPE_COSINE = 0.97  # hits at least this close to a better-ranked hit are collapsed


# -- prompt ensembles -------------------------------------------------------------------------
def ensemble_text_vector(embedder: Embedder, text: str, templates: Sequence[str] = ENSEMBLE_TEMPLATES) -> np.ndarray:
    """The mean of the normalised embeddings of ``text`` in each template, renormalised."""
    prompts = list(dict.fromkeys(t.format(text) for t in templates))
    vecs = embedder.embed_texts(prompts)
    mean = np.asarray(vecs, dtype=np.float32).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


# -- near-duplicates ----------------------------------------------------------------------------
def collapse_near_duplicates(store: VectorStore, hits: Sequence[Hit], threshold: float = DEDUPE_COSINE) -> list[Hit]:
    """Drop each hit whose vector has cosine >= ``threshold`` with a better-ranked kept hit."""
    if len(hits) < 2:
        return list(hits)
    vectors = store.vectors([h.asset.id for h in hits])
    kept: list[Hit] = []
    kept_vecs: list[np.ndarray] = []
    for hit in hits:
        v = vectors.get(hit.asset.id)
        if v is None:
            continue
        if kept_vecs and float(np.max(np.stack(kept_vecs) @ v)) >= threshold:
            continue
        kept.append(hit)
        kept_vecs.append(v)
    return kept

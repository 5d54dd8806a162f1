"""Text→image, image→image and text+image search over the store."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .embedder import Embedder
from .errors import BananaError
from .filters import build_filter
from .query import Query
from .rank import collapse_near_duplicates, ensemble_text_vector, hybrid_rerank
from .store import VectorStore
from .types import Hit

MAX_K = 200
MAX_POOL = 1000


def query_vector(embedder: Embedder, store: VectorStore, query: Query) -> np.ndarray:
    """One normalised vector for the query: the weighted sum of its text and image parts."""
    parts: list[tuple[float, np.ndarray]] = []
    text = query.text.strip()
    weight = float(np.clip(query.image_weight, 0.0, 1.0))
    image_vec: np.ndarray | None = None
    if query.image_id:
        found = store.vectors([query.image_id])
        if query.image_id not in found:
            raise BananaError(f"No asset with id {query.image_id} is in the library.")
        image_vec = found[query.image_id]
    elif query.image is not None:
        image_vec = embedder.embed_images([query.image])[0]
    if text:
        text_vec = ensemble_text_vector(embedder, text) if query.ensemble else embedder.embed_texts([text])[0]
        parts.append((1.0 - weight if image_vec is not None else 1.0, text_vec))
    if image_vec is not None:
        parts.append((weight if text else 1.0, image_vec))
    if not parts:
        raise BananaError("Type something to search for, or give an example image.")
    vec = sum(w * v for w, v in parts)
    norm = float(np.linalg.norm(vec))
    if norm < 1e-8:
        raise BananaError("The text and image cancel each other out; change the image weight.")
    return (vec / norm).astype(np.float32)


def search(embedder: Embedder, store: VectorStore, query: Query) -> list[Hit]:
    k = int(np.clip(query.k, 1, MAX_K))
    vec = query_vector(embedder, store, query)
    filter = build_filter(query.folders, query.sources, tags=query.tags)
    hybrid = query.hybrid and bool(query.text.strip())
    if not hybrid and not query.dedupe:
        return store.search(vec, k, filter)
    # Re-ranking works on a pool of candidates larger than the page; collapsing needs spares.
    pool = int(np.clip(max(query.pool, 4 * k if query.dedupe else k), k, MAX_POOL))
    hits = store.search(vec, pool, filter)
    if hybrid:
        hits = hybrid_rerank(store, vec, hits, query.text, filter)
    if query.dedupe:
        hits = collapse_near_duplicates(store, hits[: max(pool, 4 * k)], float(query.dedupe_threshold))
    return hits[:k]


def hits_frame(hits: Sequence[Hit]) -> pd.DataFrame:
    """Results as a table (rank, score, file, folder, size, source, id, path)."""
    columns = ["rank", "score", "filename", "folder", "tags", "width", "height", "source", "id", "path"]
    rows = [
        {
            "rank": i + 1,
            "score": round(h.score, 4),
            "filename": h.asset.filename,
            "folder": h.asset.folder,
            "tags": ", ".join(h.asset.meta.get("tags") or []),
            "width": h.asset.width,
            "height": h.asset.height,
            "source": h.asset.source,
            "id": h.asset.id,
            "path": h.asset.path,
        }
        for i, h in enumerate(hits)
    ]
    return pd.DataFrame(rows, columns=columns)


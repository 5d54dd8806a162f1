"""Text→image, image→image and text+image search over the store: CLIP and, for words, Milvus' BM25."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rag.clip import Embedder
from rag.core import BananaError, Hit
from rag.search.query import Query
from rag.search.rank import collapse_near_duplicates, ensemble_text_vector
from rag.store import VectorStore, WordQuery, build_filter, parse_words

MAX_K = 200
MAX_POOL = 1000


@dataclass
class SearchResults:
    """The hits, plus what a person should know about them: how many fell under the cut-off and
    why words were not matched (an old server, a library to re-index)."""

    hits: list[Hit] = field(default_factory=list)
    below_cutoff: int = 0  # results the min-score cut-off kept from being fetched
    notice: str = ""

    def summary(self) -> str:
        """"N results under the cut-off were not fetched." and the notice, or ""."""
        cut = f"{self.below_cutoff} results under the cut-off were not fetched." if self.below_cutoff else ""
        return " ".join(t for t in (cut, self.notice) if t)


def _unit(vec: np.ndarray, problem: str) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    if norm < 1e-8:
        raise BananaError(problem)
    return (vec / norm).astype(np.float32)


def query_vector(embedder: Embedder, store: VectorStore, query: Query, words: WordQuery | None = None) -> np.ndarray:
    """One normalised vector for the query: the weighted sum of its text and image parts, minus the
    text embedding of each ``-word`` (as rclip does)."""
    words = words or parse_words(query.text)
    parts: list[tuple[float, np.ndarray]] = []
    text = words.clip_text
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
    vec = _unit(sum(w * v for w, v in parts), "The text and image cancel each other out; change the image weight.")
    if words.negatives:
        negative = np.asarray(embedder.embed_texts(list(words.negatives)), dtype=np.float32).sum(axis=0)
        vec = _unit(vec - negative, "The -words cancel the search out; remove one.")
    return vec


def _joined(*filters: str) -> str:
    return " and ".join(f"({f})" for f in filters if f)


def search_results(embedder: Embedder, store: VectorStore, query: Query) -> SearchResults:
    """Hybrid by default: a text query runs CLIP and BM25 together in one Milvus ``hybrid_search``
    (RRF); with no word to look for, words off, or a collection without a text field, CLIP alone."""
    k = int(np.clip(query.k, 1, MAX_K))
    words = parse_words(query.text)
    vec = query_vector(embedder, store, query, words)
    notice = store.words_notice
    use_words = query.words and not notice
    filter = _joined(build_filter(query.folders, query.sources, tags=query.tags), words.filter() if use_words else "")
    pool = int(np.clip(max(query.pool, 4 * k if query.dedupe else k), k, MAX_POOL))
    fetch = max(pool, 4 * k) if query.dedupe else k
    min_score = float(np.clip(query.min_score, 0.0, 1.0))
    if use_words and words.sparse_text:
        hits = store.hybrid_search(vec, words.sparse_text, fetch, filter, min_score=min_score, pool=pool)
    else:
        hits = store.search(vec, fetch, filter, min_score=min_score)
    if query.dedupe:
        hits = collapse_near_duplicates(store, hits, float(query.dedupe_threshold))
    hits = hits[:k]
    below = max(0, min(k, store.count(filter)) - len(hits)) if min_score > 0 and len(hits) < k and not query.dedupe else 0
    return SearchResults(hits=hits, below_cutoff=below, notice=notice if query.words and query.text.strip() else "")


def hits_frame(hits: Sequence[Hit]) -> pd.DataFrame:
    """Results as a table (rank, score, words matched, file, folder, size, source, id, path)."""
    columns = ["rank", "score", "words", "filename", "folder", "tags", "width", "height", "source", "id", "path"]
    rows = [
        {
            "rank": i + 1,
            "score": round(h.score, 4),
            "words": "yes" if h.words else "",
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

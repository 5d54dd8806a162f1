"""Text→image, image→image and text+image search over the store: CLIP and, for words, Milvus' BM25,
ranked together by one relevance (rag/search/rank.py) that orders, labels and cuts the results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rag.clip import Embedder
from rag.core import BananaError, Hit
from rag.search.query import Query
from rag.search.rank import Ranked, collapse_near_duplicates, ensemble_text_vector, rank
from rag.store import Candidates, VectorStore, WordQuery, build_filter, joined, parse_words

MAX_K = 200
MAX_POOL = 1000


@dataclass
class SearchResults:
    """The hits, plus what a person should know about them: how many the cut-off hid and why words
    were not matched (an old server, a library to re-index)."""

    hits: list[Hit] = field(default_factory=list)
    below_cutoff: int = 0  # results the cut-off (``Query.min_score``) hid from the page
    notice: str = ""

    def summary(self) -> str:
        """"N results hidden by the cut-off." and the notice, or ""."""
        n = self.below_cutoff
        cut = f"{n} result{'' if n == 1 else 's'} hidden by the cut-off." if n else ""
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


def search_results(embedder: Embedder, store: VectorStore, query: Query) -> SearchResults:
    """Hybrid by default: a text query asks the store for its nearest pictures (CLIP) and the records
    holding its words (BM25), and ranks both by one relevance; with no word to look for, words off, or
    a collection without a text field, pictures alone. The cut-off hides results under a relevance; an
    image holding every word of the query, or the best word match, has relevance 1, so no cut-off hides
    it (turn words off for that)."""
    k = int(np.clip(query.k, 1, MAX_K))
    words = parse_words(query.text)
    vec = query_vector(embedder, store, query, words)
    notice = store.words_notice
    use_words = query.words and not notice
    filter = joined(build_filter(query.folders, query.sources, tags=query.tags), words.filter() if use_words else "")
    pool = int(np.clip(max(query.pool, 4 * k if query.dedupe else k), k, MAX_POOL))
    found = store.candidates(vec, pool, filter, words.sparse_text if use_words else "")
    ranked = rank(found)
    cut = float(np.clip(query.min_score, 0.0, 1.0))
    kept = [r for r in ranked if r.relevance >= cut] if cut > 0 else ranked
    if query.dedupe:
        kept = collapse_near_duplicates(store, kept, float(query.dedupe_threshold), limit=k)
    kept = kept[:k]
    hidden = max(0, min(k, len(ranked)) - len(kept)) if cut > 0 and not query.dedupe else 0
    return SearchResults(hits=_hits(store, found, kept), below_cutoff=hidden,
                         notice=notice if query.words and query.text.strip() else "")


def _hits(store: VectorStore, found: Candidates, ranked: Sequence[Ranked]) -> list[Hit]:
    """The ranked results with their records: those the search brought back, the others read by id."""
    missing = [r.id for r in ranked if r.id not in found.assets]
    assets = {**found.assets, **{a.id: a for a in store.get(missing)}} if missing else found.assets
    return [Hit(asset=assets[r.id], score=r.score, words=r.words, relevance=r.relevance, match=r.match)
            for r in ranked if r.id in assets]


def hits_frame(hits: Sequence[Hit]) -> pd.DataFrame:
    """Results as a table (rank, relevance, what matched, cosine, words matched, file, folder, size, source, id, path)."""
    columns = ["rank", "relevance", "match", "score", "words", "filename", "folder", "tags", "width", "height", "source",
               "id", "path"]
    rows = [
        {
            "rank": i + 1,
            "relevance": round(h.relevance, 3),
            "match": h.match,
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

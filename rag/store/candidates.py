"""What one search found on each side, pictures and words, before they are ranked together.

The store answers two questions for a query: which records are nearest by picture (CLIP cosine), and
which hold the query's words (BM25, and how many of those words each holds). It does not fuse them:
rag/search/rank.py turns both into the one relevance that orders, labels and cuts the results, the same
way whether the answers came from Lite's copy in memory, Milvus Lite or a Milvus server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.core import Asset
from rag.store.lite_words import tokens
from rag.store.moments import Moments
from rag.store.schema import TEXT_FIELD, asset_from_row


@dataclass
class Candidates:
    """Both sides of one search: the nearest pictures, best first, and the records whose words matched."""

    pictures: list[tuple[str, float]] = field(default_factory=list)  # (id, cosine), nearest first
    words: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (BM25, share of the query's words held)
    cosines: dict[str, float] = field(default_factory=dict)  # every candidate's cosine, word-only ones included
    assets: dict[str, Asset] = field(default_factory=dict)  # records the search brought back; others are read by id
    typical: float | None = None  # the query's mean cosine over the library: what an unrelated image scores
    spread: float | None = None  # and their standard deviation


SAMPLE = 2000  # vectors whose moments stand for a large library's (ids are hashes: a fair sample)


class SampledMoments:
    """What a typical image of the library scores for a query, from a sample (rag/store/moments.py): for a
    server, and for Lite before its copy in memory is read (the copy keeps exact ones). Read on first
    use, and again once writes pass a tenth of what it was read from: a few new images barely move a
    mean, and a search on a server should not pay for a new sample after each one."""

    def __init__(self, sample: Callable[[int], np.ndarray], dim: int) -> None:
        self._sample, self._dim = sample, dim
        self._moments: Moments | None = None
        self._written = 0  # records written since the sample was read
        self._lock = threading.Lock()

    def typical(self, vector: np.ndarray) -> tuple[float, float] | None:
        with self._lock:
            if self._moments is None:
                vectors = self._sample(SAMPLE)
                self._moments, self._written = Moments(self._dim), 0
                if vectors.ndim == 2 and vectors.shape[1] == self._dim:  # a collection of another size reads none
                    self._moments.add(vectors)
            return self._moments.typical(vector)

    def written(self, n: int) -> None:
        """``n`` records were stored or deleted: read the sample again once they add up."""
        with self._lock:
            self._written += n
            if self._moments is not None and self._written >= max(1, self._moments.n // 10):
                self._moments = None

    def forget(self) -> None:
        """The collection was replaced (a rebuild swapped in): read the sample again."""
        with self._lock:
            self._moments = None


def word_share(query: str, held: str | Iterable[str]) -> float:
    """The share of the query's words (as BM25 reads them: stop words out) that a record holds, 0-1;
    "all of your words" reads better than a BM25 score, which has no scale."""
    wanted = set(tokens(query))
    have = set(tokens(held)) if isinstance(held, str) else set(held)
    return len(wanted & have) / len(wanted) if wanted else 0.0


def candidates_of(pictures: Sequence[dict[str, Any]], worded: Sequence[dict[str, Any]], vector: np.ndarray,
                  text: str) -> Candidates:
    """Candidates from Milvus' answers: a dense search's rows and a BM25 search's rows (with the text
    and vector fields, so each word match's share and cosine are known without another round trip)."""
    found = Candidates()
    for row in pictures:
        asset = asset_from_row(row)
        found.pictures.append((asset.id, float(row["distance"])))
        found.cosines[asset.id], found.assets[asset.id] = float(row["distance"]), asset
    q = np.asarray(vector, dtype=np.float32)
    for row in worded:
        asset, entity = asset_from_row(row), row.get("entity", row)
        found.assets.setdefault(asset.id, asset)
        found.cosines.setdefault(asset.id, float(np.dot(np.asarray(entity["vector"], dtype=np.float32), q)))
        found.words[asset.id] = (abs(float(row["distance"])), word_share(text, str(entity.get(TEXT_FIELD) or "")))
    return found

"""How a query's cosines spread over the whole library, without comparing the query with every image.

For unit vectors v and a query q, the mean of q·v is q·mean(v) and its variance is q·S·q - mean², with
S the mean of the outer products v vᵀ. So the sum of the vectors and of their outer products (a
512x512 matrix for ViT-B-32, 2 MB) tell any query what a typical image scores and how far scores
spread: what search needs to say how unusual a match is, the same way for any CLIP model
(rag/search/rank.py). Lite's copy in memory keeps them exact as it changes; elsewhere they come from
a sample of the library (rag/store/candidates.py).
"""

from __future__ import annotations

import numpy as np


class Moments:
    """The count, sum and sum of outer products of a set of vectors; not thread-safe (the owner locks)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._sum = np.zeros(dim, dtype=np.float64)
        self._outer = np.zeros((dim, dim), dtype=np.float64)

    def add(self, vectors: np.ndarray, sign: int = 1) -> None:
        """Count ``vectors`` in (``sign`` 1) or out (-1: removed, or replaced by new ones)."""
        v = np.asarray(vectors, dtype=np.float64).reshape(-1, self.dim)
        if len(v):
            self.n += sign * len(v)
            self._sum += sign * v.sum(axis=0)
            self._outer += sign * (v.T @ v)

    def typical(self, query: np.ndarray) -> tuple[float, float] | None:
        """(mean, standard deviation) of the query's cosines over the set; None for an empty set."""
        if self.n <= 0:
            return None
        q = np.asarray(query, dtype=np.float64).reshape(self.dim)
        mean = float(q @ self._sum) / self.n
        variance = float(q @ self._outer @ q) / self.n - mean * mean
        return mean, max(variance, 0.0) ** 0.5

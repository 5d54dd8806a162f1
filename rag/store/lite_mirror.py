"""Exact vector search in memory, for Milvus Lite.

Milvus Lite checks every stored row in Python on each search (its duplicate and tombstone masks,
~3 µs a row whatever the index): ~30 ms at 10k images and ~300 ms at 100k before a single vector
is compared, while NumPy compares 10k vectors in ~1 ms. So on Lite the store keeps a copy of the
vectors here, with the words that BM25 scores (rag/store/lite_words.py), loaded once and kept current by
its own writes, and asks Lite only for the records of the winners. Lite lets one process hold a
database, so no other program writes behind its back; the copies are shared per (database,
collection) so that every store object of this process sees the same one. Beside them it keeps the
fields filters read (rag/store/lite_fields.py), so a search with the filters the app builds
(rag/store/filters.py) is answered here too; any other filter goes to Lite.

Reading 10k vectors out of Lite takes ~2.5 s (100k: ~25 s), so the app reads them in the
background at start (``MilvusStore.warm_up``) and searches go to Lite until the copy is whole;
writes made meanwhile go to both. A one-shot command never pays for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rag.store.filters import Clause
from rag.store.lite_fields import FieldColumns
from rag.store.lite_words import WordIndex
from rag.store.moments import Moments


class VectorMirror:
    """Unit vectors by id in one growing float32 matrix (removal moves the last row into the gap),
    and the records' words for BM25 (rag/store/lite_words.py)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ready = False  # every stored vector is here (set by :meth:`loaded`)
        self._written: set[str] = set()  # while loading: ids the store wrote or deleted, newer than a page read
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._moments = Moments(dim)  # of every row: what a typical image scores for a query (rag/store/moments.py)
        self._words = WordIndex()
        self._fields = FieldColumns()  # what filters read, row for row with the matrix

    def __len__(self) -> int:
        return len(self._ids)

    def put(self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str] | None = None, *,
            read: bool = False, records: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Add or replace vectors, (with full-text search) words and the fields filters read from
        ``records`` (rows with :attr:`FieldColumns.FIELDS`; without them, filtered searches go to Milvus);
        ``read``: a page read from the store while loading, which must not bring back an id deleted
        since, nor old words over new."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            old, new = [], []
            for n, (i, v) in enumerate(zip(ids, vectors)):
                if read and i in self._written:
                    continue
                if not read and not self.ready:
                    self._written.add(i)
                row = self._row.get(i)
                if row is None:
                    row = self._append(i)
                else:
                    old.append(self._matrix[row].copy())
                self._matrix[row] = v
                new.append(v)
                if texts is not None:
                    self._words.put(i, texts[n])
                self._fields.set(row, None if records is None else records[n], None if texts is None else texts[n])
            self._moments.add(np.asarray(old), -1)
            self._moments.add(np.asarray(new))

    def _append(self, id_: str) -> int:
        row = len(self._ids)
        if row == len(self._matrix):
            grown = np.zeros((max(1024, 2 * row), self.dim), dtype=np.float32)
            grown[:row] = self._matrix[:row]
            self._matrix = grown
        self._ids.append(id_)
        self._row[id_] = row
        return row

    def loaded(self) -> None:
        with self._lock:
            self.ready, self._written = True, set()

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            gone = []
            for i in ids:
                if not self.ready:
                    self._written.add(i)
                self._words.remove(i)
                row = self._row.pop(i, None)
                if row is None:
                    continue
                self._fields.remove(row)
                gone.append(self._matrix[row].copy())
                last = len(self._ids) - 1
                if row != last:
                    moved = self._ids[last]
                    self._ids[row], self._row[moved] = moved, row
                    self._matrix[row] = self._matrix[last]
                self._ids.pop()
            self._moments.add(np.asarray(gone), -1)

    def top(self, vector: np.ndarray, k: int, min_score: float = 0.0) -> list[tuple[str, float]]:
        """The ``k`` nearest by cosine, best first, as (id, score); only scores >= ``min_score`` when > 0."""
        q = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        with self._lock:
            found = self._nearest(q, k, None)
        return [f for f in found if f[1] >= min_score] if min_score > 0 else found

    def search(self, vector: np.ndarray, k: int, min_score: float = 0.0, clauses: Sequence[Clause] = (),
               text: str = "") -> tuple[list[tuple[str, float]], dict[str, float]] | None:
        """Among the records meeting every one of ``clauses``: the ``k`` nearest by cosine (as :meth:`top`)
        and the BM25 of each whose words match ``text``; None when the clauses cannot be applied here."""
        q = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        with self._lock:
            keep = self._fields.mask(clauses, self._words.holding, self._row) if clauses else None
            if clauses and keep is None:
                return None
            rows = None if keep is None or keep.all() else np.flatnonzero(keep)
            found = self._nearest(q, k, rows)
            scores = self._scores(text, rows, keep) if text else {}
        return [f for f in found if f[1] >= min_score] if min_score > 0 else found, scores

    def _scores(self, text: str, rows: np.ndarray | None, keep: np.ndarray | None) -> dict[str, float]:
        """BM25 among ``rows`` (every row: None): a few kept rows are scored alone, many are scored all
        and the others dropped after."""
        if rows is None or keep is None:
            return self._words.scores(text)
        if len(rows) <= len(self._ids) // 4:
            return self._words.scores(text, set(map(self._ids.__getitem__, rows.tolist())))
        scores = self._words.scores(text)
        kept = keep[np.fromiter(map(self._row.__getitem__, scores), dtype=np.int64, count=len(scores))]
        return {i: s for (i, s), ok in zip(scores.items(), kept.tolist()) if ok}

    def _nearest(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> list[tuple[str, float]]:
        n = len(self._ids)
        if n == 0 or k <= 0 or (rows is not None and not len(rows)):
            return []
        if rows is not None and len(rows) <= n // 4:  # a few rows: compare only those
            scores = self._matrix[rows] @ q
        else:
            scores = self._matrix[:n] @ q
            scores = scores if rows is None else scores[rows]
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        at = best if rows is None else rows[best]
        return [(self._ids[j], float(s)) for j, s in zip(at, scores[best])]

    def word_scores(self, text: str) -> dict[str, float]:
        """BM25 of each record whose words match ``text``, as Milvus scores them."""
        with self._lock:
            return self._words.scores(text)

    def typical(self, vector: np.ndarray) -> tuple[float, float] | None:
        """(mean, standard deviation) of the query's cosines over every vector held; None when empty."""
        with self._lock:
            return self._moments.typical(vector)

    def word_terms(self, ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """The distinct terms each record holds, for how many of a query's words it has."""
        with self._lock:
            return {i: self._words.terms(i) for i in ids}

    def vector(self, id_: str) -> np.ndarray | None:
        with self._lock:
            row = self._row.get(id_)
            return None if row is None else self._matrix[row].copy()


_mirrors: dict[tuple[str, str], VectorMirror] = {}
_registry_lock = threading.Lock()


def shared(key: tuple[str, str]) -> VectorMirror | None:
    """The copy for (database, collection), whole or loading; None when there is none."""
    with _registry_lock:
        return _mirrors.get(key)


def claim(key: tuple[str, str], dim: int) -> tuple[VectorMirror, bool]:
    """The copy for ``key``, and whether it was made by this call (the caller then fills it)."""
    with _registry_lock:
        if key in _mirrors:
            return _mirrors[key], False
        mirror = _mirrors[key] = VectorMirror(dim)
        return mirror, True


def forget(database: str, collection: str | None = None) -> None:
    """Drop the copies of a collection (or of every collection of a database) that no longer holds
    what they hold: renamed, dropped, restored from a backup, or closed."""
    with _registry_lock:
        for key in [k for k in _mirrors if k[0] == database and collection in (None, k[1])]:
            del _mirrors[key]

"""Searches over Lite's vectors held in memory, for :class:`rag.store.milvus.MilvusStore`.

Why the copy exists, and how it stays current, is in :mod:`rag.store.lite_mirror`. Here: reading it out
of Lite (``warm_up``), and the two searches that use it: a plain one, and the candidates of a search by
pictures and words, whose BM25 side comes from the words held beside the vectors (rag/store/lite_words.py);
rag/search/rank.py ranks them together. Both take the filters the app builds (a
:class:`rag.store.filters.Filter`: folders, sources, tags, dates, phrases, ``-words``), applied to the
fields held beside the vectors (rag/store/lite_fields.py); another filter is left to Lite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from rag.core import Asset, Hit
from rag.store import lite, lite_mirror
from rag.store.candidates import Candidates, word_share
from rag.store.filters import Clause, Filter
from rag.store.lite_fields import FieldColumns
from rag.store.lite_mirror import VectorMirror
from rag.store.lite_words import best
from rag.store.pages import QUERY_WINDOW
from rag.store.schema import TEXT_FIELD

log = logging.getLogger(lite.STORE_LOG)  # the store's own name: its messages are the store's


class RecordSource(Protocol):
    """What the copy is read from, and where its winners' records come from: the store that owns it."""

    @property
    def full_text(self) -> bool: ...  # whether the collection has words (it changes when a rebuild is swapped in)
    def iter_records(self, batch: int = ..., with_vectors: bool = ...,
                     fields: Sequence[str] | None = ...) -> Iterator[list[dict[str, Any]]]: ...
    def get(self, ids: Sequence[str]) -> list[Asset]: ...


class InMemorySearch:
    """On Lite, the copy of one collection's vectors in memory and the searches over it; on a server
    (``on_lite`` false), nothing: every method answers that there is no copy."""

    def __init__(self, source: RecordSource, *, db: str, collection: str, dim: int, on_lite: bool) -> None:
        self.source, self.key, self.dim, self.on_lite = source, (db, collection), dim, on_lite
        self.warm = False  # warm_up ran: keep the copy, reading it again after a swap or a failed write drops it

    def held(self) -> VectorMirror | None:
        """The copy (rag/store/lite_mirror.py), whole or still loading, for writes to keep it current."""
        return lite_mirror.shared(self.key) if self.on_lite else None

    def ready(self) -> VectorMirror | None:
        """The whole copy, for searches; when a swap or a failed write dropped it, it is read again."""
        mirror = self.held()
        if mirror is None and self.warm:
            threading.Thread(target=self.warm_up, name="lite-vectors", daemon=True).start()
        return mirror if mirror is not None and mirror.ready else None

    def warm_up(self) -> None:
        """On Lite, read every vector and its words into memory, so searches skip Lite's row-by-row
        checks; the app runs this in the background at start, while searches and writes go on. Never raises."""
        if not self.on_lite:
            return
        self.warm = True
        mirror, fresh = lite_mirror.claim(self.key, self.dim)
        if not fresh:
            return
        started = time.monotonic()
        try:
            words = self.source.full_text
            fields = [*FieldColumns.FIELDS, *([TEXT_FIELD] if words else [])]
            for rows in self.source.iter_records(QUERY_WINDOW, fields=fields, with_vectors=True):  # a page at a time
                texts = [r[TEXT_FIELD] for r in rows] if words else None
                mirror.put([str(r["id"]) for r in rows], np.asarray([r["vector"] for r in rows]), texts, read=True,
                           records=rows)
        except Exception:  # noqa: BLE001 - searches go on without the copy
            if lite_mirror.shared(self.key) is mirror:  # not closed or swapped meanwhile
                log.warning("Could not read the library's vectors into memory; searches ask Milvus Lite.",
                            exc_info=log.isEnabledFor(logging.DEBUG))
                lite_mirror.forget(*self.key)
            return
        mirror.loaded()
        log.info("%d images' vectors and words read into memory in %.1f s (searches skip Milvus Lite's row-by-row walk)",
                 len(mirror), time.monotonic() - started)

    def typical(self, vector: np.ndarray) -> tuple[float, float] | None:
        """The query's cosines over the copy, (mean, standard deviation), once it is whole; None before
        (the store samples instead)."""
        return mirror.typical(vector) if (mirror := self.ready()) is not None else None

    def close(self) -> None:
        """Stop keeping copies, and drop those of the whole database: it is about to be closed."""
        self.warm = False
        lite_mirror.forget(self.key[0])

    def search(self, vector: np.ndarray, limit: int, min_score: float, filter: str = "") -> list[Hit] | None:
        """``search`` from the copy; None while there is no whole copy, or for a filter it cannot apply (ask Milvus)."""
        clauses = self._clauses(filter)
        if clauses is None or (mirror := self.ready()) is None:
            return None
        found = mirror.search(vector, limit, min_score, clauses)
        return None if found is None else self._hits(found[0])

    def candidates(self, vector: np.ndarray, side: int, text: str, filter: str = "") -> Candidates | None:
        """``candidates``: the nearest pictures and the records holding ``text``'s words (BM25 as Milvus
        scores it), among those ``filter`` keeps, all from the copy; None while there is no whole copy, or
        for a filter it cannot apply (ask Milvus)."""
        clauses = self._clauses(filter)
        if clauses is None or (mirror := self.ready()) is None:
            return None
        searched = mirror.search(vector, side, 0.0, clauses, text if text.strip() else "")
        if searched is None:
            return None
        (pictures, scores), typical = searched, mirror.typical(vector)
        found = Candidates(pictures=pictures, cosines=dict(pictures))
        found.typical, found.spread = typical if typical is not None else (None, None)
        matched = best(scores, side)
        held, q = mirror.word_terms(matched), np.asarray(vector, dtype=np.float32)
        for i in matched:
            if i not in found.cosines and (v := mirror.vector(i)) is not None:  # found by its words alone
                found.cosines[i] = float(v @ q)
            found.words[i] = (scores[i], word_share(text, held.get(i, ())))
        return found

    @staticmethod
    def _clauses(filter: str) -> Sequence[Clause] | None:
        """The clauses of a filter the copy can apply (none for no filter); None for any other expression."""
        if not filter:
            return ()
        return filter.clauses if isinstance(filter, Filter) and filter.clauses else None

    def _hits(self, scored: Sequence[tuple[str, float]]) -> list[Hit]:
        by_id = {a.id: a for a in self.source.get([i for i, _ in scored])}
        return [Hit(asset=by_id[i], score=s) for i, s in scored if i in by_id]

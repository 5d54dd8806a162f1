"""The Milvus Lite half of :class:`rag.store.milvus.MilvusStore`: searches over the vectors held in memory.

Why the copy exists, and how it stays current, is in :mod:`rag.store.lite_mirror`. Here: reading it out
of Lite (``warm_up``), and the two searches that use it, a plain one and the hybrid one, whose BM25
side comes from the words held beside the vectors (rag/store/lite_words.py) and is fused with Milvus' own
reciprocal-rank formula.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.core import Asset, Hit
from rag.store import lite_mirror
from rag.store.lite_mirror import VectorMirror, reciprocal_rank_fusion
from rag.store.lite_words import best
from rag.store.schema import TEXT_FIELD

log = logging.getLogger("rag.store.milvus")

RRF_K = 60  # the usual reciprocal-rank-fusion constant
QUERY_WINDOW = 16384  # a Milvus server refuses offset+limit (query) and top-k (search) beyond this


class InMemorySearchMixin:
    client: Any
    collection: str
    dim: int
    is_server: bool
    full_text: bool
    _db: str
    _warm: bool

    if TYPE_CHECKING:
        def _call(self, action: str, *, write: bool = False) -> AbstractContextManager[None]: ...
        def iter_records(self, batch: int = ..., with_vectors: bool = ...,
                         fields: Sequence[str] | None = ...) -> Iterator[list[dict[str, Any]]]: ...
        def get(self, ids: Sequence[str]) -> list[Asset]: ...

    def _loaded_mirror(self) -> VectorMirror | None:
        """On Lite, the in-memory copy of the vectors (rag/store/lite_mirror.py), whole or still loading."""
        return None if self.is_server else lite_mirror.shared((self._db, self.collection))

    def _mirror(self) -> VectorMirror | None:
        mirror = self._loaded_mirror()
        if mirror is None and self._warm:  # dropped by a swap or a failed write: read it again
            threading.Thread(target=self.warm_up, name="lite-vectors", daemon=True).start()
        return mirror if mirror is not None and mirror.ready else None

    def warm_up(self) -> None:
        """On Lite, read every vector and its words into memory, so searches skip Lite's row-by-row
        checks; the app runs this in the background at start, while searches and writes go on. Never raises."""
        if self.is_server:
            return
        self._warm = True
        key = (self._db, self.collection)
        mirror, fresh = lite_mirror.claim(key, self.dim)
        if not fresh:
            return
        started = time.monotonic()
        try:
            words = [TEXT_FIELD] if self.full_text else []
            for rows in self.iter_records(QUERY_WINDOW, fields=words, with_vectors=True):  # a page at a time, held
                texts = [r[TEXT_FIELD] for r in rows] if self.full_text else None
                mirror.put([str(r["id"]) for r in rows], np.asarray([r["vector"] for r in rows]), texts, read=True)
        except Exception:  # noqa: BLE001 - searches go on without the copy
            if lite_mirror.shared(key) is mirror:  # not closed or swapped meanwhile
                log.warning("Could not read the library's vectors into memory; searches ask Milvus Lite.",
                            exc_info=log.isEnabledFor(logging.DEBUG))
                lite_mirror.forget(*key)
            return
        mirror.loaded()
        log.info("%d images' vectors and words read into memory in %.1f s (searches skip Milvus Lite's row-by-row walk)",
                 len(mirror), time.monotonic() - started)

    def _hits(self, scored: Sequence[tuple[str, float]], words: set[str] | None = None) -> list[Hit]:
        by_id = {a.id: a for a in self.get([i for i, _ in scored])}
        return [Hit(asset=by_id[i], score=s, words=i in (words or ())) for i, s in scored if i in by_id]

    def _fused(self, mirror: VectorMirror, vector: np.ndarray, text: str, limit: int, side: int,
               min_score: float) -> list[Hit]:
        """``hybrid_search`` on Lite without a filter: vectors and words from the copy in memory
        (BM25 as Milvus scores it), fused with the same reciprocal-rank formula as Milvus' RRFRanker."""
        dense = mirror.top(vector, side, min_score)
        matched = mirror.word_scores(text)
        ids = reciprocal_rank_fusion([[i for i, _ in dense], best(matched, side)], RRF_K)[:limit]
        q, score = np.asarray(vector, dtype=np.float32), dict(dense)
        for i in ids:
            if i not in score and (v := mirror.vector(i)) is not None:  # found by its words alone
                score[i] = float(v @ q)
        scored = [(i, score[i]) for i in ids if i in score]
        return self._hits([(i, s) for i, s in scored if min_score <= 0 or s >= min_score], set(matched))

"""The Milvus Lite half of :class:`rag.store.MilvusStore`: searches over the vectors held in memory.

Why the copy exists, and how it stays current, is in :mod:`rag.lite_mirror`. Here: reading it out
of Lite (``warm_up``), and the two searches that use it, a plain one and the hybrid one, whose
BM25 side still comes from Lite and is fused with Milvus' own reciprocal-rank formula.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from . import lite_mirror
from .filters import one_of
from .lite_mirror import VectorMirror, reciprocal_rank_fusion
from .schema import SPARSE_FIELD
from .types import Asset, Hit

log = logging.getLogger("rag.store")

RRF_K = 60  # the usual reciprocal-rank-fusion constant
QUERY_WINDOW = 16384  # a Milvus server refuses offset+limit (query) and top-k (search) beyond this


class InMemorySearchMixin:
    client: Any
    collection: str
    dim: int
    is_server: bool
    _db: str
    _warm: bool

    if TYPE_CHECKING:
        def _call(self, action: str, *, write: bool = False) -> AbstractContextManager[None]: ...
        def get(self, ids: Sequence[str]) -> list[Asset]: ...

    def _loaded_mirror(self) -> VectorMirror | None:
        """On Lite, the in-memory copy of the vectors (rag/lite_mirror.py), whole or still loading."""
        return None if self.is_server else lite_mirror.shared((self._db, self.collection))

    def _mirror(self) -> VectorMirror | None:
        mirror = self._loaded_mirror()
        if mirror is None and self._warm:  # dropped by a swap or a failed write: read it again
            threading.Thread(target=self.warm_up, name="lite-vectors", daemon=True).start()
        return mirror if mirror is not None and mirror.ready else None

    def warm_up(self) -> None:
        """On Lite, read every vector into memory, so searches skip Lite's row-by-row checks; the app
        runs this in the background at start, while searches and writes go on. Never raises."""
        if self.is_server:
            return
        self._warm = True
        key = (self._db, self.collection)
        mirror, fresh = lite_mirror.claim(key, self.dim)
        if not fresh:
            return
        started = time.monotonic()
        try:
            pages = self.client.query_iterator(self.collection, batch_size=QUERY_WINDOW, filter="",
                                               output_fields=["id", "vector"])
            try:
                while rows := pages.next():
                    mirror.put([str(r["id"]) for r in rows], np.asarray([r["vector"] for r in rows]), read=True)
            finally:
                pages.close()
        except Exception:  # noqa: BLE001 - searches go on without the copy
            if lite_mirror.shared(key) is mirror:  # not closed or swapped meanwhile
                log.warning("Could not read the library's vectors into memory; searches ask Milvus Lite.",
                            exc_info=log.isEnabledFor(logging.DEBUG))
                lite_mirror.forget(*key)
            return
        mirror.loaded()
        log.info("%d image vectors read into memory in %.1f s (searches skip Milvus Lite's row-by-row walk)",
                 len(mirror), time.monotonic() - started)

    def _hits(self, scored: Sequence[tuple[str, float]], words: set[str] | None = None) -> list[Hit]:
        by_id = {a.id: a for a in self.get([i for i, _ in scored])}
        return [Hit(asset=by_id[i], score=s, words=i in (words or ())) for i, s in scored if i in by_id]

    def _fused(self, mirror: VectorMirror, vector: np.ndarray, text: str, limit: int, side: int,
               min_score: float) -> list[Hit]:
        """``hybrid_search`` on Lite without a filter: the vectors from the copy in memory, the words
        from Lite's BM25, fused here with the same reciprocal-rank formula as Milvus' RRFRanker."""
        dense = mirror.top(vector, side, min_score)
        ranked = self._bm25(text, side)
        ids = reciprocal_rank_fusion([[i for i, _ in dense], ranked], RRF_K)[:limit]
        words = set(ranked)
        if len(ranked) == side and (unsure := [i for i in ids if i not in words]):  # past BM25's top: ask
            words.update(self._bm25(text, len(unsure), one_of("id", unsure)))
        q, score = np.asarray(vector, dtype=np.float32), dict(dense)
        for i in ids:
            if i not in score and (v := mirror.vector(i)) is not None:  # found by its words alone
                score[i] = float(v @ q)
        scored = [(i, score[i]) for i in ids if i in score]
        return self._hits([(i, s) for i, s in scored if min_score <= 0 or s >= min_score], words)

    def _bm25(self, text: str, limit: int, filter: str = "") -> list[str]:
        """Ids of the records whose words match ``text``, best first."""
        with self._call("search"):
            rows = self.client.search(self.collection, data=[text], anns_field=SPARSE_FIELD, limit=limit, filter=filter,
                                      search_params={"metric_type": "BM25"}, output_fields=["id"])[0]
        return [str(r["id"]) for r in rows]

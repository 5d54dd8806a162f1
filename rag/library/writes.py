"""The ingest's writes to the store, in large batches on a thread of their own when the model is on a GPU.

An H100 embeds a batch of 256 pictures in a few tens of milliseconds; a write of those 256 records to a
Milvus server (rows built in Python, sent over gRPC, acknowledged) takes about as long, and while the
ingest waited for it the GPU had nothing to do. So on a GPU the ingest hands each embedded batch over
and goes on: the records gather into writes of :data:`ROWS` and one thread sends them, in order, at
most :data:`AHEAD` writes behind, so memory stays bounded and a failing database stops the ingest at
its next batch. On the CPU, where the model is the slow part, records are written as they come.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from rag.core import Asset
from rag.store import VectorStore

ROWS = 2048  # records per write on a GPU: ~5 MB of vectors, well under gRPC's 64 MB message limit
AHEAD = 2  # writes that may wait for the database while the model goes on


class BatchedWrites:
    """Stores embedded records; ``stored`` hears of each write once the database has it."""

    def __init__(self, store: VectorStore, stored: Callable[[list[Asset]], None], *, background: bool,
                 rows: int = ROWS) -> None:
        self.store, self.stored, self.rows = store, stored, rows if background else 1
        self._assets: list[Asset] = []
        self._vectors: list[np.ndarray] = []
        self._pending: deque[Future[None]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writes") if background else None

    def put(self, assets: Sequence[Asset], vectors: np.ndarray) -> None:
        """Store ``assets`` with their ``vectors`` (now, or with the next write on a GPU); raises what an
        earlier write raised."""
        self._assets.extend(assets)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(self._assets) >= self.rows:
            self._send()

    def wait(self) -> None:
        """Send what is gathered and wait for every write; raises what a write raised."""
        try:
            if self._assets:
                self._send()
            while self._pending:
                self._pending.popleft().result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _send(self) -> None:
        assets, vectors = self._assets, np.concatenate(self._vectors)
        self._assets, self._vectors = [], []
        if self._pool is None:
            self._write(assets, vectors)
            return
        while len(self._pending) >= AHEAD or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, assets, vectors))

    def _write(self, assets: list[Asset], vectors: np.ndarray) -> None:
        self.store.upsert(assets, vectors)
        self.stored(assets)

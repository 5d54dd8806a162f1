"""Reading a collection a page at a time: the library's pages, every record (backups, exports, the
copy in memory), and counts by a field.

A Milvus server refuses a query whose offset + limit passes its window (16384); a page beyond it is
walked with the query iterator instead. Whole-collection reads hold the database one page at a time,
never across a ``yield``, so a long export does not stall every search.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rag.core import Asset
from rag.store.connection import MilvusConnection
from rag.store.schema import SCALAR_FIELDS, asset_from_row

QUERY_WINDOW = 16384  # a Milvus server refuses offset+limit (query) and top-k (search) beyond this
QUERY_PAGE = 1000  # under the server's 16384 offset+limit cap


class Pages:
    """Pages of one collection, read through the store's connection (its lock and its sentences)."""

    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self.connection, self.collection = connection, collection
        self.window: int | None = QUERY_WINDOW if connection.is_server else None  # Lite has no query window
        self.batch = QUERY_PAGE  # rows per step of the iterator that walks past the window

    def page(self, offset: int, limit: int, filter: str = "") -> list[Asset]:
        """Records ``offset`` to ``offset + limit`` (in the database's order) that match ``filter``."""
        offset, limit = max(0, int(offset)), max(0, int(limit))
        if self.window is not None and offset + limit > self.window:
            return self.far_page(offset, limit, filter)
        with self.connection.call("list the library"):
            rows = self.connection.client.query(
                self.collection, filter=filter, output_fields=["id", *SCALAR_FIELDS], offset=offset, limit=limit
            )
            return [asset_from_row(r) for r in rows]

    def far_page(self, offset: int, limit: int, filter: str) -> list[Asset]:
        """A page past the server's query window: walk the iterator (both go in primary-key order there)."""
        rows: list[dict[str, Any]] = []
        seen = 0
        with self.connection.call("list the library"):
            iterator = self.connection.client.query_iterator(
                self.collection, batch_size=self.batch, limit=offset + limit, filter=filter,
                output_fields=["id", *SCALAR_FIELDS],
            )
            try:
                while len(rows) < limit and (batch := iterator.next()):
                    rows += batch[max(0, offset - seen):]
                    seen += len(batch)
            finally:
                iterator.close()
            return [asset_from_row(r) for r in rows[:limit]]

    def records(self, fields: list[str], batch: int, action: str) -> Iterator[list[dict[str, Any]]]:
        """Every record's ``fields``, ``batch`` at a time; the connection is held for one page at a
        time, so searches go on between pages."""
        with self.connection.call(action):
            iterator = self.connection.client.query_iterator(
                self.collection, batch_size=min(max(1, int(batch)), QUERY_WINDOW), filter="", output_fields=fields
            )
        try:
            while True:
                with self.connection.call(action):
                    rows = iterator.next()
                if not rows:
                    break
                yield [dict(r) for r in rows]
        finally:
            with self.connection.call(action):
                iterator.close()

    def sample_vectors(self, limit: int) -> np.ndarray:
        """Up to ``limit`` records' vectors (the first the database gives: ids are hashes, so a fair sample)."""
        with self.connection.call("read image vectors"):
            rows = self.connection.client.query(self.collection, filter="", output_fields=["vector"],
                                                limit=min(max(1, int(limit)), QUERY_WINDOW))
        return np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def facet(self, field: str) -> dict[str, int]:
        """Counts of each value of a scalar field (folder, source), most first."""
        counts: dict[str, int] = {}
        action = f"count images by {field}"
        for rows in self.records([field], QUERY_PAGE, action):
            with self.connection.call(action):  # a collection without the field (another app's) answers rows without it
                for r in rows:
                    counts[r[field]] = counts.get(r[field], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

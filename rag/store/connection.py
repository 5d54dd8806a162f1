"""One open Milvus database: the pymilvus client, the lock that serialises calls on it, and the sentence
each failure becomes.

A :class:`rag.store.milvus.MilvusStore` owns one; the stores of the other collections of the same
database (``MilvusStore.sibling``, used while re-indexing) share it, so they share its lock: Milvus
Lite is not built for concurrent writers, and one client must not be used by two calls at once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.core import BananaError, LibraryDamaged, Settings, StoreError
from rag.store import lite, lite_mirror
from rag.store.backup import damaged_message

log = logging.getLogger(lite.STORE_LOG)  # the name lite.py's filter asks: DEBUG there shows the failures in full

FULL_TEXT_SINCE = (2, 5)  # Milvus server version with BM25 functions


def first_line(exc: BaseException) -> str:
    """The first line of an error, short enough for a sentence."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class MilvusConnection:
    """The client of one Milvus database (a Lite file or a server), opened with Lite's checks first."""

    def __init__(self, settings: Settings) -> None:
        lite.import_pymilvus()
        from pymilvus import MilvusClient

        uri = settings.milvus_uri
        self.is_server = settings.is_server
        self.where = uri.split("@")[-1]  # the location without credentials, for messages
        self.db = "" if self.is_server else str(Path(uri).expanduser().resolve())  # the key of Lite's copies in memory
        self._lock = threading.RLock()
        self._version = ""
        lite.quiet_logs()
        if not self.is_server:
            self._check_lite(settings)
        try:
            self.client: Any = MilvusClient(uri=uri, token=settings.milvus_token or "")
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"Cannot open the Milvus database at {self.where}: {first_line(exc)}") from exc

    def _check_lite(self, settings: Settings) -> None:
        """Refuse a Lite database another process holds or one that is damaged (with the way back),
        and undo what a crash mid-flush left, before pymilvus opens it."""
        uri = settings.milvus_uri
        Path(self.db).parent.mkdir(parents=True, exist_ok=True)
        if lite.held_elsewhere(uri):
            raise StoreError(lite.in_use_message(uri))
        if problems := lite.damage(uri):
            raise LibraryDamaged(damaged_message(uri, problems, settings))
        if Path(uri).expanduser().is_dir():
            lite.discard_flushed_wal(Path(uri).expanduser())
        lite.single_threaded_blas()

    @contextmanager
    def call(self, action: str, *, write_to: str = "") -> Iterator[None]:
        """One call at a time; any failure of the database becomes a :class:`StoreError` sentence that
        says what could not be done (``action``). A failed write to the collection ``write_to`` may be
        half done, so Lite's copy of that collection in memory is dropped, to be read again."""
        with self._lock:
            try:
                yield
            except BananaError:
                raise
            except Exception as exc:  # noqa: BLE001 - pymilvus, grpc and Lite raise many types
                log.debug("Milvus failed to %s", action, exc_info=True)
                if write_to:
                    lite_mirror.forget(self.db, write_to)
                if "No space left on device" in str(exc) or "Errno 28" in str(exc):
                    raise StoreError(f"The library database at {self.where} could not {action}: the disk is full. "
                                     "Free some space and try again.") from None
                hint = "Is the Milvus server running?" if self.is_server else "Is the database damaged or in use?"
                raise StoreError(
                    f"The library database at {self.where} could not {action}: {first_line(exc)}. {hint}"
                ) from None

    def server_version(self) -> str:
        """What the database says it is ("v2.3.5-lite", "milvus_lite-3.2.2"), asked once."""
        if not self._version:
            self._version = str(self.client.get_server_version() or "")
        return self._version

    def runs_bm25(self) -> bool:
        """Milvus Lite and servers from 2.5 run BM25 functions; a 2.3 or 2.4 server has none."""
        if not self.is_server:
            return True
        found = re.search(r"(\d+)\.(\d+)", self.server_version())
        return bool(found) and (int(found.group(1)), int(found.group(2))) >= FULL_TEXT_SINCE

    def close(self) -> None:
        """Close the client (every store sharing this connection is closed with it)."""
        with self.call("close"):
            self.client.close()

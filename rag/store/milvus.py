"""The vector store: one narrow class over pymilvus ``MilvusClient``.

The same code runs on Milvus Lite (a local ``.db`` path) and on a Milvus server (an ``http://``
URI). Where the two differ (index types, consistency, duplicate keys, query limits) this module
absorbs it so callers never branch on the back end.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.core import Asset, BananaError, Hit, LibraryDamaged, Settings, StoreError
from rag.store import lite, lite_mirror
from rag.store.backup import damaged_message
from rag.store.filters import one_of
from rag.store.memory import QUERY_WINDOW, RRF_K, InMemorySearchMixin
from rag.store.schema import SPARSE_FIELD, TEXT_FIELD, asset_from_row, create_collection, has_full_text
from rag.store.swap import CollectionSwapMixin
from rag.store.words import asset_text

log = logging.getLogger(__name__)


SCALAR_FIELDS = ("path", "filename", "folder", "width", "height", "format", "bytes", "created", "source", "meta")
QUERY_PAGE = 1000  # under the server's 16384 offset+limit cap
MODEL_PROPERTY = "banana.embedding_model"
PRECISION_PROPERTY = "banana.embedding_precision"  # "bf16", or "bf16+fp32" for a mixed library
FULL_TEXT_SINCE = (2, 5)  # Milvus server version with BM25 functions
REINDEX_FOR_WORDS = ("This library was indexed before word search: re-index to enable word search "
                     "(`python -m rag reindex`, which keeps the vectors).")
Listener = Callable[[Sequence[Asset], Sequence[str]], None]  # (assets stored, ids deleted)


class VectorStore(Protocol):
    """What search, ingest and the UI need from a vector database.

    Every method raises :class:`rag.core.errors.StoreError` (a sentence) when the database fails.
    """

    @property
    def dim(self) -> int: ...
    @property
    def model(self) -> str:
        """The embedding model the collection was made with ("" when it does not say)."""
        ...
    @property
    def precision(self) -> str: ...  # the precisions its vectors were computed in ("" when it does not say)
    def record_precision(self, precision: str) -> None: ...

    def upsert(self, assets: Sequence[Asset], vectors: np.ndarray) -> None: ...
    def delete(self, ids: Sequence[str]) -> int: ...
    def count(self, filter: str = "") -> int: ...
    def get(self, ids: Sequence[str]) -> list[Asset]: ...
    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def search(self, vector: np.ndarray, k: int, filter: str = "", *, min_score: float = 0.0) -> list[Hit]: ...
    def hybrid_search(self, vector: np.ndarray, text: str, k: int, filter: str = "", *, min_score: float = 0.0,
                      pool: int = 100) -> list[Hit]: ...
    @property
    def words_notice(self) -> str: ...  # why word search is off ("" when it is on)
    def page(self, offset: int, limit: int, filter: str = "") -> list[Asset]: ...
    def iter_records(
        self, batch: int = QUERY_PAGE, with_vectors: bool = False, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...
    def facet(self, field: str) -> dict[str, int]: ...
    def subscribe(self, listener: Listener) -> None: ...  # called after each write (keeps caches current)
    def flush(self) -> None: ...
    def warm_up(self) -> None: ...  # load what makes searches fast, ahead of the first one; never raises
    def close(self) -> None: ...


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class MilvusStore(InMemorySearchMixin, CollectionSwapMixin):
    """Milvus collection of assets. Calls are serialised: Milvus Lite is not built for concurrent writers."""

    def __init__(self, settings: Settings, dim: int, model_name: str = "", *, strict: bool = True) -> None:
        lite.import_pymilvus()
        from pymilvus import MilvusClient

        self.settings = settings
        self.collection = settings.collection
        self.dim = dim
        self.is_server = settings.is_server
        self._lock = threading.RLock()
        self._model = self._current_model = model_name
        self.strict = strict  # refuse a collection of another vector size (reindex opens it anyway)
        self.full_text = False
        self._version = ""
        self._listeners: list[Listener] = []
        self._warm = False  # warm_up ran: keep Lite's vectors in memory (rag/store/lite_mirror.py)
        uri = settings.milvus_uri
        self._db = "" if self.is_server else str(Path(uri).expanduser().resolve())
        lite.quiet_logs()
        if not self.is_server:
            Path(self._db).parent.mkdir(parents=True, exist_ok=True)
            if lite.held_elsewhere(uri):
                raise StoreError(lite.in_use_message(uri))
            if problems := lite.damage(uri):
                raise LibraryDamaged(damaged_message(uri, problems, settings))
            if Path(uri).expanduser().is_dir():
                lite.discard_flushed_wal(Path(uri).expanduser())
            lite.single_threaded_blas()
        try:
            self.client = MilvusClient(uri=uri, token=settings.milvus_token or "")
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"Cannot open the Milvus database at {self.where}: {_first_line(exc)}") from exc
        with self._call("open the collection"):
            self._ensure_collection(model_name)

    @property
    def where(self) -> str:
        """The database's location without credentials, for messages."""
        return self.settings.milvus_uri.split("@")[-1]

    @property
    def model(self) -> str:
        return self._model

    @property
    def precision(self) -> str:
        return self._precision

    def record_precision(self, precision: str) -> None:
        """Note with the collection, like the model, that vectors computed in ``precision`` were written."""
        known = set(filter(None, self._precision.split("+")))
        if precision and precision not in known:
            value = "+".join(sorted(known | {precision}))
            with self._call("record the embedding precision"):
                self.client.alter_collection_properties(self.collection, properties={PRECISION_PROPERTY: value})
            self._precision = value

    @contextmanager
    def _call(self, action: str, *, write: bool = False) -> Iterator[None]:
        """One call at a time; any failure of the database becomes a :class:`StoreError` sentence."""
        with self._lock:
            try:
                yield
            except BananaError:
                raise
            except Exception as exc:  # noqa: BLE001 - pymilvus, grpc and Lite raise many types
                log.debug("Milvus failed to %s", action, exc_info=True)
                if write:  # half done, perhaps: read Lite's vectors into memory again
                    lite_mirror.forget(self._db, self.collection)
                if "No space left on device" in str(exc) or "Errno 28" in str(exc):
                    raise StoreError(f"The library database at {self.where} could not {action}: the disk is full. "
                                     "Free some space and try again.") from None
                hint = "Is the Milvus server running?" if self.is_server else "Is the database damaged or in use?"
                raise StoreError(
                    f"The library database at {self.where} could not {action}: {_first_line(exc)}. {hint}"
                ) from None

    # -- schema -----------------------------------------------------------------------------
    def index_type(self) -> str:
        chosen = self.settings.index_type.upper()
        if chosen and chosen != "AUTO":
            return chosen
        # FLAT on Lite although HNSW searched 5-7x faster there (bench/query.py: 10k 29 vs 6 ms, 100k
        # 344 vs 52 ms): Lite's HNSW applies a filter during graph traversal and drops matches (a
        # folder filter returned 25 of 27 rows), and FLAT is exact. Set MILVUS_INDEX=HNSW to trade that.
        return "HNSW" if self.is_server else "FLAT"

    def _existing_index(self) -> str:
        """The vector index an existing collection really has (it decides the search parameters)."""
        try:
            names = self.client.list_indexes(self.collection, field_name="vector") or ["vector"]
            kind = str(self.client.describe_index(self.collection, names[0]).get("index_type") or "")
        except Exception as exc:  # noqa: BLE001
            log.debug("cannot describe the index of %s: %s", self.collection, exc)
            kind = ""
        return kind.upper() or self.index_type()

    def _ensure_collection(self, model_name: str) -> None:
        self._finish_swap()
        if not self.client.has_collection(self.collection):
            self._create_collection(model_name)
        info = self.client.describe_collection(self.collection)
        dims = [f["params"].get("dim") for f in info["fields"] if f["name"] == "vector"]
        if dims and int(dims[0]) != self.dim and self.strict:
            raise StoreError(
                f"Collection {self.collection!r} holds {dims[0]}-d vectors but the model makes "
                f"{self.dim}-d ones. Run `python -m rag reindex` to re-embed it, or use another MILVUS_COLLECTION."
            )
        self.stored_dim = int(dims[0]) if dims else self.dim
        stored = str((info.get("properties") or {}).get(MODEL_PROPERTY) or "")
        if model_name and stored and stored != model_name:
            log.warning(
                "collection %s was embedded with %s but the app now uses %s: re-index it (python -m rag reindex)",
                self.collection, stored, model_name,
            )
        self._model = stored
        self._precision = str((info.get("properties") or {}).get(PRECISION_PROPERTY) or "")
        self.full_text = has_full_text(info)
        self._index = self._existing_index()
        self.client.load_collection(self.collection)

    def server_version(self) -> str:
        """What the database says it is ("v2.3.5-lite", "milvus_lite-3.2.2"), asked once."""
        if not self._version:
            self._version = str(self.client.get_server_version() or "")
        return self._version

    def _server_has_full_text(self) -> bool:
        """Milvus Lite and servers from 2.5 run BM25 functions; a 2.3 or 2.4 server has none."""
        if not self.is_server:
            return True
        found = re.search(r"(\d+)\.(\d+)", self.server_version())
        return bool(found) and (int(found.group(1)), int(found.group(2))) >= FULL_TEXT_SINCE

    def _create_collection(self, model_name: str) -> None:
        properties = {MODEL_PROPERTY: model_name} if model_name else {}
        create_collection(self.client, self.collection, self.dim, self.index_type(), self.is_server, properties,
                          full_text=self._server_has_full_text())

    @property
    def words_notice(self) -> str:
        """Why word search is off, in one sentence ("" when it is on)."""
        if self.full_text:
            return ""
        if not self._server_has_full_text():
            return (f"Word search needs Milvus 2.5 or newer; this server runs {self.server_version()}, so search matches "
                    "pictures (CLIP) only.")
        return REINDEX_FOR_WORDS

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, assets: Sequence[Asset], vectors: np.ndarray) -> None:
        if len(assets) != len(vectors):
            raise ValueError("assets and vectors differ in length")
        if not assets:
            return
        # A server keeps every copy of a key repeated within one upsert (Lite keeps the last one).
        last = {a.id: i for i, a in enumerate(assets)}
        kept = [i for i, a in enumerate(assets) if last[a.id] == i]
        vecs = np.asarray(vectors, dtype=np.float32)[kept]
        rows = [
            {"id": assets[i].id, "vector": v.tolist(), **{k: getattr(assets[i], k) for k in SCALAR_FIELDS},
             **({TEXT_FIELD: asset_text(assets[i])} if self.full_text else {})}
            for i, v in zip(kept, vecs)
        ]
        with self._call("store the new images", write=True):
            self.client.upsert(self.collection, rows)
            if (mirror := self._loaded_mirror()) is not None:
                mirror.put([r["id"] for r in rows], vecs, [r[TEXT_FIELD] for r in rows] if self.full_text else None)
        self._notify([assets[i] for i in kept], [])

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._call("delete images", write=True):
            present = self.existing_ids(ids)
            if present:
                self.client.delete(self.collection, ids=sorted(present))
                if (mirror := self._loaded_mirror()) is not None:
                    mirror.remove(present)
        self._notify([], sorted(present))
        return len(present)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, stored: Sequence[Asset], deleted: Sequence[str]) -> None:
        for listener in self._listeners:
            listener(stored, deleted)

    def flush(self) -> None:
        with self._call("save its changes"):
            self.client.flush(self.collection)

    # -- reads ------------------------------------------------------------------------------
    def count(self, filter: str = "") -> int:
        with self._call("count the images"):
            rows = self.client.query(self.collection, filter=filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def get(self, ids: Sequence[str]) -> list[Asset]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        with self._call("read image records"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id", *SCALAR_FIELDS])
            by_id = {str(r["id"]): asset_from_row(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return set()
        with self._call("check which images it holds"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id"])
        return {str(r["id"]) for r in rows}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        with self._call("read image vectors"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id", "vector"])
        return {str(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def _dense_params(self, limit: int, min_score: float) -> dict[str, Any]:
        """Search parameters for the vector field; ``min_score`` > 0 makes it a range search."""
        params: dict[str, Any] = {}
        if self._index == "HNSW":
            params["ef"] = max(64, limit)  # HNSW needs ef >= k
        elif self._index.startswith("IVF"):
            params["nprobe"] = 32
        if min_score > 0:
            params["radius"] = float(min_score) - 1e-6  # COSINE: results closer than this (score >= min_score)
        return {"metric_type": "COSINE", **({"params": params} if params else {})}

    def search(self, vector: np.ndarray, k: int, filter: str = "", *, min_score: float = 0.0) -> list[Hit]:
        limit = min(max(1, int(k)), QUERY_WINDOW)
        if not filter and (mirror := self._mirror()) is not None:
            return self._hits(mirror.top(vector, limit, min_score))
        with self._call("search"):
            result = self.client.search(
                self.collection,
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                limit=limit,
                filter=filter,
                output_fields=list(SCALAR_FIELDS),
                search_params=self._dense_params(limit, min_score),
            )
            return [Hit(asset=asset_from_row(row), score=float(row["distance"])) for row in result[0]]

    def hybrid_search(self, vector: np.ndarray, text: str, k: int, filter: str = "", *, min_score: float = 0.0,
                      pool: int = 100) -> list[Hit]:
        """CLIP and BM25 together, fused by Milvus with reciprocal rank fusion; each hit says whether
        its words matched, and its score stays the cosine with ``vector`` (RRF scores mean little)."""
        from pymilvus import AnnSearchRequest, RRFRanker

        limit, side = min(max(1, int(k)), QUERY_WINDOW), min(max(int(k), int(pool)), QUERY_WINDOW)
        if not filter and (mirror := self._mirror()) is not None:
            return self._fused(mirror, vector, text, limit, side, min_score)
        dense = AnnSearchRequest([np.asarray(vector, dtype=np.float32).tolist()], "vector",
                                 self._dense_params(side, min_score), side, expr=filter or None)
        sparse = AnnSearchRequest([text], SPARSE_FIELD, {"metric_type": "BM25"}, side, expr=filter or None)
        with self._call("search"):
            fused = self.client.hybrid_search(self.collection, [dense, sparse], ranker=RRFRanker(RRF_K), limit=limit,
                                              output_fields=[*SCALAR_FIELDS, "vector"])[0]
            ids = [str(row["id"]) for row in fused]
            if not ids:
                return []
            matched = self.client.search(self.collection, data=[text], anns_field=SPARSE_FIELD, limit=len(ids),
                                         filter=one_of("id", ids), search_params={"metric_type": "BM25"},
                                         output_fields=["id"])[0]
            words = {str(r["id"]) for r in matched}
        q = np.asarray(vector, dtype=np.float32)
        hits = [Hit(asset=asset_from_row(row), score=float(np.dot(np.asarray(row["entity"]["vector"], dtype=np.float32), q)),
                    words=i in words) for i, row in zip(ids, fused)]
        return [h for h in hits if h.score >= min_score] if min_score > 0 else hits

    def page(self, offset: int, limit: int, filter: str = "") -> list[Asset]:
        offset, limit = max(0, int(offset)), max(0, int(limit))
        if self.is_server and offset + limit > QUERY_WINDOW:
            return self._far_page(offset, limit, filter)
        with self._call("list the library"):
            rows = self.client.query(
                self.collection, filter=filter, output_fields=["id", *SCALAR_FIELDS], offset=offset, limit=limit
            )
            return [asset_from_row(r) for r in rows]

    def _far_page(self, offset: int, limit: int, filter: str) -> list[Asset]:
        """A page past the server's query window: walk the iterator (both go in primary-key order there)."""
        rows: list[dict[str, Any]] = []
        seen = 0
        with self._call("list the library"):
            iterator = self.client.query_iterator(
                self.collection, batch_size=QUERY_PAGE, limit=offset + limit, filter=filter,
                output_fields=["id", *SCALAR_FIELDS],
            )
            try:
                while len(rows) < limit and (batch := iterator.next()):
                    rows += batch[max(0, offset - seen):]
                    seen += len(batch)
            finally:
                iterator.close()
            return [asset_from_row(r) for r in rows[:limit]]

    def iter_records(
        self, batch: int = QUERY_PAGE, with_vectors: bool = False, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record (``fields`` only, when given), in pages; the query iterator keeps memory flat.

        The store is held for one page at a time, never across a ``yield``: a backup, an export or a grid
        rebuild reading the whole library must not stall every search for its whole length."""
        fields = ["id", *(SCALAR_FIELDS if fields is None else fields)] + (["vector"] if with_vectors else [])
        yield from self._pages(fields, batch, "read every record")

    def _pages(self, fields: list[str], batch: int, action: str) -> Iterator[list[dict[str, Any]]]:
        with self._call(action):
            iterator = self.client.query_iterator(
                self.collection, batch_size=min(max(1, int(batch)), QUERY_WINDOW), filter="", output_fields=fields
            )
        try:
            while True:
                with self._call(action):  # one page at a time: searches go on between pages
                    rows = iterator.next()
                if not rows:
                    break
                yield [dict(r) for r in rows]
        finally:
            with self._call(action):
                iterator.close()

    def facet(self, field: str) -> dict[str, int]:
        """Counts of each value of a scalar field (folder, source) for the library's summary."""
        counts: dict[str, int] = {}
        action = f"count images by {field}"
        for rows in self._pages([field], QUERY_PAGE, action):
            with self._call(action):  # a collection without the field (another app's) answers rows without it
                for r in rows:
                    counts[r[field]] = counts.get(r[field], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def close(self) -> None:
        self._warm = False
        lite_mirror.forget(self._db)
        with self._call("close"):
            self.client.close()

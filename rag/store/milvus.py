"""The vector store: one narrow class over pymilvus ``MilvusClient``.

The same code runs on Milvus Lite (a local ``.db`` path) and on a Milvus server (an ``http://``
URI). Where the two differ (index types, consistency, duplicate keys, query limits) this module
absorbs it so callers never branch on the back end. The store owns its collaborators: the
connection (client, lock, sentences: rag/store/connection.py), the pages (rag/store/pages.py), the
copy of Lite's vectors in memory (rag/store/memory.py) and the rebuild-and-swap (rag/store/swap.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from rag.core import Asset, Hit, Settings, StoreError
from rag.store.candidates import Candidates, SampledMoments, candidates_of
from rag.store.connection import MilvusConnection
from rag.store.memory import InMemorySearch
from rag.store.pages import QUERY_PAGE, QUERY_WINDOW, Pages
from rag.store.schema import (
    SCALAR_FIELDS,
    SPARSE_FIELD,
    TEXT_FIELD,
    asset_from_row,
    create_collection,
    dense_params,
    existing_index,
    has_full_text,
)
from rag.store.swap import CollectionSwap
from rag.store.words import asset_text

log = logging.getLogger(__name__)

MODEL_PROPERTY = "banana.embedding_model"
PRECISION_PROPERTY = "banana.embedding_precision"  # "bf16", or "bf16+fp32" for a mixed library
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
    def candidates(self, vector: np.ndarray, side: int, filter: str = "", text: str = "") -> Candidates: ...
    @property
    def words_notice(self) -> str: ...  # why word search is off ("" when it is on)
    def page(self, offset: int, limit: int, filter: str = "") -> list[Asset]: ...
    def iter_records(
        self, batch: int = QUERY_PAGE, with_vectors: bool = False, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...
    def facet(self, field: str) -> dict[str, int]: ...
    def subscribe(self, listener: Listener) -> None: ...  # called after each write (keeps caches current)
    def unsubscribe(self, listener: Listener) -> None: ...
    def flush(self) -> None: ...
    def warm_up(self) -> None: ...  # load what makes searches fast, ahead of the first one; never raises
    def close(self) -> None: ...


class MilvusStore:
    """Milvus collection of assets. Calls are serialised: Milvus Lite is not built for concurrent writers."""

    def __init__(self, settings: Settings, dim: int, model_name: str = "", *, strict: bool = True,
                 connection: MilvusConnection | None = None) -> None:
        """Open ``settings.collection`` (made if missing) on ``connection``, or on a new connection to
        ``settings.milvus_uri``; ``strict`` refuses a collection of another vector size (reindex opens it anyway)."""
        self.settings = settings
        self.collection = settings.collection
        self.dim = dim
        self.connection = connection or MilvusConnection(settings)
        self.client = self.connection.client
        self.is_server = self.connection.is_server
        self._model = self._current_model = model_name
        self.strict = strict
        self.full_text = False
        self._listeners: list[Listener] = []
        self.pages = Pages(self.connection, self.collection)
        self.memory = InMemorySearch(self, db=self.connection.db, collection=self.collection, dim=dim,
                                     on_lite=not self.is_server)
        self.swaps = CollectionSwap(self.connection, self.collection)
        self.sampled = SampledMoments(self.pages.sample_vectors, dim)  # a query's typical cosine (rag/store/moments.py)
        with self.connection.call("open the collection"):
            self._ensure_collection(model_name)

    @property
    def where(self) -> str:
        """The database's location without credentials, for messages."""
        return self.connection.where

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
            with self.connection.call("record the embedding precision"):
                self.client.alter_collection_properties(self.collection, properties={PRECISION_PROPERTY: value})
            self._precision = value

    # -- schema -----------------------------------------------------------------------------
    def index_type(self) -> str:
        chosen = self.settings.index_type.upper()
        if chosen and chosen != "AUTO":
            return chosen
        # FLAT on Lite although HNSW searched 5-7x faster there (bench/query.py: 10k 29 vs 6 ms, 100k
        # 344 vs 52 ms): Lite's HNSW applies a filter during graph traversal and drops matches (a
        # folder filter returned 25 of 27 rows), and FLAT is exact. Set MILVUS_INDEX=HNSW to trade that.
        return "HNSW" if self.is_server else "FLAT"

    def _ensure_collection(self, model_name: str) -> None:
        self.swaps.finish()
        if not self.client.has_collection(self.collection):
            properties = {MODEL_PROPERTY: model_name} if model_name else {}
            create_collection(self.client, self.collection, self.dim, self.index_type(), self.is_server, properties,
                              full_text=self.connection.runs_bm25())
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
        self._index = existing_index(self.client, self.collection) or self.index_type()  # it decides search parameters
        self.client.load_collection(self.collection)

    def server_version(self) -> str:
        """What the database says it is ("v2.3.5-lite", "milvus_lite-3.2.2"), asked once."""
        return self.connection.server_version()

    @property
    def words_notice(self) -> str:
        """Why word search is off, in one sentence ("" when it is on)."""
        if self.full_text:
            return ""
        if not self.connection.runs_bm25():
            return (f"Word search needs Milvus 2.5 or newer; this server runs {self.server_version()}, so search matches "
                    "pictures (CLIP) only.")
        return REINDEX_FOR_WORDS

    # -- rebuild and swap (rag/library/reindex.py) ------------------------------------------
    def sibling(self, collection: str) -> MilvusStore:
        """The same database's ``collection`` (created if missing, strict, with no listeners and no
        copy in memory), sharing this store's connection and so its lock."""
        return MilvusStore(self.settings.with_(collection=collection), self.dim, self._current_model,
                           connection=self.connection)

    def mark_complete(self) -> None:
        """Note on a rebuilt collection that every record is in (a crash after this still swaps)."""
        self.swaps.mark_complete()

    def drop_collection(self, name: str) -> None:
        """Drop another collection of this database (what an interrupted rebuild left), if it is there."""
        self.swaps.drop(name)

    def swap_in(self, rebuilt: str) -> None:
        """Make ``rebuilt`` this store's collection (the old one is renamed aside, then dropped) and read
        its schema again, all in one hold of the connection so no call sees the collection half swapped."""
        with self.connection.call("switch to the rebuilt collection"):
            self.swaps.swap_in(rebuilt)
            self._ensure_collection(self._current_model)
        self.sampled.forget()

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
        with self.connection.call("store the new images", write_to=self.collection):
            self.client.upsert(self.collection, rows)
            if (mirror := self.memory.held()) is not None:
                mirror.put([r["id"] for r in rows], vecs, [r[TEXT_FIELD] for r in rows] if self.full_text else None,
                           records=rows)
        self.sampled.written(len(rows))
        self._notify([assets[i] for i in kept], [])

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self.connection.call("delete images", write_to=self.collection):
            present = self.existing_ids(ids)
            if present:
                self.client.delete(self.collection, ids=sorted(present))
                if (mirror := self.memory.held()) is not None:
                    mirror.remove(present)
        self.sampled.written(len(present))
        self._notify([], sorted(present))
        return len(present)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def search_index(self) -> str:
        """The index the collection has, which decides the search parameters (it may differ from the setting)."""
        return self._index

    def _notify(self, stored: Sequence[Asset], deleted: Sequence[str]) -> None:
        for listener in self._listeners:
            listener(stored, deleted)

    def flush(self) -> None:
        with self.connection.call("save its changes"):
            self.client.flush(self.collection)

    # -- reads ------------------------------------------------------------------------------
    def count(self, filter: str = "") -> int:
        with self.connection.call("count the images"):
            rows = self.client.query(self.collection, filter=filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def get(self, ids: Sequence[str]) -> list[Asset]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        with self.connection.call("read image records"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id", *SCALAR_FIELDS])
            by_id = {str(r["id"]): asset_from_row(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return set()
        with self.connection.call("check which images it holds"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id"])
        return {str(r["id"]) for r in rows}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        with self.connection.call("read image vectors"):
            rows = self.client.get(self.collection, ids=ids, output_fields=["id", "vector"])
        return {str(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def search(self, vector: np.ndarray, k: int, filter: str = "", *, min_score: float = 0.0) -> list[Hit]:
        limit = min(max(1, int(k)), QUERY_WINDOW)
        if (hits := self.memory.search(vector, limit, min_score, filter)) is not None:
            return hits
        with self.connection.call("search"):
            result = self.client.search(
                self.collection,
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                limit=limit,
                filter=filter,
                output_fields=list(SCALAR_FIELDS),
                search_params=dense_params(self._index, limit, min_score),
            )
            return [Hit(asset=asset_from_row(row), score=float(row["distance"])) for row in result[0]]

    def candidates(self, vector: np.ndarray, side: int, filter: str = "", text: str = "") -> Candidates:
        """The ``side`` nearest records by cosine and, for ``text`` (when the collection has words), the
        ``side`` best by BM25 with the share of the words each holds: two searches, not fused here
        (rag/search/rank.py ranks them as one). On Lite, from the copy in memory, filters the app builds included."""
        side, text = min(max(1, int(side)), QUERY_WINDOW), text if self.full_text and text.strip() else ""
        if (found := self.memory.candidates(vector, side, text, filter)) is not None:
            return found
        q = np.asarray(vector, dtype=np.float32)
        with self.connection.call("search"):
            dense = self.client.search(self.collection, data=[q.tolist()], limit=side, filter=filter,
                                       output_fields=list(SCALAR_FIELDS), search_params=dense_params(self._index, side, 0))[0]
            worded = self.client.search(self.collection, data=[text], anns_field=SPARSE_FIELD, limit=side, filter=filter,
                                        search_params={"metric_type": "BM25"},
                                        output_fields=[*SCALAR_FIELDS, TEXT_FIELD, "vector"])[0] if text else []
            found = candidates_of(dense, worded, q, text)  # a record missing the app's fields fails here, in words
        typical = self.memory.typical(q) or self.sampled.typical(q)  # Lite's copy's exact ones, else a sample's
        found.typical, found.spread = typical if typical is not None else (None, None)
        return found

    def page(self, offset: int, limit: int, filter: str = "") -> list[Asset]:
        return self.pages.page(offset, limit, filter)

    def iter_records(
        self, batch: int = QUERY_PAGE, with_vectors: bool = False, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record (``fields`` only, when given), in pages; the query iterator keeps memory flat.

        The store is held for one page at a time, never across a ``yield``: a backup, an export or a grid
        rebuild reading the whole library must not stall every search for its whole length."""
        fields = ["id", *(SCALAR_FIELDS if fields is None else fields)] + (["vector"] if with_vectors else [])
        yield from self.pages.records(fields, batch, "read every record")

    def facet(self, field: str) -> dict[str, int]:
        """Counts of each value of a scalar field (folder, source) for the library's summary."""
        return self.pages.facet(field)

    def warm_up(self) -> None:
        """On Lite, read the collection's vectors into memory (rag/store/memory.py); never raises."""
        self.memory.warm_up()

    def close(self) -> None:
        """Drop the copies in memory, then close the connection (a sibling sharing it is closed too)."""
        self.memory.close()
        self.connection.close()

"""The collection's fields, its vector index, and how a stored row becomes an :class:`rag.core.types.Asset`.

One schema for Lite and a server; where they differ in how index parameters are given, this
module absorbs it. The search parameters follow the index the collection really has.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rag.core import Asset
from rag.store.words import STOP_WORDS

log = logging.getLogger(__name__)

SCALAR_FIELDS = ("path", "filename", "folder", "width", "height", "format", "bytes", "created", "source", "meta")
TEXT_FIELD, SPARSE_FIELD = "text", "sparse"
TEXT_MAX_LENGTH = 16384
# Milvus' standard tokenizer and stop filter (Lite has no other filter); words arrive stemmed (rag/store/words.py).
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": list(STOP_WORDS)}]}


def has_full_text(info: dict[str, Any]) -> bool:
    """Whether a described collection has the analysed text field and its BM25 function."""
    return any(f["name"] == SPARSE_FIELD for f in info.get("fields", []))


def _add_full_text(schema: Any, index: Any) -> None:
    """A text field analysed by Milvus and a BM25 function that fills a sparse field from it."""
    from pymilvus import DataType, Function, FunctionType

    schema.add_field(TEXT_FIELD, DataType.VARCHAR, max_length=TEXT_MAX_LENGTH, enable_analyzer=True, analyzer_params=ANALYZER)
    schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=[TEXT_FIELD], output_field_names=[SPARSE_FIELD]))
    index.add_index(SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")


def create_collection(client: Any, name: str, dim: int, index_type: str, is_server: bool, properties: dict[str, str],
                      *, full_text: bool = True) -> None:
    """An explicit schema (Lite answers a quick-setup collection row by row in Python), COSINE, Strong;
    with ``full_text``, the BM25 text field too (servers before 2.5 have none)."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("path", DataType.VARCHAR, max_length=4096)
    schema.add_field("filename", DataType.VARCHAR, max_length=1024)
    schema.add_field("folder", DataType.VARCHAR, max_length=1024)
    schema.add_field("width", DataType.INT32)
    schema.add_field("height", DataType.INT32)
    schema.add_field("format", DataType.VARCHAR, max_length=16)
    schema.add_field("bytes", DataType.INT64)
    schema.add_field("created", DataType.DOUBLE)
    schema.add_field("source", DataType.VARCHAR, max_length=16)
    schema.add_field("meta", DataType.JSON)
    index = client.prepare_index_params()
    params: dict[str, Any] = {}
    if index_type == "HNSW":
        params = {"M": 16, "efConstruction": 200}
    elif index_type.startswith("IVF"):
        params = {"nlist": 1024}
    # Lite ignores index parameters unless they are nested under "params".
    nested = {"params": params} if params and not is_server else params
    index.add_index("vector", index_type=index_type, metric_type="COSINE", params=nested)
    if full_text:
        _add_full_text(schema, index)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", properties=properties)


def existing_index(client: Any, collection: str) -> str:
    """The vector index a collection really has, upper case ("" when it cannot say): the search
    parameters follow it, not the setting, which may have changed since the collection was made."""
    try:
        names = client.list_indexes(collection, field_name="vector") or ["vector"]
        return str(client.describe_index(collection, names[0]).get("index_type") or "").upper()
    except Exception as exc:  # noqa: BLE001
        log.debug("cannot describe the index of %s: %s", collection, exc)
        return ""


def dense_params(index: str, limit: int, min_score: float) -> dict[str, Any]:
    """Search parameters for the vector field under ``index``; ``min_score`` > 0 makes it a range search."""
    params: dict[str, Any] = {}
    if index == "HNSW":
        params["ef"] = max(64, limit)  # HNSW needs ef >= k
    elif index.startswith("IVF"):
        params["nprobe"] = 32
    if min_score > 0:
        params["radius"] = float(min_score) - 1e-6  # COSINE: results closer than this (score >= min_score)
    return {"metric_type": "COSINE", **({"params": params} if params else {})}


def asset_from_row(row: dict[str, Any]) -> Asset:
    entity = row.get("entity", row)
    meta = entity.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta)
    return Asset(
        id=str(row.get("id", entity.get("id"))),
        path=entity["path"],
        filename=entity["filename"],
        folder=entity["folder"],
        width=int(entity["width"]),
        height=int(entity["height"]),
        format=entity["format"],
        bytes=int(entity["bytes"]),
        created=float(entity["created"]),
        source=entity["source"],
        meta=meta,
    )

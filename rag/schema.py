"""The collection's fields, and how a stored row becomes an :class:`rag.types.Asset`.

One schema for Lite and a server; where they differ in how index parameters are given, this
module absorbs it.
"""

from __future__ import annotations

import json
from typing import Any

from .types import Asset


def create_collection(client: Any, name: str, dim: int, index_type: str, is_server: bool, properties: dict[str, str]) -> None:
    """An explicit schema (Lite answers a quick-setup collection row by row in Python), COSINE, Strong."""
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
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", properties=properties)


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

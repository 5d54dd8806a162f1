"""Move a library between Milvus back ends without re-embedding: one Parquet file per library.

``export_parquet`` streams every record (vector included) out of a store in batches through a
pyarrow ``ParquetWriter``; ``import_parquet`` reads a file back in batches and upserts it. Memory
stays flat in both directions: one batch at a time. Typical use is moving a Milvus Lite library to
a Milvus server (``python -m rag export lib.parquet``, then ``MILVUS_URI=http://... python -m rag
import lib.parquet``).

The file has one row per asset: ``id``, ``vector`` (fixed-size list of float32), the scalar fields
of :data:`rag.store.milvus.SCALAR_FIELDS` and ``meta`` as JSON text. The schema's metadata records the
embedding model (``banana.embedding_model``) and the vector size (``banana.dim``): vectors of one
CLIP model are meaningless next to another's, so an import into a collection embedded with another
model is refused unless forced. Files written by pandas (``DataFrame.to_parquet``) with a list
column ``vector`` and the same columns are accepted too (``meta`` as JSON text, or empty).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.core import Asset, TransferError, atomic_path
from rag.store.milvus import QUERY_PAGE, SCALAR_FIELDS, VectorStore

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"
META_FORMAT = b"banana.format"
META_MODEL = b"banana.embedding_model"
META_DIM = b"banana.dim"
META_COLLECTION = b"banana.collection"
META_EXPORTED = b"banana.exported_at"

COLUMNS = ("id", "vector", *SCALAR_FIELDS)
INT_FIELDS = ("width", "height", "bytes")
TEXT_FIELDS = ("id", "path", "filename", "folder", "format", "source")
MAX_ID = 64  # the collection's primary key is VARCHAR(64)

Progress = Callable[[int], None]


def _schema(dim: int, model: str, collection: str) -> Any:
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("path", pa.string()),
        pa.field("filename", pa.string()),
        pa.field("folder", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("created", pa.float64()),
        pa.field("source", pa.string()),
        pa.field("meta", pa.string()),  # JSON text: keeps any nesting, any key, exactly
    ]
    metadata = {
        META_FORMAT: FORMAT_VERSION.encode(),
        META_MODEL: model.encode(),
        META_DIM: str(dim).encode(),
        META_COLLECTION: collection.encode(),
        META_EXPORTED: time.strftime("%Y-%m-%dT%H:%M:%S%z").encode(),
    }
    return pa.schema(fields, metadata=metadata)


def _meta_text(value: Any) -> str:
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _batch_table(rows: list[dict[str, Any]], schema: Any, dim: int) -> Any:
    import pyarrow as pa

    vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise TransferError(f"The store returned vectors of shape {vectors.shape}, expected (n, {dim}).")
    columns: dict[str, Any] = {
        "id": pa.array([str(r["id"]) for r in rows], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim),
    }
    for name in SCALAR_FIELDS:
        kind = schema.field(name).type
        values = [_meta_text(r.get("meta")) for r in rows] if name == "meta" else [r.get(name) for r in rows]
        columns[name] = pa.array(values, kind)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def export_parquet(
    store: VectorStore,
    path: str | Path,
    *,
    model: str = "",
    batch: int = QUERY_PAGE,
    progress: Progress | None = None,
) -> int:
    """Write every record of ``store`` (vectors included) to a Parquet file; the number written.

    ``model`` names the embedding model when the collection does not record one. The file appears
    only when complete (it is written beside the target and renamed), so an interrupted export
    never leaves a truncated file under the requested name.
    """
    import pyarrow.parquet as pq

    target = Path(path).expanduser()
    if target.is_dir():
        raise TransferError(f"{target} is a folder; give a file name such as library.parquet.")
    if not target.parent.is_dir():
        raise TransferError(f"The folder {target.parent} does not exist.")
    dim = int(store.dim)
    schema = _schema(dim, store.model or model, str(getattr(store, "collection", "")))
    written = 0
    with atomic_path(target) as partial, pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for rows in store.iter_records(batch=batch, with_vectors=True):
            if not rows:
                continue
            writer.write_table(_batch_table(rows, schema, dim))
            written += len(rows)
            if progress:
                progress(written)
    return written


# -- import --------------------------------------------------------------------------------------
def read_header(path: str | Path) -> dict[str, Any]:
    """What a file says about itself: rows, vector size, model; raises TransferError when unusable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = Path(path).expanduser()
    if not source.is_file():
        raise TransferError(f"{source} is not a file.")
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise TransferError(f"{source.name} is not a readable Parquet file ({exc}).") from exc
    schema = parquet.schema_arrow
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise TransferError(
            f"{source.name} lacks the column(s) {', '.join(missing)}; a library file needs "
            f"{', '.join(COLUMNS)} (as written by `python -m rag export`)."
        )
    vector_type = schema.field("vector").type
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if not any(is_kind(vector_type) for is_kind in lists):
        raise TransferError(f"Column 'vector' of {source.name} holds {vector_type}, not lists of numbers.")
    if not (pa.types.is_floating(vector_type.value_type) or pa.types.is_integer(vector_type.value_type)):
        raise TransferError(f"Column 'vector' of {source.name} holds lists of {vector_type.value_type}, not numbers.")
    metadata = schema.metadata or {}
    dim = vector_type.list_size if pa.types.is_fixed_size_list(vector_type) else None
    if dim is None and META_DIM in metadata:
        try:
            dim = int(metadata[META_DIM])
        except ValueError:
            dim = None
    return {
        "file": parquet,
        "rows": parquet.metadata.num_rows,
        "dim": dim,
        "model": metadata.get(META_MODEL, b"").decode("utf-8", "replace"),
        "collection": metadata.get(META_COLLECTION, b"").decode("utf-8", "replace"),
    }


def _check_model(file_model: str, target_model: str, force: bool, name: str) -> None:
    if not file_model:
        log.warning("%s does not say which model embedded it; importing without checking", name)
        return
    if not target_model or file_model == target_model:
        return
    message = (
        f"{name} was embedded with {file_model} but this collection uses {target_model}: their vectors "
        "cannot be compared, so searches would return noise."
    )
    if not force:
        raise TransferError(message + " Re-index the images with this model instead, or pass --force to import anyway.")
    log.warning("%s (importing anyway: --force)", message)


def _records(table: Any, dim: int, name: str, rebase: tuple[str, str] | None) -> tuple[list[Asset], np.ndarray]:
    """Assets and vectors of one batch, validated."""
    data = table.to_pydict()
    n = table.num_rows
    vectors_raw = data["vector"]
    bad = next((i for i, v in enumerate(vectors_raw) if v is None or len(v) != dim), None)
    if bad is not None:
        got = "no vector" if vectors_raw[bad] is None else f"a {len(vectors_raw[bad])}-d vector"
        raise TransferError(
            f"{name}: record {data['id'][bad]!r} has {got}; this collection holds {dim}-d vectors."
        )
    vectors = np.asarray(vectors_raw, dtype=np.float32).reshape(n, dim)
    if not np.isfinite(vectors).all():
        row = int(np.argwhere(~np.isfinite(vectors))[0][0])
        raise TransferError(f"{name}: record {data['id'][row]!r} has a vector with NaN or infinite values.")
    assets = []
    for i in range(n):
        row = {k: data[k][i] for k in COLUMNS if k != "vector"}
        for key in TEXT_FIELDS:
            if row[key] is None or (key == "id" and not str(row[key]).strip()):
                raise TransferError(f"{name}: record {i} of a batch has no {key}.")
        if len(str(row["id"])) > MAX_ID:
            raise TransferError(f"{name}: id {str(row['id'])[:80]!r}... is longer than {MAX_ID} characters.")
        meta = row["meta"]
        if isinstance(meta, (bytes, bytearray)):
            meta = meta.decode("utf-8")
        if isinstance(meta, str):
            try:
                meta = json.loads(meta) if meta.strip() else {}
            except ValueError as exc:
                raise TransferError(f"{name}: record {row['id']!r} has meta that is not JSON ({exc}).") from None
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TransferError(f"{name}: record {row['id']!r} has meta that is not a JSON object.")
        path = str(row["path"])
        if rebase and path.startswith(rebase[0]):
            path = rebase[1] + path[len(rebase[0]):]
        try:
            created = float(row["created"]) if row["created"] is not None else 0.0
            asset = Asset(
                id=str(row["id"]),
                path=path,
                filename=str(row["filename"]),
                folder=str(row["folder"]),
                width=int(row["width"] or 0),
                height=int(row["height"] or 0),
                format=str(row["format"]),
                bytes=int(row["bytes"] or 0),
                created=created if math.isfinite(created) else 0.0,
                source=str(row["source"]),
                meta=meta,
            )
        except (TypeError, ValueError) as exc:
            raise TransferError(f"{name}: record {row['id']!r} has a malformed field ({exc}).") from None
        assets.append(asset)
    return assets, vectors


def iter_file(
    path: str | Path,
    dim: int,
    *,
    batch: int = QUERY_PAGE,
    rebase: tuple[str, str] | None = None,
    header: dict[str, Any] | None = None,
) -> Iterator[tuple[list[Asset], np.ndarray]]:
    """The records of a library file in batches of ``(assets, vectors)``, validated against ``dim``."""
    import pyarrow as pa

    header = read_header(path) if header is None else header
    name = Path(path).name
    if header["dim"] is not None and header["dim"] != dim:
        raise TransferError(
            f"{name} holds {header['dim']}-d vectors but this collection holds {dim}-d ones "
            "(another CLIP_MODEL made them). Use a MILVUS_COLLECTION for that model, or re-index."
        )
    for record_batch in header["file"].iter_batches(batch_size=max(1, int(batch)), columns=list(COLUMNS)):
        yield _records(pa.Table.from_batches([record_batch]), dim, name, rebase)


def import_parquet(
    store: VectorStore,
    path: str | Path,
    *,
    batch: int = QUERY_PAGE,
    model: str = "",
    force: bool = False,
    rebase: tuple[str, str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Upsert every record of a library file into ``store``; the number of records read.

    ``model`` is the model of the app doing the import; the collection's own record of its model
    wins when it has one. A file from another model is refused (:class:`TransferError`) unless
    ``force``. ``rebase=(old, new)`` rewrites a leading ``old`` of each path to ``new`` (the images
    live elsewhere on the new machine). Upserts are idempotent: importing a file twice, or again
    after an interruption, leaves one record per id.
    """
    header = read_header(path)
    name = Path(path).name
    dim = int(store.dim)
    _check_model(header["model"], store.model or model, force, name)
    done = 0
    for assets, vectors in iter_file(path, dim, batch=batch, rebase=rebase, header=header):
        store.upsert(assets, vectors)
        done += len(assets)
        if progress:
            progress(done)
    if done:
        store.flush()
    return done


def parse_rebase(value: str | None) -> tuple[str, str] | None:
    """``OLD=NEW`` from the command line."""
    if not value:
        return None
    old, sep, new = value.partition("=")
    if not sep or not old:
        raise TransferError(f"--rebase takes OLD=NEW (a path prefix and its replacement), got {value!r}.")
    return old, new


__all__: Sequence[str] = (
    "TransferError", "export_parquet", "import_parquet", "iter_file", "parse_rebase", "read_header",
)

"""Export a library to Parquet and import it elsewhere (Lite → Lite, Lite → a Milvus server)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rag.clip import ClipEmbedder
from rag.core import Asset, BananaError
from rag.store import MilvusStore
from rag.store.transfer import COLUMNS, TransferError, export_parquet, import_parquet, read_header
from rag.studio import Studio
from tests.conftest import SAMPLE, MilvusBackend, test_settings

RICH_META = {
    "prompt": 'a "banana" on a beach\\n — ünïcödé 文字',
    "model": "gemini-3.1-flash-image",
    "parents": ["a" * 64, "b" * 64],
    "provenance": {"references": [{"id": "a" * 64, "weight": 0.5}], "seed": None, "ok": True, "n": 1.25},
}


def pictures(root: Path, per_folder: int = 2) -> Path:
    for sub in ("animals", "food", "plants", "tools", "vehicles"):
        if not (SAMPLE / sub).is_dir():
            continue
        (root / sub).mkdir(parents=True, exist_ok=True)
        for src in sorted((SAMPLE / sub).iterdir())[:per_folder]:
            shutil.copy(src, root / sub / src.name)
    return root


def without_embedded(meta: dict) -> dict:
    """``meta`` less the words ingest read from the file (the sample PNGs carry a Title)."""
    return {k: v for k, v in meta.items() if k != "embedded"}


def without_vector(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "vector"}


def everything(store: MilvusStore) -> dict[str, dict]:
    return {r["id"]: r for batch in store.iter_records(batch=500, with_vectors=True) for r in batch}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder):
    """A small Lite library: sample images plus a 'generated' record with nested meta; and its export."""
    tmp = tmp_path_factory.mktemp("transfer-source")
    studio = Studio(test_settings(tmp), embedder=embedder)
    assert not studio.ingest_folder(pictures(tmp / "pictures")).failed
    extra = sorted((SAMPLE / "food").iterdir())[-1]
    assert studio.ingest_files([extra], source="generated", folder='gen "quoted"', meta=RICH_META).added
    exported = tmp / "library.parquet"
    n = export_parquet(studio.store, exported, model=embedder.name, batch=4)
    assert n == studio.count() >= 9
    yield studio, exported
    studio.close()


def test_export_writes_a_self_describing_streamed_file(source, embedder: ClipEmbedder) -> None:
    studio, exported = source
    parquet = pq.ParquetFile(exported)
    assert parquet.schema_arrow.names == list(COLUMNS)
    assert parquet.schema_arrow.field("vector").type == pa.list_(pa.float32(), 512)
    assert parquet.metadata.num_rows == studio.count()
    assert parquet.metadata.num_row_groups == -(-studio.count() // 4)  # one row group a batch: streamed
    header = read_header(exported)
    assert header["model"] == embedder.name == "ViT-B-32/none" and header["dim"] == 512
    assert header["collection"] == studio.settings.collection
    frame = pd.read_parquet(exported)  # plain pandas reads it
    generated = frame[frame["source"] == "generated"].iloc[0]
    assert without_embedded(json.loads(generated["meta"])) == RICH_META and generated["folder"] == 'gen "quoted"'
    assert not list(exported.parent.glob(".*.partial"))


def test_round_trip_keeps_records_vectors_and_search(
    source, milvus_backend: MilvusBackend, embedder: ClipEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lite → Lite and Lite → server: the same records, vectors and search results, no re-embedding."""
    studio, exported = source
    target = Studio(milvus_backend.settings(), embedder=embedder)
    try:
        with monkeypatch.context() as m:  # importing must not embed anything
            m.setattr(embedder, "embed_images", lambda *a, **k: pytest.fail("import re-embedded images"))
            n = import_parquet(target.store, exported, model=embedder.name, batch=5)
        assert n == studio.count() == target.count()
        before, after = everything(studio.store), everything(target.store)
        assert set(before) == set(after)
        for rid, row in before.items():
            other = after[rid]
            vector, expected = np.asarray(other["vector"], np.float32), np.asarray(row["vector"], np.float32)
            np.testing.assert_allclose(vector, expected, rtol=1e-6)
            assert without_vector(other) == without_vector(row)
        (generated,) = target.search("anything", k=20, sources=["generated"])
        assert without_embedded(generated.asset.meta) == RICH_META and generated.asset.folder == 'gen "quoted"'
        assert generated.asset.meta["embedded"]  # the words read from the file at ingest came along
        assert target.asset(generated.asset.id).parents == []  # parents are ids of assets not in this library
        for query in ({"text": "a red car"}, {"image_id": generated.asset.id}, {"text": "food", "folders": ["food"]}):
            want, got = studio.search(k=6, **query), target.search(k=6, **query)
            assert [h.asset for h in got] == [h.asset for h in want], query
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
        assert import_parquet(target.store, exported, model=embedder.name) == n  # idempotent
        assert target.count() == n
    finally:
        target.close()


def test_import_refuses_another_model_unless_forced(source, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, exported = source
    store = MilvusStore(test_settings(tmp_path), 512, "ViT-B-32/laion2b_s34b_b79k")
    refused = r"embedded with ViT-B-32/none but this collection uses ViT-B-32/laion2b.*--force"
    with pytest.raises(TransferError, match=refused):
        import_parquet(store, exported, model="ViT-B-32/laion2b_s34b_b79k")
    assert store.count() == 0
    with caplog.at_level(logging.WARNING, logger="rag.store.transfer"):
        assert import_parquet(store, exported, force=True) == store.count() > 0
    assert "importing anyway" in caplog.text
    store.close()


def test_import_checks_the_vector_size(source, tmp_path: Path) -> None:
    _, exported = source
    store = MilvusStore(test_settings(tmp_path), 768, "ViT-B-32/none")
    with pytest.raises(TransferError, match="holds 512-d vectors but this collection holds 768-d"):
        import_parquet(store, exported)
    assert store.count() == 0
    store.close()


def _row(i: int, dim: int = 4, **changes: object) -> dict:
    row = {
        "id": f"{i:064x}", "vector": [float(i + 1), 1.0, 0.0, 0.5] + [0.0] * (dim - 4), "path": f"/old/root/{i}.png",
        "filename": f"{i}.png", "folder": "f", "width": 3, "height": 4, "format": "PNG", "bytes": 10,
        "created": 1.5, "source": "upload", "meta": json.dumps({"i": i}),
    }
    return {**row, **changes}


@pytest.fixture
def small_store(tmp_path: Path) -> MilvusStore:
    s = MilvusStore(test_settings(tmp_path, collection="small"), 4, "")
    yield s
    s.close()


def test_pandas_files_are_accepted_and_paths_can_be_rebased(small_store: MilvusStore, tmp_path: Path) -> None:
    file = tmp_path / "from-pandas.parquet"
    frame = pd.DataFrame([_row(1), _row(2, meta='{"nested": {"x": [1, 2]}}'), _row(3, meta=None)])
    frame["vector"] = frame["vector"].map(np.asarray)  # float64 arrays, variable-length lists in Parquet
    frame.to_parquet(file)
    assert import_parquet(small_store, file, rebase=("/old/root/", "/new/place/")) == 3
    got = {a.id: a for a in small_store.get([f"{i:064x}" for i in (1, 2, 3)])}
    assert got[f"{1:064x}"].path == "/new/place/1.png" and got[f"{1:064x}"].meta == {"i": 1}
    assert got[f"{2:064x}"].meta == {"nested": {"x": [1, 2]}} and got[f"{3:064x}"].meta == {}
    hit = small_store.search(np.array([2.0, 1.0, 0.0, 0.5], np.float32), 1)[0]
    assert hit.asset.id == f"{1:064x}" and hit.score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{k: v for k, v in _row(1).items() if k not in ("vector", "meta")}], "lacks the column\\(s\\) vector, meta"),
        ([_row(1), _row(2, vector=[1.0, 2.0])], "record '0+2' has a 2-d vector; this collection holds 4-d"),
        ([_row(1, vector=[float("nan"), 0.0, 0.0, 1.0])], "NaN or infinite"),
        ([_row(1, meta="{not json")], "meta that is not JSON"),
        ([_row(1, meta="[1, 2]")], "meta that is not a JSON object"),
        ([_row(1, id="x" * 65)], "longer than 64 characters"),
        ([_row(1, vector=["a", "b", "c", "d"])], "holds lists of string, not numbers"),
        ([_row(1, path=None)], "has no path"),
    ],
)
def test_bad_files_give_clear_errors(small_store: MilvusStore, tmp_path: Path, rows: list, message: str) -> None:
    file = tmp_path / "bad.parquet"
    pd.DataFrame(rows).to_parquet(file)
    with pytest.raises(BananaError, match=message):
        import_parquet(small_store, file)


def test_unreadable_and_missing_files(small_store: MilvusStore, tmp_path: Path) -> None:
    (tmp_path / "notes.parquet").write_text("not parquet")
    with pytest.raises(TransferError, match="not a readable Parquet file"):
        import_parquet(small_store, tmp_path / "notes.parquet")
    with pytest.raises(TransferError, match="is not a file"):
        import_parquet(small_store, tmp_path / "missing.parquet")
    with pytest.raises(TransferError, match="does not exist"):
        export_parquet(small_store, tmp_path / "no" / "such" / "dir.parquet")


def test_empty_library_exports_and_imports_nothing(small_store: MilvusStore, tmp_path: Path) -> None:
    file = tmp_path / "empty.parquet"
    assert export_parquet(small_store, file, model="m") == 0
    assert pq.ParquetFile(file).metadata.num_rows == 0
    assert import_parquet(small_store, file) == 0


def test_import_streams_in_batches(small_store: MilvusStore, tmp_path: Path) -> None:
    file = tmp_path / "many.parquet"
    pd.DataFrame([_row(i) for i in range(23)]).to_parquet(file)
    sizes: list[int] = []
    upsert = small_store.upsert
    small_store.upsert = lambda assets, vectors: (sizes.append(len(assets)), upsert(assets, vectors))  # type: ignore
    assert import_parquet(small_store, file, batch=10) == 23
    assert sizes == [10, 10, 3] and small_store.count() == 23


def test_interrupted_export_leaves_no_file(small_store: MilvusStore, tmp_path: Path) -> None:
    small_store.upsert([Asset(**{k: v for k, v in _row(i).items() if k != "vector"} | {"meta": {}}) for i in range(3)],
                       np.eye(4, dtype=np.float32)[:3])

    def broken(batch: int = 1000, with_vectors: bool = False):
        yield [{**r} for r in next(iter(MilvusStore.iter_records(small_store, batch=1, with_vectors=True)))]
        raise RuntimeError("connection lost")

    small_store.iter_records = broken  # type: ignore[method-assign]
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError, match="connection lost"):
        export_parquet(small_store, target)
    assert not target.exists() and not list(tmp_path.glob(".out.parquet*"))


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_export(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder, cli):
    """A Lite library made through Studio (closed again), exported by `python -m rag export --json` (in-process:
    the ``cli`` fixture, tests/conftest.py)."""
    tmp = tmp_path_factory.mktemp("cli-export")
    src = Studio(test_settings(tmp / "src"), embedder=embedder)
    assert not src.ingest_folder(pictures(tmp / "pictures", 1)).failed
    records = everything(src.store)
    src.store.close()
    file = tmp / "out" / "lib.parquet"
    file.parent.mkdir()
    result = cli(["export", str(file), "--json", "--batch", "2"], tmp / "src")
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    assert exported == {"exported": len(records), "file": str(file.resolve()), "collection": "banana_assets",
                        "model": "ViT-B-32/none", "dim": 512}
    assert pq.ParquetFile(file).metadata.num_row_groups == -(-len(records) // 2)
    return file, records


def test_cli_import_moves_the_library(cli_export, tmp_path: Path, milvus_backend: MilvusBackend, cli) -> None:
    """`python -m rag import` into a fresh Lite library, or into a server (MILVUS_URI): same records."""
    file, records = cli_export
    settings = milvus_backend.settings()
    env = {"MILVUS_URI": settings.milvus_uri, "MILVUS_COLLECTION": settings.collection}
    result = cli(["import", str(file), "--json", "-q"], tmp_path / "dest", **env)
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    assert imported["imported"] == imported["count"] == len(records) and not imported["forced"]
    assert imported["file_model"] == imported["model"] == "ViT-B-32/none"

    dest = MilvusStore(settings, 512, "")
    try:
        after = everything(dest)
        assert set(after) == set(records)
        ids = sorted(records)
        matrix = np.asarray([records[i]["vector"] for i in ids], np.float32)
        for rid in ids:
            assert without_vector(after[rid]) == without_vector(records[rid])
        exact = [ids[j] for j in np.argsort(-(matrix @ matrix[0]))[:3]]
        assert [h.asset.id for h in dest.search(matrix[0], 3)] == exact
    finally:
        dest.close()


def test_cli_import_refuses_another_model(cli_export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The CLI in-process (a subprocess costs ~10 s of imports): exit code 1, the error as JSON, a hint."""
    from rag.cli import main

    file, _ = cli_export
    for name in ("MILVUS_URI", "MILVUS_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BANANA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLIP_PRETRAINED", "other-weights")
    assert main(["import", str(file), "--json"]) == 1
    out, err = capsys.readouterr()
    assert "embedded with ViT-B-32/none but this collection uses ViT-B-32/other-weights" in json.loads(out)["error"]
    assert "--force" in err and "Traceback" not in err
    assert main(["import", str(file), "--json", "--force", "--rebase", "/=/moved/"]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["forced"] and imported["imported"] == imported["count"] > 0
    assert main(["import", str(file), "--rebase", "no-equals-sign"]) == 1
    assert "--rebase takes OLD=NEW" in capsys.readouterr().err

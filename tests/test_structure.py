"""The seams of the code: one default per setting, one carrier of search options, a closed store facade
that speaks in sentences, and nothing that runs at import."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from rag.cli.main import build_parser
from rag.core import Settings, StoreError
from rag.search import Query
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import ROOT, test_settings


# -- settings ----------------------------------------------------------------------------------------
def test_every_setting_has_one_default_and_one_variable() -> None:
    assert Settings() == Settings.from_env({})  # the defaults live in the fields, nowhere else
    names = [n for f in dataclasses.fields(Settings) for n in f.metadata["env"]]
    assert len(names) == len(set(names)) and "GEMINI_API_KEY" in names and "BANANA_PORT" in names
    s = Settings.from_env({"BANANA_DATA_DIR": "/lib", "MILVUS_INDEX": "hnsw", "BANANA_PORT": "8000", "EMBED_BATCH_SIZE": "  "})
    assert s.milvus_uri == "/lib/milvus.db" and s.library_dir == Path("/lib/library") and s.thumbs_dir == Path("/lib/thumbs")
    assert s.index_type == "HNSW" and s.port == 8000 and s.batch_size == Settings().batch_size  # blank keeps the default
    assert Settings.from_env({"EMBED_BATCH_SIZE": "0", "GEMINI_RETRIES": "-2"}).batch_size == 1
    with pytest.raises(Exception, match="IMAGE_BACKGROUND must be a hex colour"):
        Settings.from_env({"IMAGE_BACKGROUND": "grey"})


def test_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env({"GEMINI_API_KEY": "key-secret-1", "MILVUS_TOKEN": "tok-secret-2", "BANANA_AUTH": "u:pw-secret-3"})
    assert s.gemini_api_key == "key-secret-1" and s.auth == "u:pw-secret-3"
    assert not {"key-secret-1", "tok-secret-2", "pw-secret-3"} & set(repr(s).replace("'", " ").replace(":", " ").split())


def test_app_reads_host_and_port_through_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``python app.py --help``, in this process: ``app.main`` reads the environment when called, and a process
    added only seconds of importing Gradio (tests/test_compose.py checks the command the image runs)."""
    import app as app_module

    monkeypatch.setenv("BANANA_PORT", "8123")
    monkeypatch.setenv("BANANA_HOST", "0.0.0.0")
    with pytest.raises(SystemExit) as done:
        app_module.main(["--help"])
    assert done.value.code == 0
    assert "BANANA_PORT" in capsys.readouterr().out
    monkeypatch.setenv("BANANA_PORT", "eighty")
    assert app_module.main(["--help"]) == 1  # a sentence, before argparse or anything else runs
    err = capsys.readouterr().err
    assert "BANANA_PORT must be a whole number" in err and "Traceback" not in err


# -- the query ---------------------------------------------------------------------------------------
def test_the_cli_offers_every_query_option_with_a_flag() -> None:
    args = build_parser().parse_args(["search", "cape", "--no-words", "--min-score", "0.2", "--dedupe", "--folder", "a", "--folder", "b", "-k", "4"])
    flagged = {f.name for f in dataclasses.fields(Query) if f.metadata["flag"]}
    assert flagged | {"text"} <= set(vars(args))
    query = Query.of({f.name: getattr(args, f.name) for f in dataclasses.fields(Query) if hasattr(args, f.name)})
    assert query == Query(text="cape", words=False, min_score=0.2, dedupe=True, folders=("a", "b"), k=4)


def test_query_of_refuses_unknown_options_and_fills_defaults() -> None:
    assert Query.of({"text": "x", "folders": None, "k": 5.0, "image": ""}) == Query(text="x", k=5)
    with pytest.raises(TypeError, match="by_name"):
        Query.of({"by_name": True})


# -- the store facade --------------------------------------------------------------------------------
FOREIGN = """
import sys
from pymilvus import DataType, MilvusClient
client = MilvusClient(uri=sys.argv[1])
schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
schema.add_field("vector", DataType.FLOAT_VECTOR, dim=512)
index = client.prepare_index_params()
index.add_index("vector", index_type="FLAT", metric_type="COSINE")
client.create_collection(sys.argv[2], schema=schema, index_params=index)
client.insert(sys.argv[2], [{"id": "a" * 64, "vector": [1.0] + [0.0] * 511}])
client.flush(sys.argv[2])
"""


def _foreign_collection(settings: Settings) -> None:
    """A collection of the app's name and vector size, made by another program (another process,
    since Milvus Lite lets one process hold a database): it lacks the app's fields."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", FOREIGN, settings.milvus_uri, settings.collection],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.fixture
def broken_settings(tmp_path: Path) -> Settings:
    settings = test_settings(tmp_path / "data")
    _foreign_collection(settings)
    return settings


def test_a_failing_query_after_connect_is_a_sentence(broken_settings: Settings, embedder) -> None:
    studio = Studio(broken_settings, embedder=embedder)
    try:
        assert studio.count() == 1  # it opens: the failure comes later
        with pytest.raises(StoreError, match=r"^The library database at .* could not count images by folder: "):
            studio.stats()
        with pytest.raises(StoreError, match="could not search"):
            studio.search("anything")
    finally:
        studio.close()
    studio.close()  # twice is harmless


def test_the_cli_reports_a_store_failure_in_one_line(broken_settings: Settings, cli) -> None:
    """A real process for the exit code and stderr; the JSON form in this process (one process costs ~8 s)."""
    env = {**os.environ, "CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(broken_settings.data_dir)}
    out = subprocess.run([sys.executable, "-m", "rag", "stats"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: The library database at ") and "Traceback" not in out.stderr, out.stderr
    as_json = cli(["stats", "--json"], broken_settings.data_dir)
    assert as_json.returncode == 1 and "could not count images" in json.loads(as_json.stdout)["error"]


def test_the_app_reports_a_store_failure_in_words(broken_settings: Settings, embedder) -> None:
    studio = Studio(broken_settings, embedder=embedder)
    try:
        with running_app(studio) as url:
            client = Client(url, verbose=False)
            with pytest.raises(Exception, match="could not count images by folder") as err:
                client.predict(api_name="/stats")
            assert "Something went wrong" not in str(err.value)
    finally:
        studio.close()


def test_export_and_import_go_through_the_studio(studio: Studio, tmp_path: Path) -> None:
    from tests.conftest import SAMPLE

    studio.ingest_folder(SAMPLE / "food")
    n = studio.export(tmp_path / "lib.parquet")
    assert n == studio.count() > 0 and studio.store.model == studio.embedder.name
    other = Studio(studio.settings.with_(collection="copy"), embedder=studio.embedder)
    try:
        assert other.import_(tmp_path / "lib.parquet") == n and other.count() == n
    finally:
        other.close()


# -- import time -------------------------------------------------------------------------------------
def test_importing_the_backend_changes_nothing_in_the_process() -> None:
    code = """
import logging, os, sys
import PIL.Image
before = (PIL.Image.MAX_IMAGE_PIXELS, len(PIL.Image.OPEN), dict(os.environ), {n: list(logging.getLogger(n).filters) for n in logging.root.manager.loggerDict})
import pkgutil, importlib, rag
for m in pkgutil.walk_packages(rag.__path__, "rag."):
    if m.name != "rag.__main__":
        importlib.import_module(m.name)
after = (PIL.Image.MAX_IMAGE_PIXELS, len(PIL.Image.OPEN), dict(os.environ), {n: list(logging.getLogger(n).filters) for n in logging.root.manager.loggerDict})
print(before[0] == after[0] is not None, before[1] == after[1], before[2] == after[2], all(not f for f in after[3].values()))
from threadpoolctl import threadpool_info
print(all(i.get("num_threads", 2) != 1 or os.cpu_count() == 1 for i in threadpool_info() if i["user_api"] == "blas"))
"""
    env = {**os.environ, "MILVUS_URI": "data/milvus.db"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"] * 5, out.stdout  # Pillow's limit and plugins, environment, log filters, BLAS


# -- the shape of the house --------------------------------------------------------------------------
def test_the_layers_are_a_checked_contract() -> None:
    """pyproject.toml's import-linter contracts: layers import downwards only, no circles, no gradio in rag."""
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def _sources() -> list[Path]:
    return sorted([*ROOT.glob("rag/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"])


def test_no_module_over_350_lines_and_no_function_over_60() -> None:
    long_modules = [f"{p.relative_to(ROOT)}: {n}" for p in _sources() if (n := len(p.read_text().splitlines())) > 350]
    long_functions = [
        f"{p.relative_to(ROOT)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}"
        for p in _sources() for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long_modules and not long_functions, long_modules + long_functions


def test_every_package_names_what_it_offers_and_no_private_name_crosses_one() -> None:
    crossing = []
    for path in _sources():
        here = path.relative_to(ROOT).parts[:2]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rag."):
                there = tuple(node.module.split(".")[:2])
                crossing += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and there != here]
    assert not crossing, crossing
    for init in ROOT.glob("rag/*/__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} says what its package is for"
        assert init.parent.name == "cli" or any(isinstance(n, ast.Assign) and n.targets[0].id == "__all__" for n in tree.body), init

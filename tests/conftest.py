"""Shared fixtures: real Milvus Lite in a temporary folder, real open_clip (random weights unless
real ones are available), the fake Gemini server on loopback."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple

import pytest

from rag.clip.embedder import ClipEmbedder, find_local_weights
from rag.core import Settings
from rag.studio import Studio
from tests.fake_gemini import fake_gemini  # noqa: F401  (pytest fixture)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "sample"
SHARED_MODELS = ROOT.parent / "shared" / "models"


def test_settings(data_dir: Path, **changes: object) -> Settings:
    """Settings for one test: its own data folder and database, the weightless model."""
    base = Settings.from_env({"CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(data_dir), "EMBED_WORKERS": "2"})
    return base.with_(**changes) if changes else base


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's proxy settings from routing 127.0.0.1 (fake Gemini, the app) elsewhere."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> ClipEmbedder:
    """One weightless ViT-B-32 for the whole session (building it takes seconds)."""
    return ClipEmbedder(test_settings(tmp_path_factory.mktemp("model")))


@pytest.fixture
def studio(tmp_path: Path, embedder: ClipEmbedder) -> Studio:
    s = Studio(test_settings(tmp_path), embedder=embedder)
    yield s
    s.close()


@pytest.fixture(scope="module")
def sample_studio(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder) -> Studio:
    """A library holding the sample images, shared by read-only tests of one module."""
    s = Studio(test_settings(tmp_path_factory.mktemp("sample")), embedder=embedder)
    report = s.ingest_folder(SAMPLE)
    assert report.added and not report.failed
    s.store.warm_up()  # searched as the app searches: Lite's vectors in memory (rag/store/lite_mirror.py)
    yield s
    s.close()


# -- the command line, in-process -----------------------------------------------------------------
class CliRun(NamedTuple):
    """What one ``python -m rag`` command left, as ``subprocess.run`` reports it: exit code, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def cli_environ(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment a CLI test runs under: this one, the weightless model, its own data folder and,
    unless ``env`` names one, its own Milvus Lite database (a developer's MILVUS_URI is left out)."""
    environ = {**os.environ, "CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(data_dir), **env}
    if "MILVUS_URI" not in env:
        environ.pop("MILVUS_URI", None)
    return environ


def run_cli(args: Sequence[str], data_dir: Path, *, embedder: ClipEmbedder | None = None, **env: str) -> CliRun:
    """``python -m rag ARGS`` in this process: :func:`rag.cli.main` with the environment :func:`cli_environ`
    gives, reusing ``embedder`` when the settings ask for its model (a process would build its own, ~5-8 s).

    stdout and stderr are captured, and so are log records at the level ``main`` sets (WARNING, INFO with
    ``-v``), formatted as its ``logging.basicConfig`` would; argparse's ``SystemExit`` becomes the exit code.
    A command that holds a Milvus Lite database keeps it open in this process afterwards (Lite shares it
    within a process): release it (``server_manager_instance.release_server``) before another process opens it.
    """
    from rag.cli import main

    def make_studio(settings: Settings) -> Studio:
        same = embedder is not None and all(getattr(settings, f) == getattr(embedder.settings, f)
                                            for f in ("clip_model", "clip_pretrained", "device", "precision"))
        return Studio(settings, embedder=embedder if same else None)

    out, err = io.StringIO(), io.StringIO()
    verbose = "-v" in args or "--verbose" in args
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    shown = logging.StreamHandler(err)
    shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(shown)  # main's basicConfig then adds nothing that would outlive the command
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args), environ=cli_environ(data_dir, **env), make_studio=make_studio)
            except SystemExit as exc:  # argparse: 2 for a usage error, 0 for --help
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cli(embedder: ClipEmbedder) -> Callable[..., CliRun]:
    """``cli(args, data_dir, **env)``: :func:`run_cli` with the session's model."""

    def run(args: Sequence[str], data_dir: Path, **env: str) -> CliRun:
        return run_cli(args, data_dir, embedder=embedder, **env)

    return run


def real_weights() -> Path | None:
    """A real CLIP weights file: CLIP_PRETRAINED if it names one, else ../shared/models."""
    return find_local_weights(SHARED_MODELS, os.environ.get("CLIP_PRETRAINED", ""))


# -- a real Milvus server (tests/milvus_server.py) --------------------------------------------------
def unique_collection(prefix: str = "t") -> str:
    """A collection name no other test uses (tests share one server)."""
    import uuid

    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def milvus_test_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Milvus server's URI: MILVUS_TEST_URI, else the embedded server (started once a session), else skip."""
    from tests import milvus_server

    yield from milvus_server.milvus_test_uri(lambda: tmp_path_factory.mktemp("milvus-server"))


class MilvusBackend:
    """One back end for a test: Settings with a fresh collection each; server collections are dropped after."""

    def __init__(self, kind: str, uri: str, data_dir: Path) -> None:
        self.kind, self.uri, self.data_dir = kind, uri, data_dir
        self.collections: list[str] = []

    def settings(self, collection: str = "", **changes: object) -> Settings:
        name = collection or unique_collection(f"t_{self.kind}")
        self.collections.append(name)
        return test_settings(self.data_dir, milvus_uri=self.uri, collection=name, **changes)

    def drop_all(self) -> None:
        if self.kind != "server" or not self.collections:
            return  # a Lite database lives in the test's tmp_path
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri)
        try:
            for name in dict.fromkeys(self.collections):
                if client.has_collection(name):
                    client.drop_collection(name)
        finally:
            client.close()


@pytest.fixture(params=["lite", "server"])
def milvus_backend(request: pytest.FixtureRequest, tmp_path: Path) -> MilvusBackend:
    """Each test twice: on Milvus Lite (a file in tmp_path) and on a Milvus server (skipped when none)."""
    if request.param == "server":
        uri = request.getfixturevalue("milvus_test_uri")
    else:
        uri = str(tmp_path / "lite" / "milvus.db")
    backend = MilvusBackend(request.param, uri, tmp_path)
    yield backend
    backend.drop_all()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject.toml): two workers per core, at most 4. Much of the suite waits on a browser,
    a child process or a Milvus server, and the extra workers fill those waits on two cores (with the
    tests of issues 28-32, the same clean clone took 6 min 51 s with four workers and 7 min 42 s with
    three, 2026-12-07); each loads a CLIP model and may start its own Milvus server, so more would cost
    memory for little."""
    return max(1, min(4, 2 * (os.cpu_count() or 1)))


def pytest_configure(config: pytest.Config) -> None:
    """Torch's threads shared out between the workers: two workers each running two threads on two cores
    preempt each other (an image took ~500 ms to encode instead of ~200)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

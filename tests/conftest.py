"""Shared fixtures: real Milvus Lite in a temporary folder, real open_clip (random weights unless
real ones are available), the fake Gemini server on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embedder import ClipEmbedder
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
    if s._store is not None:
        s._store.close()


@pytest.fixture(scope="module")
def sample_studio(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder) -> Studio:
    """A library holding the sample images, shared by read-only tests of one module."""
    s = Studio(test_settings(tmp_path_factory.mktemp("sample")), embedder=embedder)
    report = s.ingest_folder(SAMPLE)
    assert report.added and not report.failed
    yield s
    s._store.close()


def real_weights() -> Path | None:
    """A real CLIP weights file: CLIP_PRETRAINED if it names one, else ../shared/models."""
    configured = os.environ.get("CLIP_PRETRAINED", "")
    if configured and Path(configured).is_file():
        return Path(configured)
    if SHARED_MODELS.is_dir():
        for pattern in ("*ViT-B-32*", "*.safetensors", "*.bin", "*.pt"):
            found = sorted(SHARED_MODELS.rglob(pattern))
            files = [f for f in found if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".pth")]
            if files:
                return files[0]
    return None

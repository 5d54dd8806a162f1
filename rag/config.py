"""All settings in one place, read from environment variables with sane defaults.

``Settings.from_env()`` is the only reader of the environment; everything else receives a
``Settings``. Secrets are excluded from ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError

DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}.") from None


def _color(raw: str) -> tuple[int, int, int]:
    text = raw.strip().lstrip("#")
    if len(text) != 6:
        raise ConfigError(f"IMAGE_BACKGROUND must be a hex colour like #808080, got {raw!r}.")
    try:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    except ValueError:
        raise ConfigError(f"IMAGE_BACKGROUND must be a hex colour like #808080, got {raw!r}.") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    milvus_uri: str = "data/milvus.db"
    milvus_token: str = field(default="", repr=False)
    collection: str = "banana_assets"
    index_type: str = "auto"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = DEFAULT_PRETRAINED
    device: str = "auto"
    # "bf16" stores the text tower in bfloat16 on CPU: text queries ~1.5x faster again, embeddings
    # move ~1e-4 in cosine (checked at load; falls back to fp32 past 1e-3). Off by default.
    text_precision: str = "fp32"
    batch_size: int = 32
    workers: int = 2
    background: tuple[int, int, int] = (128, 128, 128)
    max_image_pixels: int = 100_000_000
    library_dir: Path = Path("data/library")
    outputs_dir: Path = Path("data/outputs")
    max_upload_mb: float = 50.0
    max_upload_files: int = 500
    gemini_api_key: str = field(default="", repr=False)
    gemini_model: str = "gemini-2.5-flash-image"
    gemini_base_url: str = ""
    gemini_api_version: str = "v1beta"
    gemini_timeout_s: float = 120.0
    gemini_retries: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("BANANA_DATA_DIR", "data"))
        return cls(
            data_dir=data_dir,
            milvus_uri=env.get("MILVUS_URI", str(data_dir / "milvus.db")),
            milvus_token=env.get("MILVUS_TOKEN", ""),
            collection=env.get("MILVUS_COLLECTION", "banana_assets"),
            index_type=env.get("MILVUS_INDEX", "auto").upper() if env.get("MILVUS_INDEX") else "auto",
            clip_model=env.get("CLIP_MODEL", "ViT-B-32"),
            clip_pretrained=env.get("CLIP_PRETRAINED", DEFAULT_PRETRAINED),
            device=env.get("CLIP_DEVICE", "auto"),
            text_precision=(env.get("CLIP_TEXT_PRECISION", "").strip().lower() or "fp32"),
            batch_size=max(1, _int(env, "EMBED_BATCH_SIZE", 32)),
            workers=max(1, _int(env, "EMBED_WORKERS", min(4, os.cpu_count() or 1))),
            background=_color(env.get("IMAGE_BACKGROUND", "#808080")),
            max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 100_000_000),
            library_dir=Path(env.get("LIBRARY_DIR", str(data_dir / "library"))),
            outputs_dir=Path(env.get("OUTPUTS_DIR", str(data_dir / "outputs"))),
            max_upload_mb=_float(env, "MAX_UPLOAD_MB", 50.0),
            max_upload_files=_int(env, "MAX_UPLOAD_FILES", 500),
            gemini_api_key=env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or "",
            gemini_model=env.get("GEMINI_MODEL", "gemini-2.5-flash-image"),
            gemini_base_url=env.get("GEMINI_BASE_URL", ""),
            gemini_api_version=env.get("GEMINI_API_VERSION", "v1beta"),
            gemini_timeout_s=_float(env, "GEMINI_TIMEOUT_S", 120.0),
            gemini_retries=max(0, _int(env, "GEMINI_RETRIES", 3)),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def is_server(self) -> bool:
        """True when ``milvus_uri`` names a Milvus server rather than a Milvus Lite file."""
        return self.milvus_uri.startswith(("http://", "https://", "tcp://", "grpc://"))

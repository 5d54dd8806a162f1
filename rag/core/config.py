"""All settings in one place, read from environment variables with sane defaults.

Each setting is one dataclass field that names its variable and holds its only default;
``Settings.from_env()`` is the only reader of the environment and everything else receives a
``Settings``. Secrets are excluded from ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # CLIP_PRECISION values
JPEG_DECODERS = ("auto", "pillow", "torchvision")  # JPEG_DECODER values
OCR_ENGINES = ("auto", "rapidocr", "tesseract", "off")  # OCR values
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "sample"  # bundled with the app (assets/README.md)
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None


def _float(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}.") from None


def _color(key: str, raw: str) -> tuple[int, int, int]:
    text = raw.strip().lstrip("#")
    try:
        if len(text) != 6:
            raise ValueError
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    except ValueError:
        raise ConfigError(f"{key} must be a hex colour like #808080, got {raw!r}.") from None


def _text(_key: str, raw: str) -> str:
    return raw


def _lower(_key: str, raw: str) -> str:
    return raw.strip().lower()


def _upper(_key: str, raw: str) -> str:
    return raw.strip().upper()


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    """A parser for a setting that takes one of ``choices`` (any case)."""

    def parse(key: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {raw!r}.")
        return value

    return parse


def _switch(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
        raise ConfigError(f"{key} must be on or off, got {raw!r}.")
    return value in ("on", "true", "yes", "1")


def _path(_key: str, raw: str) -> Path:
    return Path(raw)


def _paths(_key: str, raw: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in raw.split(os.pathsep) if p.strip())


def _env(
    *names: str,
    default: Any = None,
    factory: Callable[[], Any] | None = None,
    parse: Callable[[str, str], Any] = _text,
    minimum: float | None = None,
    secret: bool = False,
) -> Any:
    """A setting read from the first of ``names`` that is set and not blank."""
    meta = {"env": names, "parse": parse, "minimum": minimum}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _env("BANANA_DATA_DIR", default=Path("data"), parse=_path)
    # Left empty, these three live inside data_dir (see __post_init__).
    milvus_uri: str = _env("MILVUS_URI", default="")
    library_dir: Path | None = _env("LIBRARY_DIR", parse=_path)
    outputs_dir: Path | None = _env("OUTPUTS_DIR", parse=_path)
    milvus_token: str = _env("MILVUS_TOKEN", default="", secret=True)
    collection: str = _env("MILVUS_COLLECTION", default="banana_assets")
    index_type: str = _env("MILVUS_INDEX", default="AUTO", parse=_upper)
    clip_model: str = _env("CLIP_MODEL", default="ViT-B-32")
    clip_pretrained: str = _env("CLIP_PRETRAINED", default="laion2b_s34b_b79k")
    device: str = _env("CLIP_DEVICE", default="auto", parse=_lower)
    # auto: bf16 weights on CPUs with AMX or AVX512-BF16 (~5x faster image embedding there), fp16
    # autocast on CUDA, fp32 elsewhere. Checked at load against fp32 on probe images and texts, and
    # fp32 is kept if any cosine falls under 0.999 (rag/clip/precision.py). CLIP_TEXT_PRECISION is
    # the deprecated name from when only the text tower could be bf16; it now sets both towers.
    precision: str = _env("CLIP_PRECISION", "CLIP_TEXT_PRECISION", default="auto", parse=_one_of(PRECISIONS))
    batch_size: int = _env("EMBED_BATCH_SIZE", default=32, parse=_int, minimum=1)
    workers: int = _env("EMBED_WORKERS", factory=_default_workers, parse=_int, minimum=1)
    # Who decodes JPEGs for embedding: auto (torchvision's decoder, nvJPEG, on the model's GPU, in batches; Pillow
    # on the decode threads without one), pillow, or torchvision (on the model's device, the CPU included).
    jpeg_decoder: str = _env("JPEG_DECODER", default="auto", parse=_one_of(JPEG_DECODERS))
    background: tuple[int, int, int] = _env("IMAGE_BACKGROUND", default=(128, 128, 128), parse=_color)
    max_image_pixels: int = _env("MAX_IMAGE_PIXELS", default=100_000_000, parse=_int, minimum=1)
    # Server folders the app's folder box may index in place (os.pathsep-separated); empty: the box is off.
    library_roots: tuple[Path, ...] = _env("LIBRARY_ROOTS", default=(), parse=_paths)
    max_file_mb: float = _env("MAX_FILE_MB", default=200.0, parse=_float)  # any file indexed, before it is read
    max_upload_mb: float = _env("MAX_UPLOAD_MB", default=50.0, parse=_float)
    max_upload_files: int = _env("MAX_UPLOAD_FILES", default=500, parse=_int)
    # All files unpacked from the archives of one upload; images barely compress, so this is ample.
    max_upload_total_mb: float = _env("MAX_UPLOAD_TOTAL_MB", default=1024.0, parse=_float)
    gemini_api_key: str = _env("GEMINI_API_KEY", "GOOGLE_API_KEY", default="", secret=True)
    # auto: the preferred image model the API lists for this key (rag/generation/model_list.py); a model id pins one.
    gemini_model: str = _env("GEMINI_MODEL", default="auto")
    gemini_base_url: str = _env("GEMINI_BASE_URL", default="")
    gemini_api_version: str = _env("GEMINI_API_VERSION", default="v1beta")
    gemini_timeout_s: float = _env("GEMINI_TIMEOUT_S", default=120.0, parse=_float)
    gemini_retries: int = _env("GEMINI_RETRIES", default=3, parse=_int, minimum=0)
    # USD a day (all users together); a request whose estimate would pass it is refused before any call.
    gemini_daily_budget_usd: float | None = _env("GEMINI_DAILY_BUDGET_USD", parse=_float, minimum=0.0)
    # A Gemini text model that writes a one-line description and tags for images with no words
    # (python -m rag caption); auto: the newest Flash-Lite text model the API lists; empty: off.
    caption_model: str = _env("CAPTION_MODEL", default="")
    # Campaign requests sent at once ("now" mode); Gemini's rate limits answer 429 beyond what a key may send.
    campaign_concurrency: int = _env("CAMPAIGN_CONCURRENCY", default=2, parse=_int, minimum=1)
    campaign_poll_s: float = _env("CAMPAIGN_POLL_S", default=60.0, parse=_float, minimum=1.0)  # the app asks Batch jobs
    backup_every_hours: float = _env("BACKUP_EVERY_HOURS", default=0.0, parse=_float)  # 0: no scheduled backups
    # Requests waiting beyond this are refused at once ("busy, try again") rather than left spinning.
    max_queue: int = _env("MAX_QUEUE", default=64, parse=_int, minimum=1)
    host: str = _env("BANANA_HOST", default="127.0.0.1")
    port: int = _env("BANANA_PORT", default=7860, parse=_int)
    auth: str = _env("BANANA_AUTH", default="", secret=True)
    users_file: str = _env("BANANA_USERS_FILE", default="")  # one user:password per line; each user's work is theirs
    # Proxies (comma-separated addresses) whose X-Forwarded-For names the client; none: the connecting address counts.
    trusted_proxies: str = _env("BANANA_TRUSTED_PROXIES", default="")
    # Reading the text printed in pictures (rag/media/ocr.py): auto (RapidOCR when installed, else tesseract), rapidocr,
    # tesseract, or off. The app reads new images in the background; `python -m rag ocr` back-fills a library.
    ocr: str = _env("OCR", default="auto", parse=_one_of(OCR_ENGINES))
    ocr_max_pixels: int = _env("OCR_MAX_PIXELS", default=40_000_000, parse=_int, minimum=1)  # larger: not read
    ocr_timeout_s: float = _env("OCR_TIMEOUT_S", default=20.0, parse=_float, minimum=1.0)  # per picture
    ocr_workers: int = _env("OCR_WORKERS", factory=_default_workers, parse=_int, minimum=1)  # pictures read at once
    # C2PA content credentials on generated images (rag/media/credentials.py). Without a certificate and key (PEM:
    # the signer's certificate first, then its CA chain) the app makes a local one in $BANANA_DATA_DIR/credentials.
    credentials: bool = _env("CREDENTIALS", default=True, parse=_switch)
    credentials_cert: Path | None = _env("CREDENTIALS_CERT", parse=_path)
    credentials_key: Path | None = _env("CREDENTIALS_KEY", parse=_path)
    credentials_alg: str = _env("CREDENTIALS_ALG", default="auto", parse=_lower)  # auto: from the key's type
    credentials_include_prompt: bool = _env("CREDENTIALS_INCLUDE_PROMPT", default=True, parse=_switch)
    # The address people outside use to reach this app (a --share link, a proxy); empty: http://BANANA_HOST:BANANA_PORT.
    public_url: str = _env("BANANA_PUBLIC_URL", default="")
    review_max_days: int = _env("REVIEW_MAX_DAYS", default=30, parse=_int, minimum=1)  # the longest a review link lives

    def __post_init__(self) -> None:
        derived = {
            "milvus_uri": str(self.data_dir / "milvus.db"),
            "library_dir": self.data_dir / "library",
            "outputs_dir": self.data_dir / "outputs",
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); unset or blank variables keep the default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = next((k for k in f.metadata["env"] if env.get(k, "").strip()), None)
            if key is None:
                continue
            value = f.metadata["parse"](key, env[key])
            minimum = f.metadata["minimum"]
            values[f.name] = value if minimum is None else max(minimum, value)
        return cls(**values)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def is_server(self) -> bool:
        """True when ``milvus_uri`` names a Milvus server rather than a Milvus Lite file."""
        return self.milvus_uri.startswith(("http://", "https://", "tcp://", "grpc://"))

    @property
    def thumbs_dir(self) -> Path:
        """Cached gallery previews."""
        return self.data_dir / "thumbs"

    @property
    def trash_dir(self) -> Path:
        """Where deleted files the app owns go, so a delete can be undone by hand."""
        return self.data_dir / "trash"

    @property
    def backups_dir(self) -> Path:
        """Scheduled exports of the library index (see rag/store/backup.py)."""
        return self.data_dir / "backups"

    @property
    def served_dirs(self) -> list[Path]:
        """The only folders the web app may serve files from."""
        return [Path(self.library_dir), Path(self.outputs_dir), self.thumbs_dir]

"""CLIP embeddings (open_clip), behind a small protocol so another model can plug in."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from rag.clip.precision import choose, probe_images, resolve
from rag.clip.runtime import Numerics
from rag.clip.text import PROBES, ClipText
from rag.clip.visual import ClipVisual
from rag.core import ImageError, ModelLoadError, Settings, chunked, os_error_text, prefetch_map
from rag.media import Header, decode, jpeg_header

log = logging.getLogger(__name__)

ImageInput = str | Path | bytes | Image.Image
TEXT_CACHE_SIZE = 256
LOAD_RETRY_S = 60.0
CUDA_MIN_BATCH = 256  # a GPU needs big batches to stay busy (fp16: 256 at a time); a CPU gains nothing past 32
JPEG_THREADS = 48  # decode threads on a GPU that decodes JPEGs: most wait for their batch (rag/clip/jpeg.py)


@runtime_checkable
class Embedder(Protocol):
    """What the rest of the app needs from an embedding model."""

    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def device(self) -> str: ...  # where the model runs ("cpu", "cuda")

    @property
    def batch_size(self) -> int:
        """How many prepared images :meth:`encode_prepared` should get at once."""

    def batch_for(self, requested: int) -> int:
        """The batch to use when a caller's settings ask for ``requested`` (a device may need more)."""

    def workers_for(self, requested: int) -> int:
        """The decode threads to use when a caller's settings ask for ``requested`` (a GPU wants more)."""

    @property
    def precision(self) -> str:
        """The precision vectors are computed in (fp32, bf16, fp16)."""

    def prepare(self, image: Image.Image) -> Any:
        """CPU-side preprocessing of a decoded RGB image (thread-safe)."""

    def prepare_file(self, data: bytes) -> tuple[Header, Any]:
        """A file's facts and prepared pixels (thread-safe); raises ImageError as ``rag.media.decode`` does."""

    def encode_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        """Embed a batch of prepared images: (n, dim) float32, L2-normalised."""

    def embed_images(self, images: Iterable[ImageInput]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def warm_up(self) -> None:
        """Load weights ahead of the first request; must not raise."""


def find_local_weights(models_dir: Path, configured: str = "") -> Path | None:
    """A real weights file: ``configured`` if it names one, else the first one under ``models_dir``."""
    if configured and Path(configured).is_file():
        return Path(configured)
    if Path(models_dir).is_dir():
        for pattern in ("*ViT-B-32*", "*.safetensors", "*.bin", "*.pt"):
            found = sorted(Path(models_dir).rglob(pattern))
            files = [f for f in found if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".pth")]
            if files:
                return files[0]
    return None


def _looks_like_path(value: str) -> bool:
    return value.endswith((".pt", ".pth", ".bin", ".safetensors")) or "/" in value or value.startswith(".")


def _packaged_config(model: str) -> dict | None:
    """An architecture's config from the JSON files open_clip ships, read without importing
    open_clip: the import costs seconds (torch, timm), and ``stats`` or ``backup`` need only the width."""
    import importlib.util
    import json

    if "/" in model or ":" in model:  # hf-hub:, local-dir: or a path: not a packaged name
        return None
    spec = importlib.util.find_spec("open_clip")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model_configs" / f"{model}.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


class ClipEmbedder:
    """open_clip model loaded lazily, once, behind a lock; decoding runs in a thread pool.

    The model's two halves (:attr:`visual`, :attr:`text`) do the work; this class adds what the
    app needs around them: the lazy load, the memory of a failed one, the text cache, batching.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._halves: tuple[ClipVisual, ClipText] | None = None
        self._dim: int | None = None
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()
        self._failed: tuple[float, ModelLoadError] | None = None

    @property
    def name(self) -> str:
        pretrained = self.settings.clip_pretrained
        tag = Path(pretrained).name if _looks_like_path(pretrained) else pretrained
        return f"{self.settings.clip_model}/{tag}"

    @property
    def dim(self) -> int:
        """Known from the architecture, so the store can open without loading weights."""
        if self._dim is None:
            config = _packaged_config(self.settings.clip_model)
            if config is None:  # hf-hub:, local-dir: or a registered config: ask open_clip itself
                import open_clip

                config = open_clip.get_model_config(self.settings.clip_model)
            if not config:
                raise ModelLoadError(f"CLIP_MODEL={self.settings.clip_model!r} is not an open_clip model name.")
            self._dim = int(config["embed_dim"])
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._halves is not None

    @property
    def device(self) -> str:
        """CLIP_DEVICE, with ``auto`` resolved (cuda when torch sees a GPU)."""
        device = self.settings.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return device

    @property
    def batch_size(self) -> int:
        """EMBED_BATCH_SIZE, raised to at least 128 on a GPU."""
        return self.batch_for(self.settings.batch_size)

    def batch_for(self, requested: int) -> int:
        return max(requested, CUDA_MIN_BATCH) if self.device.startswith("cuda") else requested

    @property
    def workers(self) -> int:
        """EMBED_WORKERS, raised to one decode thread per core on a GPU."""
        return self.workers_for(self.settings.workers)

    def workers_for(self, requested: int) -> int:
        # On a GPU the CPU only decodes, and the GPU embeds faster than 4 threads decode (~4-6 ms a picture);
        # when it decodes the JPEGs too, most threads wait for their batch, and more waiting make bigger batches.
        cuda = self.device.startswith("cuda")
        return max(requested, os.cpu_count() or 1, JPEG_THREADS if self.jpeg_on_device else 0) if cuda else requested

    @property
    def jpeg_on_device(self) -> bool:
        """Whether JPEGs are decoded in batches on the model's device (JPEG_DECODER; auto: on a GPU)."""
        choice = self.settings.jpeg_decoder
        return choice == "torchvision" or (choice == "auto" and self.device.startswith("cuda"))

    @property
    def precision(self) -> str:
        """What the model runs in once loaded; before that, what CLIP_PRECISION will try (no load)."""
        if self._halves is not None:
            return self._halves[0].numerics.precision
        return resolve(self.settings.precision, self.device)

    @property
    def visual(self) -> ClipVisual:
        """The image half (preprocessing, image tower); loads the model on first use."""
        return self._loaded()[0]

    @property
    def text(self) -> ClipText:
        """The text half (tokenizer, text tower and its speed-ups); loads the model on first use."""
        return self._loaded()[1]

    def _loaded(self) -> tuple[ClipVisual, ClipText]:
        if self._halves is not None:
            return self._halves
        with self._lock:
            if self._halves is not None:
                return self._halves
            if self._failed and time.monotonic() - self._failed[0] < LOAD_RETRY_S:
                raise self._failed[1]  # a download that just failed will fail again; answer at once
            try:
                self._halves = self._load()
            except ModelLoadError as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None
            return self._halves

    def warm_up(self) -> None:
        """Load the model now (in a background thread at app start) so the first search is quick."""
        try:
            self._loaded()
        except ModelLoadError as exc:
            log.error("%s", exc)

    def _weights(self) -> str | None:
        pretrained = self.settings.clip_pretrained.strip()
        if pretrained.lower() == "none":
            log.warning(
                "CLIP_PRETRAINED=none: building %s WITHOUT trained weights. Search results are "
                "meaningless; this setting exists for tests only.",
                self.settings.clip_model,
            )
            return None
        if _looks_like_path(pretrained) and not Path(pretrained).is_file():
            raise ModelLoadError(
                f"CLIP_PRETRAINED points to {pretrained!r}, which is not a file. Give the path of a local "
                f"{self.settings.clip_model} weights file or an open_clip tag such as 'laion2b_s34b_b79k'."
            )
        return pretrained

    def _load(self) -> tuple[ClipVisual, ClipText]:
        import open_clip
        import torch

        model_name, device = self.settings.clip_model, self.device
        weights = self._weights()
        if weights is None:
            torch.manual_seed(0)  # the same random model in every process, so stored vectors match queries
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=weights, device=device)
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:  # noqa: BLE001 - download, file and architecture errors all land here
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(
                f"Could not load CLIP weights for {model_name} with CLIP_PRETRAINED="
                f"{self.settings.clip_pretrained!r}: {first_line}. Without network access, set "
                "CLIP_PRETRAINED to the path of a local weights file."
            ) from exc
        model.eval()
        fp32 = Numerics("fp32", device)
        visual, text = ClipVisual(model, preprocess, fp32), ClipText(model, tokenizer, fp32)
        numerics = self._choose_precision(model, visual, text)
        log.info("loaded CLIP %s on %s in %s", self.name, device, numerics.precision)
        return visual, text

    def _choose_precision(self, model: Any, visual: ClipVisual, text: ClipText) -> Numerics:
        """Check the uint8 preprocessing, then pick the precision on probe images and texts (clip_precision)."""
        s = self.settings
        images = probe_images(s.background, s.max_image_pixels)
        visual.check(images)
        prepared = [visual.prepare(im) for im in images]

        def probe(numerics: Numerics) -> list[np.ndarray]:
            visual.use(numerics)
            text.use(numerics)
            return [visual.encode(prepared), text.encode(PROBES)]

        numerics = choose(model, s.precision, self.device, probe)
        visual.use(numerics)
        text.use(numerics)
        return numerics

    def prepare(self, image: Image.Image) -> Any:
        return self.visual.prepare(image)

    def prepare_file(self, data: bytes) -> tuple[Header, Any]:
        """An image file's facts and its prepared pixels: a JPEG decoded with others on the model's device when
        :attr:`jpeg_on_device` (rag/clip/jpeg.py), anything else (or a JPEG the device refused) by Pillow here."""
        s = self.settings
        decoder = self.visual.jpeg_decoder() if self.jpeg_on_device else None
        header = jpeg_header(data, s.max_image_pixels) if decoder is not None else None
        if decoder is not None and header is not None:
            try:
                return header, decoder.decode(data, header.orientation)
            except Exception as exc:  # noqa: BLE001 - Pillow decodes it, or says in a sentence why not
                log.debug("a JPEG the device would not decode goes to Pillow: %s", exc)
        decoded = decode(data, background=s.background, max_pixels=s.max_image_pixels)
        return Header(decoded.width, decoded.height, decoded.format, decoded.text), self.prepare(decoded.image)

    def encode_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        visual = self.visual
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        return visual.encode(batch)

    def embed_images(self, images: Iterable[ImageInput]) -> np.ndarray:
        """Embed images in batches; raises :class:`ImageError` naming the first unreadable one."""
        self._loaded()
        s = self.settings

        def load(item: ImageInput) -> Any:
            label = Path(item).name if isinstance(item, (str, Path)) else "the image"
            try:
                if isinstance(item, Image.Image) or not self.jpeg_on_device:
                    return self.prepare(decode(item, background=s.background, max_pixels=s.max_image_pixels).image)
                return self.prepare_file(item if isinstance(item, bytes) else Path(item).read_bytes())[1]
            except ImageError as exc:
                raise ImageError(f"{label}: {exc}") from None
            except OSError as exc:
                raise ImageError(f"{label}: the file cannot be read ({os_error_text(exc)})") from None

        prepared = prefetch_map(load, images, workers=self.workers, window=self.batch_size * 2)
        out = [self.encode_prepared(batch) for batch in chunked(prepared, self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; recent queries come from a small LRU cache (a search box repeats them)."""
        text = self.text
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        with self._text_lock:
            found = {t: self._text_cache[t] for t in unique if t in self._text_cache}
            for t in found:
                self._text_cache.move_to_end(t)
        missing = [t for t in unique if t not in found]
        if missing:
            found.update(zip(missing, text.encode(missing)))
            with self._text_lock:
                for t in missing:
                    self._text_cache[t] = found[t]
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

"""CLIP embeddings (open_clip), behind a small protocol so another model can plug in."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from .config import Settings
from .errors import ImageError, ModelLoadError
from .images import decode
from .pipeline import chunked, prefetch_map

log = logging.getLogger(__name__)

ImageInput = str | Path | bytes | Image.Image
TEXT_CACHE_SIZE = 256
LOAD_RETRY_S = 60.0


@runtime_checkable
class Embedder(Protocol):
    """What the rest of the app needs from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def prepare(self, image: Image.Image) -> Any:
        """CPU-side preprocessing of a decoded RGB image (thread-safe)."""

    def encode_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        """Embed a batch of prepared images: (n, dim) float32, L2-normalised."""

    def embed_images(self, images: Iterable[ImageInput]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def warm_up(self) -> None:
        """Load weights ahead of the first request; must not raise."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


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


class ClipEmbedder:
    """open_clip model loaded lazily, once, behind a lock; decoding runs in a thread pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._model: Any = None
        self._preprocess: Callable[[Image.Image], Any] | None = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._dim: int | None = None
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()
        self._truncate_text = False  # set at load when the text tower is causal and the shortcut checks out
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
            import open_clip

            config = open_clip.get_model_config(self.settings.clip_model)
            if not config:
                raise ModelLoadError(f"CLIP_MODEL={self.settings.clip_model!r} is not an open_clip model name.")
            self._dim = int(config["embed_dim"])
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self._failed and time.monotonic() - self._failed[0] < LOAD_RETRY_S:
                raise self._failed[1]  # a download that just failed will fail again; answer at once
            try:
                self._load()
            except ModelLoadError as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None

    def warm_up(self) -> None:
        """Load the model now (in a background thread at app start) so the first search is quick."""
        try:
            self._ensure_loaded()
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

    def _load(self) -> None:
        import open_clip
        import torch

        model_name = self.settings.clip_model
        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
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
        self._tokenizer, self._preprocess, self._device = tokenizer, preprocess, device
        self._truncate_text = self._check_text_truncation(model)
        if self.settings.text_precision == "bf16" and device == "cpu":
            self._text_to_bf16(model)
        self._model = model
        log.info("loaded CLIP %s on %s", self.name, device)

    def _autocast(self) -> Any:
        import torch

        if self._device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    def prepare(self, image: Image.Image) -> Any:
        self._ensure_loaded()
        assert self._preprocess is not None
        return self._preprocess(image)

    def encode_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        import torch

        self._ensure_loaded()
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode(), self._autocast():
            pixels = torch.stack(list(batch)).to(self._device, non_blocking=True)
            features = self._model.encode_image(pixels)
        return _normalise(features.float().cpu().numpy())

    def embed_images(self, images: Iterable[ImageInput]) -> np.ndarray:
        """Embed images in batches; raises :class:`ImageError` naming the first unreadable one."""
        self._ensure_loaded()
        s = self.settings

        def load(item: ImageInput) -> Any:
            try:
                return self.prepare(decode(item, background=s.background, max_pixels=s.max_image_pixels).image)
            except ImageError as exc:
                label = Path(item).name if isinstance(item, (str, Path)) else "the image"
                raise ImageError(f"{label}: {exc}") from None

        prepared = prefetch_map(load, images, workers=s.workers, window=s.batch_size * 2)
        out = [self.encode_prepared(batch) for batch in chunked(prepared, s.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; recent queries come from a small LRU cache (a search box repeats them)."""
        self._ensure_loaded()
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
            found.update(zip(missing, self._encode_texts(missing)))
            with self._text_lock:
                for t in missing:
                    self._text_cache[t] = found[t]
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._truncate_text:
            return self._encode_texts_truncated(texts)
        with torch.inference_mode(), self._autocast():
            tokens = self._tokenizer(texts).to(self._device)
            return _normalise(self._model.encode_text(tokens).float().cpu().numpy())

    def _encode_texts_truncated(self, texts: list[str], model: Any = None) -> np.ndarray:
        """``encode_text`` without the padding columns: the same vectors for a fraction of the work.

        CLIP's text tower is causal and pools at the end-of-text token, so nothing after that
        token can change the result. A search query is 5-15 tokens of the 77-token context, and
        the padding was ~85 % of the text tower's cost.
        """
        import torch
        from open_clip.transformer import text_global_pool

        m = model if model is not None else self._model
        tokens = self._tokenizer(texts)
        used = torch.nonzero((tokens != 0).any(dim=0))
        length = int(used.max()) + 1 if len(used) else 1
        with torch.inference_mode(), self._autocast():
            tokens = tokens[:, :length].to(self._device)
            cast_dtype = m.transformer.get_cast_dtype()
            x = m.token_embedding(tokens).to(cast_dtype) + m.positional_embedding[:length].to(cast_dtype)
            x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
            x = m.ln_final(x)
            x = text_global_pool(x, tokens, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
            if m.text_projection is not None:
                x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
            return _normalise(x.float().cpu().numpy())

    def _text_to_bf16(self, model: Any, limit: float = 1e-3) -> bool:
        """Store the text tower in bfloat16 (CLIP_TEXT_PRECISION=bf16): half the bytes read per query.

        Kept only if probe embeddings move less than ``limit`` in cosine; otherwise fp32 is restored.
        """
        import torch

        probes = ["a photo of a banana", "x", "a red bicycle leaning on a wall, watercolor", "logo, flat icon"]
        text_parts = [(n, c) for n, c in model.named_children() if n != "visual"]
        text_params = [n for n in ("positional_embedding", "text_projection") if isinstance(getattr(model, n, None), torch.nn.Parameter)]
        saved = {n: c.state_dict() for n, c in text_parts}
        saved_params = {n: getattr(model, n).data for n in text_params}
        saved_mask = getattr(model, "attn_mask", None)
        encode = self._encode_texts_truncated if self._truncate_text else None
        try:
            before = encode(probes, model) if encode else self._encode_full(probes, model)
            for _, child in text_parts:
                child.to(torch.bfloat16)
            for n in text_params:
                getattr(model, n).data = saved_params[n].to(torch.bfloat16)
            if isinstance(saved_mask, torch.Tensor):
                model.attn_mask = saved_mask.to(torch.bfloat16)
            after = encode(probes, model) if encode else self._encode_full(probes, model)
            deviation = float(np.max(1.0 - np.sum(before * after, axis=1)))
            if deviation < limit:
                log.info("text tower in bfloat16 (probe deviation %.1e in cosine)", deviation)
                return True
            log.warning("CLIP_TEXT_PRECISION=bf16 moved a probe embedding by %.1e in cosine: keeping fp32", deviation)
        except Exception as exc:  # noqa: BLE001 - an architecture this does not handle: keep fp32
            log.warning("CLIP_TEXT_PRECISION=bf16 is not usable with this model (%s): keeping fp32", exc)
        for n, child in text_parts:
            child.to(torch.float32)
            child.load_state_dict(saved[n])
        for n in text_params:
            getattr(model, n).data = saved_params[n]
        if isinstance(saved_mask, torch.Tensor):
            model.attn_mask = saved_mask
        return False

    def _encode_full(self, texts: list[str], model: Any) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            return _normalise(model.encode_text(self._tokenizer(texts).to(self._device)).float().cpu().numpy())

    def _check_text_truncation(self, model: Any) -> bool:
        """Use the padding-free text path only for a causal, end-token-pooled tower that matches the full one."""
        import torch

        try:
            mask = getattr(model, "attn_mask", None)
            if getattr(model, "text_pool_type", None) not in ("argmax", "eos") or not isinstance(mask, torch.Tensor):
                return False
            upper = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
            if mask.dim() != 2 or not bool(torch.isinf(mask[upper]).all()) or bool(torch.isinf(mask[~upper]).any()):
                return False  # not a plain causal mask
            probes = ["a photo of a banana", "x", "a red bicycle leaning on a wall, watercolor"]
            with torch.inference_mode(), self._autocast():
                full = _normalise(model.encode_text(self._tokenizer(probes).to(self._device)).float().cpu().numpy())
            short = self._encode_texts_truncated(probes, model)
            deviation = float(np.max(1.0 - np.sum(full * short, axis=1)))
        except Exception as exc:  # noqa: BLE001 - an unexpected architecture: keep the plain path
            log.info("text truncation disabled (%s: %s)", type(exc).__name__, exc)
            return False
        if deviation > 1e-5:
            log.warning("text truncation disabled: it moved a probe embedding by %.2g in cosine", deviation)
            return False
        return True

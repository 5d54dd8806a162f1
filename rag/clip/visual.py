"""CLIP's image half: open_clip's own preprocessing and the image tower of a loaded model.

open_clip's transform ends ``ToTensor`` + ``Normalize``: per image, a float copy of 150k values
and two passes over it, ~40 % of the CPU time of preparing a picture. Here the steps before
``ToTensor`` (resize, crop, mode) run per image on the decode threads exactly as open_clip runs
them, the picture is kept as uint8 (a quarter of the memory while it waits for its batch), and
the float conversion and normalisation run once per batch, on the model's device, with the same
arithmetic. :meth:`ClipVisual.check` compares the two on probe images at load and falls back to
open_clip's transform whole if they differ at all (a model with another transform). On a GPU, JPEGs
arrive already decoded, resized and cropped there (rag/clip/jpeg.py); a batch mixes them with
pictures prepared on the CPU, which travel as one pinned, asynchronous copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from rag.clip.jpeg import BatchDecoder, tensor_steps
from rag.clip.runtime import ClipHalf, Numerics, inference, unit_rows

log = logging.getLogger(__name__)

TO_TENSOR = ("ToTensor", "MaybeToTensor")


def split_transform(preprocess: Any) -> tuple[list[Callable], Any] | None:
    """open_clip's Compose as (PIL steps, Normalize), or None if it does not end ToTensor, Normalize."""
    from torchvision import transforms

    steps = list(getattr(preprocess, "transforms", []))
    if len(steps) < 2 or type(steps[-2]).__name__ not in TO_TENSOR or not isinstance(steps[-1], transforms.Normalize):
        return None
    return steps[:-2], steps[-1]


class ClipVisual(ClipHalf):
    """Preprocessing (CPU, thread-safe) is apart from encoding so decode workers can run it in parallel."""

    def __init__(self, model: Any, preprocess: Callable[[Image.Image], Any], numerics: Numerics) -> None:
        super().__init__(model, numerics)
        self._preprocess = preprocess
        self._split = split_transform(preprocess)
        self._jpeg: BatchDecoder | None = None
        self._jpeg_lock = threading.Lock()

    @property
    def uint8_batches(self) -> bool:
        """Whether :meth:`prepare` hands over uint8 pictures that :meth:`encode` normalises per batch."""
        return self._split is not None

    def jpeg_decoder(self) -> BatchDecoder | None:
        """The decoder of JPEGs in batches on the model's device, with open_clip's own resize and crop (made
        on first use); None when the uint8 path is off or the transform has a step tensors do not take."""
        with self._jpeg_lock:
            if self._jpeg is None and self._split is not None and (steps := tensor_steps(self._split[0])) is not None:
                self._jpeg = BatchDecoder(self.numerics.device, steps)
            return self._jpeg

    def preprocess(self, image: Image.Image) -> Any:
        """open_clip's transform (resize, centre crop, normalise) of a decoded RGB image: a float CHW tensor."""
        return self._preprocess(image)

    def prepare(self, image: Image.Image) -> Any:
        """What :meth:`encode` takes: open_clip's steps up to ``ToTensor``, as a uint8 CHW tensor."""
        if self._split is None:
            return self._preprocess(image)
        from torchvision.transforms.functional import pil_to_tensor

        for step in self._split[0]:
            image = step(image)
        if image.mode != "RGB":  # ToTensor would keep other modes' values as they are: let it
            return self._preprocess_tail(image)
        return pil_to_tensor(image)

    def _preprocess_tail(self, image: Image.Image) -> Any:
        assert self._split is not None
        from torchvision.transforms.functional import to_tensor

        return self._split[1](to_tensor(image))

    def pixels(self, batch: Sequence[Any]) -> Any:
        """Prepared pictures as one model input on the model's device, in the model's dtype."""
        import torch

        numerics = self.numerics
        if self._split is None or any(x.dtype != torch.uint8 for x in batch):
            floats = [self._normalise(x.unsqueeze(0))[0] if x.dtype == torch.uint8 else x for x in batch]
            return torch.stack([x.to(numerics.device) for x in floats]).to(dtype=numerics.dtype)
        return self._normalise(self._on_device(batch)).to(numerics.dtype)

    def _on_device(self, batch: Sequence[Any]) -> Any:
        """uint8 pictures as one (n, 3, h, w) tensor on the model's device: those prepared on the CPU in one
        pinned, asynchronous copy (a quarter the bytes of floats), those decoded there as they are."""
        import torch

        device = torch.device(self.numerics.device)
        away = [i for i, x in enumerate(batch) if x.device.type != device.type]
        if self.numerics.cuda:  # decoded on the JPEG decoder's stream: its memory is not reused while this one reads it
            for x in batch:
                if x.device.type == device.type:
                    x.record_stream(torch.cuda.current_stream())
        if not away:
            return torch.stack(list(batch))
        moved = torch.stack([batch[i] for i in away])
        moved = (moved.pin_memory() if self.numerics.cuda else moved).to(device, non_blocking=True)
        if len(away) == len(batch):
            return moved
        out = torch.empty((len(batch), *moved.shape[1:]), dtype=torch.uint8, device=device)
        here = [i for i, x in enumerate(batch) if x.device.type == device.type]
        out[away], out[here] = moved, torch.stack([batch[i] for i in here])
        return out

    def _normalise(self, uint8: Any) -> Any:
        """``ToTensor`` then ``Normalize``, on a (n, 3, h, w) uint8 batch: the same float operations."""
        import torch

        assert self._split is not None
        return self._split[1](uint8.to(dtype=torch.get_default_dtype()).div(255))

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        """Embed one or more prepared images: (n, dim) float32, L2-normalised."""
        with inference(self.numerics):
            return unit_rows(self._model.encode_image(self.pixels(batch)))

    def check(self, images: Sequence[Image.Image]) -> bool:
        """Keep the uint8 path only if it gives open_clip's own input, bit for bit, on ``images``."""
        import torch

        if self._split is None:
            return False
        try:
            ours = [self._normalise(self.prepare(im).unsqueeze(0))[0] for im in images]
            same = all(torch.equal(a, self._preprocess(im)) for a, im in zip(ours, images))
        except Exception as exc:  # noqa: BLE001 - an unexpected transform: use it whole
            log.info("batched normalisation disabled (%s: %s)", type(exc).__name__, exc)
            same = False
        if not same:
            log.warning("batched normalisation disabled: it differs from open_clip's transform on a probe image")
            self._split = None
        return same

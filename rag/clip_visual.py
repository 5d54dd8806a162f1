"""CLIP's image half: open_clip's own preprocessing and the image tower of a loaded model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .clip_torch import ClipHalf, inference, unit_rows


class ClipVisual(ClipHalf):
    """Preprocessing (CPU, thread-safe) is apart from encoding so decode workers can run it in parallel."""

    def __init__(self, model: Any, preprocess: Callable[[Image.Image], Any], device: str = "cpu") -> None:
        super().__init__(model, device)
        self._preprocess = preprocess

    def preprocess(self, image: Image.Image) -> Any:
        """open_clip's transform (resize, centre crop, normalise) of a decoded RGB image: a CHW tensor."""
        return self._preprocess(image)

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        """Embed one or more preprocessed images: (n, dim) float32, L2-normalised."""
        import torch

        with inference(self._device):
            pixels = torch.stack(list(batch)).to(self._device, non_blocking=True)
            return unit_rows(self._model.encode_image(pixels))

"""What the two CLIP halves share: the model they both use, how torch runs it, unit-length output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32): the store compares vectors by cosine."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def unit_rows(features: Any) -> np.ndarray:
    """A torch output (any dtype, any device) as normalised float32 numpy rows."""
    return normalise(features.float().cpu().numpy())


@contextmanager
def inference(device: str) -> Iterator[None]:
    """No autograd bookkeeping; fp16 autocast on a GPU, where it halves the work at no visible cost."""
    import torch

    autocast = torch.autocast("cuda", dtype=torch.float16) if device.startswith("cuda") else nullcontext()
    with torch.inference_mode(), autocast:
        yield


class ClipHalf:
    """One half of a loaded open_clip model; both halves hold the same model object."""

    def __init__(self, model: Any, device: str = "cpu") -> None:
        self._model = model
        self._device = device

    @property
    def model(self) -> Any:
        """The open_clip model itself, for benchmarks and checks that compare against the bare model."""
        return self._model

    @property
    def device(self) -> str:
        return self._device

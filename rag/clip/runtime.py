"""What the two CLIP halves share: the model they both use, how torch runs it, unit-length output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Numerics:
    """Where and in which precision the model runs; one value shared by both halves of a model.

    * ``fp32``: plain float32.
    * ``bf16``: the weights themselves are bfloat16 and inputs are cast to match. On CPUs with
      AMX or AVX512-BF16 this is ~5x faster than fp32, where ``torch.autocast`` is slower than
      fp32 (it re-casts every weight on every call).
    * ``fp16``: fp32 weights under ``torch.autocast`` on CUDA, the usual way to run on a GPU.
    """

    precision: str = "fp32"
    device: str = "cpu"

    @property
    def dtype(self) -> Any:
        """The dtype of the weights, and so of what goes into the model."""
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


@contextmanager
def inference(numerics: Numerics) -> Iterator[None]:
    """No autograd bookkeeping; fp16 autocast when asked for on a GPU."""
    import torch

    fp16 = numerics.precision == "fp16" and numerics.cuda
    autocast = torch.autocast("cuda", dtype=torch.float16) if fp16 else nullcontext()
    with torch.inference_mode(), autocast:
        yield


class ClipHalf:
    """One half of a loaded open_clip model; both halves hold the same model object."""

    def __init__(self, model: Any, numerics: Numerics) -> None:
        self._model = model
        self._numerics = numerics

    @property
    def model(self) -> Any:
        """The open_clip model itself, for benchmarks and checks that compare against the bare model."""
        return self._model

    @property
    def device(self) -> str:
        return self._numerics.device

    @property
    def numerics(self) -> Numerics:
        """How the model runs now (set by :meth:`use` once the load-time checks have chosen)."""
        return self._numerics

    def use(self, numerics: Numerics) -> None:
        """Run from now on with ``numerics``; the caller has cast the weights to match."""
        self._numerics = numerics

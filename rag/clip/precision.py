"""Which precision the CLIP model runs in: chosen by the machine, kept only when the numbers agree.

``CLIP_PRECISION=auto`` picks bf16 weights on CPUs whose matrix units take bfloat16 (AMX or
AVX512-BF16: ~5x the fp32 image throughput there), fp16 autocast on CUDA, and fp32 elsewhere.
Whatever is picked (or forced) is tried at load on fixed probe images and texts against fp32,
and undone, bit for bit, if any embedding moves to a cosine under :data:`MIN_COSINE`. Vectors
from two precisions that pass this check rank a library the same (tests/test_precision.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.clip.runtime import Numerics
from rag.core import SAMPLE_DIR

log = logging.getLogger(__name__)

MIN_COSINE = 0.999
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
Probe = Callable[[Numerics], list[np.ndarray]]


def cpu_has_bf16() -> bool:
    """True when oneDNN can run bfloat16 matrix products in hardware (AMX or AVX512-BF16).

    torch answers through private helpers (``torch.cpu._is_amx_tile_supported``); when a torch
    build lacks them, the kernel's CPU flags say the same.
    """
    import torch

    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, name, None)
        if check is not None:
            try:
                if check():
                    return True
            except Exception:  # noqa: BLE001 - a private helper: treat failure as "no"
                continue
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve(requested: str, device: str) -> str:
    """The precision to try for ``requested`` (auto/fp32/bf16/fp16) on ``device``."""
    cuda = device.startswith("cuda")
    if requested == "auto":
        return "fp16" if cuda else ("bf16" if cpu_has_bf16() else "fp32")
    if requested == "fp16" and not cuda:
        log.warning("CLIP_PRECISION=fp16 needs a CUDA device; running in fp32 on %s", device)
        return "fp32"
    return requested if requested in ("fp32", "bf16", "fp16") else "fp32"


class Fp32Weights:
    """The model's float32 tensors, kept aside so a cast can be undone exactly.

    ``Module.to(dtype)`` swaps each parameter's ``.data`` and each buffer in place, so holding the
    old tensors is enough; nothing is copied until the cast makes the new ones.
    """

    def __init__(self, model: Any) -> None:
        self.params = [(p, p.data) for p in model.parameters()]
        self.buffers = [(m, name, b) for m in model.modules() for name, b in m.named_buffers(recurse=False)]

    def restore(self) -> None:
        for param, data in self.params:
            param.data = data
        for module, name, buffer in self.buffers:
            setattr(module, name, buffer)


def cast_weights(model: Any, precision: str) -> None:
    """Give the weights the dtype ``precision`` runs with (bf16 only; fp16 autocasts fp32 weights)."""
    import torch

    if precision == "bf16":
        model.to(torch.bfloat16)


def min_cosine(reference: list[np.ndarray], candidate: list[np.ndarray]) -> float:
    """The smallest cosine between matching rows of matching normalised matrices."""
    return float(min(np.min(np.sum(a * b, axis=1)) for a, b in zip(reference, candidate)))


def choose(model: Any, requested: str, device: str, probe: Probe) -> Numerics:
    """Resolve ``requested``, cast the model, and keep the cast only if the probe agrees with fp32.

    ``probe(numerics)`` embeds the fixed probe images and texts with the halves set to
    ``numerics``. The fp32 reference is computed first, with the weights as loaded.
    """
    fp32 = Numerics("fp32", device)
    target = resolve(requested, device)
    if target == "fp32":
        return fp32
    reference = probe(fp32)
    saved = Fp32Weights(model)
    try:
        cast_weights(model, target)
        worst = min_cosine(reference, probe(Numerics(target, device)))
    except Exception as exc:  # noqa: BLE001 - an architecture the cast does not suit: keep fp32
        log.warning("CLIP in %s is not usable with this model (%s: %s); running in fp32", target, type(exc).__name__, exc)
        saved.restore()
        return fp32
    if worst < MIN_COSINE:
        log.warning("CLIP in %s moved a probe embedding to cosine %.5f of fp32 (< %s); running in fp32",
                    target, worst, MIN_COSINE)
        saved.restore()
        return fp32
    log.info("CLIP runs in %s on %s (probe cosine to fp32 >= %.5f)", target, device, worst)
    return Numerics(target, device)


# Transparent, palette, opaque small, opaque large: the kinds of picture a library holds.
PROBE_FILES = (
    "animals/beagle_copper_ganson.png",
    "geography/moon-half.png",
    "food/menu_example4.png",
    "office/picture_frame_jakob_chao_.png",
)


def probe_images(background: tuple[int, int, int], max_pixels: int) -> list[Any]:
    """Fixed probe pictures, decoded as an ingest decodes them; drawn stand-ins where the samples are absent."""
    from PIL import Image

    from rag.media import decode

    found = [SAMPLE_DIR / name for name in PROBE_FILES if (SAMPLE_DIR / name).is_file()]
    if found:
        return [decode(p, background=background, max_pixels=max_pixels).image for p in found]
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    drawn = [np.stack([ramp[None, :].repeat(200, 0), ramp[:200, None].repeat(300, 1), np.full((200, 300), 90.0)], -1),
             rng.integers(0, 256, (240, 320, 3)), np.full((256, 256, 3), 200.0)]
    return [Image.fromarray(np.asarray(a, dtype=np.uint8), "RGB") for a in drawn]

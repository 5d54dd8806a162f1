"""CLIP's text half: the tokenizer and text tower of a loaded model, with two CPU speed-ups.

Both are checked against the plain ``model.encode_text`` on probe texts when the half is built,
and left off when the check fails, so a model they do not suit still gives the same vectors:

* padding-free (on when exact): CLIP's text tower is causal and pools at the end-of-text token,
  so the columns after the longest real token cannot change the result. A search query is 5-15
  tokens of the 77-token context, and the padding was ~85 % of the text tower's cost.
* bf16 tower (opt-in, CLIP_TEXT_PRECISION=bf16, CPU only): half the weight bytes read per query,
  kept only while probe embeddings move less than 1e-3 in cosine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .clip_torch import ClipHalf, inference, unit_rows

log = logging.getLogger(__name__)

PROBES = ("a photo of a banana", "x", "a red bicycle leaning on a wall, watercolor")
BF16_PROBES = (*PROBES, "logo, flat icon")
PADDING_FREE_LIMIT = 1e-5  # an exact rewrite: anything above this is a model it does not suit
BF16_LIMIT = 1e-3


def encode_padding_free(model: Any, tokens: Any, device: str = "cpu") -> np.ndarray:
    """``model.encode_text(tokens)``, normalised, computed only over the columns that hold real tokens.

    ``model`` may be another copy of the text tower (a benchmark's bf16 one); ``tokens`` are the
    tokenizer's output (CPU, padding id 0).
    """
    import torch
    from open_clip.transformer import text_global_pool

    used = torch.nonzero((tokens != 0).any(dim=0))
    length = int(used.max()) + 1 if len(used) else 1
    with inference(device):
        tokens = tokens[:, :length].to(device)
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = model.ln_final(x)
        x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
        projection = model.text_projection
        if projection is not None:
            x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
        return unit_rows(x)


def is_causal_and_end_pooled(model: Any) -> bool:
    """The shape of tower the padding-free path is exact for: a plain causal mask, pooled at the end token."""
    import torch

    mask = getattr(model, "attn_mask", None)
    if getattr(model, "text_pool_type", None) not in ("argmax", "eos") or not isinstance(mask, torch.Tensor):
        return False
    upper = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    return mask.dim() == 2 and bool(torch.isinf(mask[upper]).all()) and not bool(torch.isinf(mask[~upper]).any())


def max_cosine_gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``1 - cosine`` between matching rows of two normalised matrices."""
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


class ClipText(ClipHalf):
    """Text queries to vectors; the speed-ups are decided once, here, when the model is loaded."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(model, device)
        self._tokenizer = tokenizer
        self._padding_free = self._check_padding_free()
        self._bf16 = precision == "bf16" and device == "cpu" and self._try_bf16()

    @property
    def padding_free(self) -> bool:
        """Whether :meth:`encode` skips the padding columns (it passed the exactness check at load)."""
        return self._padding_free

    @property
    def bf16(self) -> bool:
        """Whether the text tower is held in bfloat16 (asked for, and within 1e-3 of fp32 at load)."""
        return self._bf16

    def tokenize(self, texts: Sequence[str]) -> Any:
        """open_clip's tokens: (n, context length) int64 on the CPU, padded with 0."""
        return self._tokenizer(list(texts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """What a search pays: (n, dim) float32, L2-normalised, by the fastest path that checked out."""
        if self._padding_free:
            return encode_padding_free(self._model, self.tokenize(texts), self._device)
        return self.encode_reference(texts)

    def encode_reference(self, texts: Sequence[str]) -> np.ndarray:
        """Plain ``model.encode_text(tokenizer(texts))``, normalised: the yardstick for checks and benchmarks."""
        with inference(self._device):
            return unit_rows(self._model.encode_text(self.tokenize(texts).to(self._device)))

    def _check_padding_free(self) -> bool:
        try:
            if not is_causal_and_end_pooled(self._model):
                return False
            full = self.encode_reference(PROBES)
            short = encode_padding_free(self._model, self.tokenize(PROBES), self._device)
            deviation = max_cosine_gap(full, short)
        except Exception as exc:  # noqa: BLE001 - an unexpected architecture: keep the plain path
            log.info("text truncation disabled (%s: %s)", type(exc).__name__, exc)
            return False
        if deviation > PADDING_FREE_LIMIT:
            log.warning("text truncation disabled: it moved a probe embedding by %.2g in cosine", deviation)
            return False
        return True

    def _try_bf16(self) -> bool:
        """Move the text tower to bfloat16 if the probes barely move; otherwise restore fp32 exactly."""
        import torch

        fp32 = _TextTowerCopy(self._model)
        try:
            before = self.encode(BF16_PROBES)
            fp32.cast(torch.bfloat16)
            deviation = max_cosine_gap(before, self.encode(BF16_PROBES))
            if deviation < BF16_LIMIT:
                log.info("text tower in bfloat16 (probe deviation %.1e in cosine)", deviation)
                return True
            log.warning("CLIP_TEXT_PRECISION=bf16 moved a probe embedding by %.1e in cosine: keeping fp32", deviation)
        except Exception as exc:  # noqa: BLE001 - an architecture this does not handle: keep fp32
            log.warning("CLIP_TEXT_PRECISION=bf16 is not usable with this model (%s): keeping fp32", exc)
        fp32.restore()
        return False


class _TextTowerCopy:
    """The text tower's fp32 tensors, kept aside so a bf16 trial can be undone bit for bit."""

    def __init__(self, model: Any) -> None:
        import torch

        self.model = model
        self.parts = [(n, c) for n, c in model.named_children() if n != "visual"]
        self.params = [
            n for n in ("positional_embedding", "text_projection") if isinstance(getattr(model, n, None), torch.nn.Parameter)
        ]
        self.states = {n: c.state_dict() for n, c in self.parts}
        self.data = {n: getattr(model, n).data for n in self.params}
        self.mask = getattr(model, "attn_mask", None)

    def cast(self, dtype: Any) -> None:
        import torch

        for _, child in self.parts:
            child.to(dtype)
        for n in self.params:
            getattr(self.model, n).data = self.data[n].to(dtype)
        if isinstance(self.mask, torch.Tensor):
            self.model.attn_mask = self.mask.to(dtype)

    def restore(self) -> None:
        import torch

        for n, child in self.parts:
            child.to(torch.float32)
            child.load_state_dict(self.states[n])
        for n in self.params:
            getattr(self.model, n).data = self.data[n]
        if isinstance(self.mask, torch.Tensor):
            self.model.attn_mask = self.mask

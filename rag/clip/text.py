"""CLIP's text half: the tokenizer and text tower of a loaded model, with a CPU speed-up.

Padding-free (on when exact): CLIP's text tower is causal and pools at the end-of-text token, so
the columns after the longest real token cannot change the result. A search query is 5-15
tokens of the 77-token context, and the padding was ~85 % of the text tower's cost. It is checked
against the plain ``model.encode_text`` on probe texts when the half is built, and left off when
the check fails, so a model it does not suit still gives the same vectors. The precision the
tower runs in (bf16 weights on CPUs with AMX) is decided for the whole model, in clip_precision.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.clip.runtime import ClipHalf, Numerics, inference, unit_rows

log = logging.getLogger(__name__)

PROBES = ("a photo of a banana", "x", "a red bicycle leaning on a wall, watercolor", "logo, flat icon")
PADDING_FREE_LIMIT = 1e-5  # an exact rewrite: anything above this is a model it does not suit


def encode_padding_free(model: Any, tokens: Any, numerics: Numerics = Numerics()) -> np.ndarray:
    """``model.encode_text(tokens)``, normalised, computed only over the columns that hold real tokens.

    ``model`` may be another copy of the text tower (a benchmark's bf16 one); ``tokens`` are the
    tokenizer's output (CPU, padding id 0).
    """
    import torch
    from open_clip.transformer import text_global_pool

    used = torch.nonzero((tokens != 0).any(dim=0))
    length = int(used.max()) + 1 if len(used) else 1
    with inference(numerics):
        tokens = tokens[:, :length].to(numerics.device)
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
    """Text queries to vectors; the padding-free path is decided once, here, when the model is loaded."""

    def __init__(self, model: Any, tokenizer: Any, numerics: Numerics) -> None:
        super().__init__(model, numerics)
        self._tokenizer = tokenizer
        self._padding_free = self._check_padding_free()

    @property
    def padding_free(self) -> bool:
        """Whether :meth:`encode` skips the padding columns (it passed the exactness check at load)."""
        return self._padding_free

    def tokenize(self, texts: Sequence[str]) -> Any:
        """open_clip's tokens: (n, context length) int64 on the CPU, padded with 0."""
        return self._tokenizer(list(texts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """What a search pays: (n, dim) float32, L2-normalised, by the fastest path that checked out."""
        if self._padding_free:
            return encode_padding_free(self._model, self.tokenize(texts), self.numerics)
        return self.encode_reference(texts)

    def encode_reference(self, texts: Sequence[str]) -> np.ndarray:
        """Plain ``model.encode_text(tokenizer(texts))``, normalised: the yardstick for checks and benchmarks."""
        with inference(self.numerics):
            return unit_rows(self._model.encode_text(self.tokenize(texts).to(self.device)))

    def _check_padding_free(self) -> bool:
        try:
            if not is_causal_and_end_pooled(self._model):
                return False
            full = self.encode_reference(PROBES)
            short = encode_padding_free(self._model, self.tokenize(PROBES), self.numerics)
            deviation = max_cosine_gap(full, short)
        except Exception as exc:  # noqa: BLE001 - an unexpected architecture: keep the plain path
            log.info("text truncation disabled (%s: %s)", type(exc).__name__, exc)
            return False
        if deviation > PADDING_FREE_LIMIT:
            log.warning("text truncation disabled: it moved a probe embedding by %.2g in cosine", deviation)
            return False
        return True

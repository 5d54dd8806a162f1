"""What the app knows about each image model: how many references it takes, what an image costs.

One record per known model, so adding a model is one line. Models are matched by name prefix,
so previews and dated versions (``gemini-3-pro-image-preview``) count as their family.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_IMAGES_PER_RUN = 4  # n is one API call per image; keep a click's cost bounded


@dataclass(frozen=True)
class ModelInfo:
    """One model family: its name prefix, reference-image cap and list price per output image (USD)."""

    prefix: str
    max_references: int
    usd_per_image: float


# Gemini 2.5 Flash Image works best with up to 3 input images; the Gemini 3 image models accept
# up to 14. Prices: gemini-2.5-flash-image makes 1290 output tokens per 1024-px image at $30 / 1M
# tokens ~= $0.039; gemini-3-pro-image ~$0.134 per 1K/2K image; gemini-3.1-flash-image has no
# price here yet and is estimated at the Flash figure.
MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gemini-3-pro-image", max_references=14, usd_per_image=0.134),
    ModelInfo("gemini-3.1-flash-image", max_references=14, usd_per_image=0.039),
    ModelInfo("gemini-2.5-flash-image", max_references=3, usd_per_image=0.039),
)
# Unknown models get the conservative reference cap and the Flash price.
UNKNOWN_MODEL = ModelInfo("", max_references=3, usd_per_image=0.039)


def model_info(model: str) -> ModelInfo:
    """The record for ``model`` (first prefix match), else :data:`UNKNOWN_MODEL`."""
    name = model.strip().lower().removeprefix("models/")
    return next((m for m in MODELS if name.startswith(m.prefix)), UNKNOWN_MODEL)


def max_references_for(model: str) -> int:
    """How many reference images ``model`` accepts."""
    return model_info(model).max_references


def estimate_cost(n_images: int, model: str) -> float:
    """Approximate USD list price for ``n_images`` outputs of ``model``."""
    return round(max(0, n_images) * model_info(model).usd_per_image, 4)

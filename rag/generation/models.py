"""What the app knows about each image model: references it takes, sizes, aspect ratios, prices, lifetime.

The UI, the CLI, the generator and the budget read a model's limits from its :class:`ModelInfo`,
never from constants of their own, so a new model is one line here. Which model to *use* is not
decided here but by :class:`rag.generation.model_list.ModelList`, from what the API lists today. Models are
matched by exact name, then by family prefix (a dated release ``gemini-3-pro-image-001`` counts as
its family); a model the API lists that no family matches gets :func:`model_info`'s cautious defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from rag.core import GenerationError

MAX_IMAGES_PER_RUN = 4  # n is one API call per image; keep a click's cost bounded
MAX_PROMPT_CHARS = 10_000  # a prompt (or refinement) a person writes; longer is refused before anything is sent
DEFAULT_SIZE = "1K"
BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
# Google's pricing page: "Batch API (50% cost reduction)" on the paid tier (ai.google.dev/gemini-api/docs/pricing,
# as transcribed 2026-09-20 and 2026-10-07 by api-evangelist; checked with the search tool 2026-12-06).
BATCH_DISCOUNT = 0.5
UNLISTED_TIER = 50  # an image model the catalogue does not describe: after the known GA models, before previews
# A model id as the API spells it (``gemini-3.1-flash-image``); anything else never reaches the SDK.
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,99}$")


@dataclass(frozen=True)
class ListedModel:
    """One model as ``models.list`` names it: its id, display name and the methods it serves."""

    name: str
    label: str = ""
    methods: tuple[str, ...] | None = None  # None: the API did not say


@dataclass(frozen=True)
class ModelInfo:
    """One image model: its id, a label for people, its limits, list price per output image (USD) by size,
    and where it stands in its life.

    ``sizes`` are the ``image_size`` values the model accepts; a model with one size is sent none.
    ``known`` is False for defaults guessed for a model the catalogue has no record of. ``tier`` orders
    the automatic choice (lower first); ``shutdown`` is the day Google turns it off ("" when none is
    announced) and ``replacement`` the model Google names instead.
    """

    name: str
    label: str
    max_references: int
    prices: dict[str, float] = field(default_factory=lambda: {DEFAULT_SIZE: 0.067})
    aspect_ratios: tuple[str, ...] = BASE_RATIOS
    known: bool = True
    tier: int = UNLISTED_TIER
    released: str = ""
    shutdown: str = ""
    replacement: str = ""

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(self.prices)

    @property
    def sends_size(self) -> bool:
        return len(self.prices) > 1

    @property
    def title(self) -> str:
        """"Nano Banana 2 (gemini-3.1-flash-image)": the label people know and the id the API knows."""
        return f"{self.label} ({self.name})" if self.label and self.label != self.name else self.name

    def retired(self, today: date | None = None) -> bool:
        """Whether Google has shut this model down by ``today``."""
        return bool(self.shutdown) and date.fromisoformat(self.shutdown) <= (today or date.today())

    def size(self, requested: str = "") -> str:
        """The ``image_size`` to send: ``requested`` or the default size; none for a one-size model."""
        if not self.sends_size:
            return ""
        return requested or (DEFAULT_SIZE if DEFAULT_SIZE in self.prices else self.sizes[0])

    def price(self, size: str | None = None, *, batch: bool = False) -> float:
        """USD per image at ``size`` (the default size when not given or not offered); Batch mode at its discount."""
        each = self.prices.get(size or DEFAULT_SIZE, self.prices.get(DEFAULT_SIZE, max(self.prices.values())))
        return each * BATCH_DISCOUNT if batch else each

    def estimate(self, n_images: int, size: str | None = None, *, batch: bool = False) -> float:
        """Approximate USD list price for ``n_images`` outputs."""
        return round(max(0, n_images) * self.price(size, batch=batch), 4)

    def check(self, prompt: str, n_references: int, aspect_ratio: str, size: str, n: int) -> None:
        """Raise a :class:`GenerationError` sentence unless this model can take the request (before anything is paid)."""
        if not prompt.strip():
            raise GenerationError("Write a prompt describing the image you want.")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise GenerationError(f"The prompt is {len(prompt):,} characters; shorten it to at most {MAX_PROMPT_CHARS:,}.")
        if aspect_ratio and aspect_ratio not in self.aspect_ratios:  # none: the model keeps the input's shape
            raise GenerationError(
                f"Unsupported aspect ratio {aspect_ratio!r} for {self.name}; choose one of {', '.join(self.aspect_ratios)}."
            )
        if size and self.sends_size and size not in self.sizes:
            raise GenerationError(f"{self.name} makes images of size {', '.join(self.sizes)}, not {size!r}.")
        if not 1 <= n <= MAX_IMAGES_PER_RUN:
            raise GenerationError(f"Ask for between 1 and {MAX_IMAGES_PER_RUN} images at a time (got {n}).")
        if n_references > self.max_references:
            raise GenerationError(
                f"{self.name} accepts at most {self.max_references} reference image"
                f"{'s' if self.max_references != 1 else ''}; you picked {n_references}. Remove some and try again."
            )

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "label": self.label, "max_references": self.max_references,
                "sizes": list(self.sizes), "prices": dict(self.prices),
                "batch_prices": {s: round(self.price(s, batch=True), 4) for s in self.sizes},
                "aspect_ratios": list(self.aspect_ratios), "known": self.known, "released": self.released,
                "shutdown": self.shutdown, "replacement": self.replacement}


# Lifetimes: Google's "Gemini deprecations" page (ai.google.dev/gemini-api/docs/deprecations), stored copies read
# with the search tool 2026-12-06 (../shared/notes/gemini.md): the two 3.x GA image models released 2026-05-28 with
# no shutdown announced; their previews shut down 2026-06-25; gemini-2.5-flash-image shut down 2026-10-02.
# Prices: Google's pricing page as transcribed by laozhang.ai (checked there 2026-04-04) and xairouter, read
# 2026-12-06: 3.1 Flash Image $60 / 1M image tokens = $0.045 (512), $0.067 (1K), $0.101 (2K), $0.151 (4K); 3 Pro
# Image $120 / 1M = $0.134 (1K, 2K), $0.24 (4K); 2.5 Flash Image $0.039. Both 3.x models take up to 14
# references (Vertex AI's image-understanding page, read 2026-12-06); 3.1 Flash adds the extreme ratios.
# gemini-3.1-flash-lite-image ("Nano Banana 2 Lite", GA 2026-06-30, 1K only, "not optimized for multiple
# reference inputs") comes from resellers' pages only (gmicloud, pixapi, read 2026-12-06): it gets the cautious
# reference cap and the 3.1 Flash 1K price as an upper bound until Google's own page says otherwise.
CATALOGUE: tuple[ModelInfo, ...] = (
    ModelInfo("gemini-3.1-flash-image", "Nano Banana 2", 14, {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151},
              BASE_RATIOS + EXTREME_RATIOS, tier=0, released="2026-05-28"),
    ModelInfo("gemini-3-pro-image", "Nano Banana Pro", 14, {"1K": 0.134, "2K": 0.134, "4K": 0.24},
              tier=1, released="2026-05-28"),
    ModelInfo("gemini-3.1-flash-lite-image", "Nano Banana 2 Lite", 3, {"1K": 0.067}, tier=2, released="2026-06-30"),
    ModelInfo("gemini-3.1-flash-image-preview", "Nano Banana 2 (preview)", 14,
              {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151}, BASE_RATIOS + EXTREME_RATIOS, tier=90,
              released="2026-02-26", shutdown="2026-06-25", replacement="gemini-3.1-flash-image"),
    ModelInfo("gemini-3-pro-image-preview", "Nano Banana Pro (preview)", 14, {"1K": 0.134, "2K": 0.134, "4K": 0.24},
              tier=91, released="2025-11-20", shutdown="2026-06-25", replacement="gemini-3-pro-image"),
    ModelInfo("gemini-2.5-flash-image", "Nano Banana (2.5 Flash)", 3, {"1K": 0.039}, tier=92,
              released="2025-10-02", shutdown="2026-10-02", replacement="gemini-3.1-flash-image"),
)
_BY_NAME = {m.name: m for m in CATALOGUE}
# Family prefixes, longest first, so "gemini-3.1-flash-image" does not swallow "gemini-3.1-flash-image-preview".
_FAMILIES = sorted(CATALOGUE, key=lambda m: -len(m.name))
# A model nobody described: the cautious reference cap and, for the budget's sake, the dearest 1K price.
_UNKNOWN = ModelInfo("", "", 3, {DEFAULT_SIZE: max(m.price() for m in CATALOGUE)}, known=False)


def model_name(name: str) -> str:
    """``models/gemini-x`` (as the API lists it) or `` gemini-x `` to ``gemini-x``."""
    return name.strip().removeprefix("models/")


def valid_model_name(name: str) -> str:
    """``name`` as an id, or a sentence: a path, a tuned model or a control character never reaches the SDK."""
    cleaned = model_name(name)
    if not _MODEL_ID.match(cleaned):
        raise GenerationError(f"{cleaned[:60]!r} is not a Gemini model name; choose one from the list of models.")
    return cleaned


def model_info(name: str, label: str = "") -> ModelInfo:
    """The record for ``name``: its own entry, else its family's caps and prices under its own name (a dated
    release is not retired because an older sibling was), else cautious defaults."""
    name = model_name(name)
    if name in _BY_NAME:
        return _BY_NAME[name]
    lowered = name.lower()
    family = next((m for m in _FAMILIES if lowered.startswith(m.name) and not m.shutdown), _UNKNOWN)
    tier = family.tier if family.known else UNLISTED_TIER
    tier += 40 if "preview" in lowered and tier < 90 else 0  # previews after every GA model
    return replace(family, name=name, label=family.label or label or name, tier=tier, released="", shutdown="",
                   replacement="")


def replacement_for(name: str, today: date | None = None) -> ModelInfo:
    """What to use instead of ``name``: the model Google names, else the catalogue's first choice."""
    named = model_info(model_name(name)).replacement
    return model_info(named) if named else current_models(today)[0]


def current_models(today: date | None = None) -> list[ModelInfo]:
    """The catalogue's models not yet shut down, in the automatic choice's order."""
    return sorted((m for m in CATALOGUE if not m.retired(today)), key=lambda m: m.tier)


def retired_models(today: date | None = None) -> list[ModelInfo]:
    return [m for m in CATALOGUE if m.retired(today)]


def generates_content(methods: Iterable[str] | None) -> bool:
    """Whether a listed model answers ``generateContent`` (None: the API did not say, so assume it does)."""
    return methods is None or "generateContent" in methods


def is_image_model(name: str, methods: Iterable[str] | None) -> bool:
    """Whether a model the API lists makes images through ``generateContent`` (Imagen uses ``predict``)."""
    return "image" in model_name(name).lower() and generates_content(methods)


def all_aspect_ratios() -> tuple[str, ...]:
    """Every ratio some catalogued model accepts (the CLI's choices; the generator checks per model)."""
    return tuple(dict.fromkeys(r for m in CATALOGUE for r in m.aspect_ratios))


def all_sizes() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for m in CATALOGUE for s in m.sizes))


def max_references_for(model: str) -> int:
    """How many reference images ``model`` accepts."""
    return model_info(model).max_references


def estimate_cost(n_images: int, model: str, size: str | None = None) -> float:
    """Approximate USD list price for ``n_images`` outputs of ``model`` at ``size``."""
    return model_info(model).estimate(n_images, size)

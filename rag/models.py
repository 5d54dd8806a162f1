"""What the app knows about each image model: references it takes, sizes, aspect ratios, prices.

The UI, the CLI, the generator and the budget read a model's limits from its :class:`ModelInfo`,
never from constants of their own, so a new model is one line here. Models are matched by name
prefix, so previews and dated versions (``gemini-3-pro-image-preview``) count as their family;
a model the API lists that no family matches gets :func:`model_info`'s cautious defaults.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .errors import BananaError, GenerationError

log = logging.getLogger(__name__)

MAX_IMAGES_PER_RUN = 4  # n is one API call per image; keep a click's cost bounded
DEFAULT_SIZE = "1K"
BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")


@dataclass(frozen=True)
class ModelInfo:
    """One image model: its id, a label for people, its limits, and list price per output image (USD) by size.

    ``sizes`` are the ``image_size`` values the model accepts; a model with one size is sent none
    (Gemini 2.5 Flash Image rejects the field). ``known`` is False for defaults guessed for a model
    the catalogue has no record of.
    """

    name: str
    label: str
    max_references: int
    prices: dict[str, float] = field(default_factory=lambda: {DEFAULT_SIZE: 0.039})
    aspect_ratios: tuple[str, ...] = BASE_RATIOS
    known: bool = True

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(self.prices)

    @property
    def sends_size(self) -> bool:
        return len(self.prices) > 1

    def size(self, requested: str = "") -> str:
        """The ``image_size`` to send: ``requested`` or the default size; none for a one-size model."""
        if not self.sends_size:
            return ""
        return requested or (DEFAULT_SIZE if DEFAULT_SIZE in self.prices else self.sizes[0])

    def price(self, size: str | None = None) -> float:
        """USD per image at ``size`` (the default size when not given or not offered)."""
        return self.prices.get(size or DEFAULT_SIZE, self.prices.get(DEFAULT_SIZE, max(self.prices.values())))

    def estimate(self, n_images: int, size: str | None = None) -> float:
        """Approximate USD list price for ``n_images`` outputs."""
        return round(max(0, n_images) * self.price(size), 4)

    def check(self, prompt: str, n_references: int, aspect_ratio: str, size: str, n: int) -> None:
        """Raise a :class:`GenerationError` sentence unless this model can take the request (before anything is paid)."""
        if not prompt.strip():
            raise GenerationError("Write a prompt describing the image you want.")
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
                "sizes": list(self.sizes), "prices": dict(self.prices), "aspect_ratios": list(self.aspect_ratios),
                "known": self.known}


# Sources (Google's model pages and pricing, checked 2026-11): Gemini 2.5 Flash Image works best with up
# to 3 input images and makes 1290 output tokens per 1K image at $30 / 1M (~$0.039). Gemini 3 Pro Image
# takes up to 14 references; 1K/2K images are 1120 tokens and 4K 2000 tokens at $120 / 1M ($0.134, $0.24).
# Gemini 3.1 Flash Image takes up to 14 references, sizes 512 to 4K (747/1120/1680/2520 tokens at $60 / 1M)
# and four extra-wide ratios.
CATALOGUE: tuple[ModelInfo, ...] = (
    ModelInfo("gemini-2.5-flash-image", "Nano Banana (2.5 Flash)", 3, {"1K": 0.039}),
    ModelInfo("gemini-3-pro-image-preview", "Nano Banana Pro (3 Pro)", 14,
              {"1K": 0.134, "2K": 0.134, "4K": 0.24}),
    ModelInfo("gemini-3.1-flash-image-preview", "Nano Banana 2 (3.1 Flash)", 14,
              {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151}, BASE_RATIOS + EXTREME_RATIOS),
)
# Family prefixes, longest first, so "gemini-3-pro-image" does not swallow a future "gemini-3-pro-image-x".
_FAMILIES = sorted(((m.name.removesuffix("-preview"), m) for m in CATALOGUE), key=lambda p: -len(p[0]))
# A model nobody described: the cautious reference cap and, for the budget's sake, the dearest 1K price.
_UNKNOWN = ModelInfo("", "", 3, {DEFAULT_SIZE: max(m.price() for m in CATALOGUE)}, known=False)


def model_name(name: str) -> str:
    """``models/gemini-x`` (as the API lists it) or `` Gemini-X `` to ``gemini-x``."""
    return name.strip().removeprefix("models/")


def model_info(name: str, label: str = "") -> ModelInfo:
    """The record for ``name``: its family's caps and prices under its own name, else cautious defaults."""
    name = model_name(name)
    lowered = name.lower()
    family = next((m for prefix, m in _FAMILIES if lowered.startswith(prefix)), _UNKNOWN)
    return replace(family, name=name, label=family.label or label or name)  # our family names read better


def builtin_models(extra: Iterable[str] = ()) -> list[ModelInfo]:
    """The catalogue (what the app offers when the API cannot list models), plus ``extra`` names."""
    named = {m.name: m for m in CATALOGUE}
    for name in extra:
        if model_name(name) and model_name(name) not in named:
            named[model_name(name)] = model_info(name)
    return list(named.values())


def is_image_model(name: str, methods: Iterable[str] | None) -> bool:
    """Whether a model the API lists makes images through ``generateContent`` (Imagen uses ``predict``)."""
    return "image" in model_name(name).lower() and (methods is None or "generateContent" in methods)


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


class ModelList:
    """The models to offer: what ``lister`` (the API's ``models.list``) says, else the catalogue.

    Asked once and remembered (an hour; a minute after a failure), so pages and clicks never wait
    on it. ``lister`` raises :class:`rag.errors.BananaError` when it cannot say.
    """

    def __init__(self, lister: Callable[[], list[ModelInfo]], default: str, *, ttl_s: float = 3600.0) -> None:
        self._lister = lister
        self.default = model_name(default)
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[ModelInfo], bool] | None = None

    def all(self) -> list[ModelInfo]:
        return self._get()[0]

    @property
    def listed(self) -> bool:
        """True when the models came from the API, False when they are the built-in catalogue."""
        return self._get()[1]

    def get(self, name: str = "") -> ModelInfo:
        """A model by name (the default when blank), as listed, else as the catalogue describes it."""
        name = model_name(name) or self.default
        return next((m for m in self.all() if m.name == name), None) or model_info(name)

    def default_choice(self) -> str:
        """The model a picker starts on: GEMINI_MODEL when offered, else the first model offered."""
        names = [m.name for m in self.all()]
        return self.default if self.default in names or not names else names[0]

    def note(self) -> str:
        """A sentence when GEMINI_MODEL is not among the models the API offers, else empty."""
        models, listed = self._get()
        if not listed or any(m.name == self.default for m in models):
            return ""
        return (f"GEMINI_MODEL is {self.default}, which the API does not offer; it offers "
                f"{', '.join(m.name for m in models)}.")

    def _get(self) -> tuple[list[ModelInfo], bool]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now > self._cached[0]:
                models, listed = self._ask()
                self._cached = (now + (self._ttl_s if listed else 60.0), models, listed)
            return self._cached[1], self._cached[2]

    def _ask(self) -> tuple[list[ModelInfo], bool]:
        try:
            return self._lister(), True
        except BananaError as exc:
            log.info("Offering the built-in model catalogue: %s", exc)
            return builtin_models([self.default]), False

"""Which Gemini models the app uses: what the API lists today, never a constant.

Google retires model ids several times a year, so ``GEMINI_MODEL=auto`` (the default) reads
``models.list`` and takes the catalogue's preferred image model among those this key can use
(:data:`rag.generation.models.CATALOGUE` orders them: GA Flash, Pro, Lite, then anything new, then previews).
When the API cannot list, the catalogue's first model still in service is used. A named
``GEMINI_MODEL`` wins, but a model that is shut down or that the API does not offer is refused
before anything is sent, with a sentence naming what to use instead.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from rag.core import BananaError, ModelUnavailable
from rag.generation.models import (
    ListedModel,
    ModelInfo,
    current_models,
    generates_content,
    is_image_model,
    model_info,
    model_name,
    replacement_for,
    valid_model_name,
)

log = logging.getLogger(__name__)

AUTO = "auto"
# The text model captions use when the API cannot list: Google's Firebase AI Logic pages (updated 2026-06-18,
# read with the search tool 2026-12-06) name gemini-3.1-flash-lite as the model to move to.
FALLBACK_TEXT_MODEL = "gemini-3.1-flash-lite"
_TEXT_MODEL = re.compile(r"^gemini-(\d+(?:\.\d+)?)-(flash-lite|flash)$")  # a GA text model: no preview, image, tts


def pinned(wanted: str) -> str:
    """The model a setting names, or "" for ``auto`` (any spelling) and blank: the one reading of GEMINI_MODEL."""
    name = model_name(wanted)
    return "" if name.lower() in ("", AUTO) else name


@dataclass(frozen=True)
class Choice:
    """The model a request uses when none is picked, and why, in words a person reads."""

    model: ModelInfo
    reason: str
    automatic: bool

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model.name, "label": self.model.label, "reason": self.reason, "automatic": self.automatic}


class ModelList:
    """The models to offer and the default among them: what ``lister`` (the API's ``models.list``) says, else
    the catalogue.

    Asked once and remembered (an hour; a minute after a failure), so pages and clicks never wait on it;
    :meth:`forget` asks again (a model that answered 404). ``lister`` raises :class:`rag.core.errors.BananaError`
    when it cannot say.
    """

    def __init__(self, lister: Callable[[], list[ListedModel]], wanted: str = AUTO, *, caption: str = "",
                 ttl_s: float = 3600.0, today: Callable[[], date] = date.today) -> None:
        self._lister = lister
        self.wanted = pinned(wanted) or AUTO
        self._caption = caption.strip()
        self._ttl_s = ttl_s
        self._today = today
        self._lock = threading.Lock()
        self._cached: tuple[float, list[ListedModel], bool, str] | None = None

    # -- what is offered
    def all(self) -> list[ModelInfo]:
        """The image models offered now, the preferred first; never one past its shutdown date."""
        listed, ok, _ = self._get()
        if not ok:
            return current_models(self._today())
        found = {m.name: model_info(m.name, m.label) for m in listed if is_image_model(m.name, m.methods)}
        return sorted((m for m in found.values() if not m.retired(self._today())), key=lambda m: m.tier)

    @property
    def listed(self) -> bool:
        """True when the models came from the API, False when they are the built-in catalogue."""
        return self._get()[1]

    def get(self, name: str = "") -> ModelInfo:
        """A model by name (the default when blank), as offered, else as the catalogue describes it."""
        name = model_name(name) or self.choice().model.name
        return next((m for m in self.all() if m.name == name), None) or model_info(name)

    # -- the default
    def choice(self) -> Choice:
        """The model used when none is picked: GEMINI_MODEL when named, else the preferred one offered."""
        if self.wanted != AUTO:
            return Choice(model_info(self.wanted), "chosen in this app's settings", False)
        offered, (_, ok, why) = self.all(), self._get()
        if not offered:  # every image model the key lists is shut down
            offered = current_models(self._today())
        best = offered[0]
        if ok:
            return Choice(best, f"{best.title}, chosen automatically: the preferred image model your API key can use",
                          True)
        return Choice(best, f"{best.title}, the built-in first choice (the API did not list its models: {why})", True)

    def default_choice(self) -> str:
        """The model a picker starts on: the default when it is offered, else the first model offered."""
        names = [m.name for m in self.all()]
        default = self.choice().model.name
        return default if default in names or not names else names[0]

    def note(self) -> str:
        """A sentence when GEMINI_MODEL names a model that cannot be used, else empty."""
        if self.wanted == AUTO:
            return ""
        try:
            self.usable(self.wanted)
        except ModelUnavailable as exc:
            return str(exc)
        return ""

    def usable(self, name: str = "") -> ModelInfo:
        """``name`` (the default when blank) if a request may use it; else :class:`ModelUnavailable`, before any call."""
        name = valid_model_name(name) if name.strip() else self.choice().model.name
        info, today = model_info(name), self._today()
        if info.retired(today):
            instead = replacement_for(name, today)
            raise ModelUnavailable(f"{name} was shut down by Google on {info.shutdown}; use {instead.title} instead.",
                                   name, instead.name)
        offered = self.all()
        found = next((m for m in offered if m.name == name), None)
        if found is None and self.listed:
            names = ", ".join(m.name for m in offered) or "no image model"
            raise ModelUnavailable(f"Gemini does not offer {name} to this API key; it offers {names}.", name,
                                   offered[0].name if offered else "")
        return found or info

    def replacement(self, name: str) -> ModelInfo | None:
        """What to use instead of ``name`` when a request may not use it (shut down, not offered); None while it may."""
        try:
            self.usable(name)
        except ModelUnavailable as exc:
            return self.get(exc.replacement)  # "" (none named): the default
        return None

    def caption_model(self) -> str:
        """The text model captions use: CAPTION_MODEL, or with ``auto`` the newest GA Flash-Lite (else Flash)
        the API lists; "" when captions are off."""
        if self._caption.lower() != AUTO:
            return valid_model_name(self._caption) if self._caption else ""
        ranked = []
        for m in self._get()[0]:
            match = _TEXT_MODEL.match(model_name(m.name))
            if match and generates_content(m.methods):
                ranked.append((match[2] == "flash-lite", float(match[1]), model_name(m.name)))
        return max(ranked)[2] if ranked else FALLBACK_TEXT_MODEL

    # -- the cache
    def forget(self) -> None:
        """Ask the API again next time (a model vanished while in use)."""
        with self._lock:
            self._cached = None

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around a request: a model the API no longer knows makes the next choice ask the API again."""
        try:
            yield
        except ModelUnavailable:
            self.forget()
            raise

    def _get(self) -> tuple[list[ListedModel], bool, str]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now > self._cached[0]:
                listed, ok, why = self._ask()
                self._cached = (now + (self._ttl_s if ok else 60.0), listed, ok, why)
            return self._cached[1], self._cached[2], self._cached[3]

    def _ask(self) -> tuple[list[ListedModel], bool, str]:
        try:
            listed = self._lister()
        except BananaError as exc:
            log.info("Offering the built-in model catalogue: %s", exc)
            return [], False, str(exc).rstrip(".")
        if not any(is_image_model(m.name, m.methods) for m in listed):  # a gateway that hides them, say
            log.info("Offering the built-in model catalogue: the API listed no image models")
            return listed, False, "it listed no image models"
        return listed, True, ""

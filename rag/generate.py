"""Image generation behind a narrow interface: what the UI, the CLI and :class:`rag.studio.Studio` see.

They only use :class:`ImageGenerator`, :class:`GenerationResult` and the exceptions in
:mod:`rag.errors`, so another generator can plug in without touching them. Generation never
writes anything: saving is :func:`rag.provenance.save_result`, a separate step, so a failed or
refused generation leaves the outputs folder untouched. The Gemini implementation is
:mod:`rag.gemini`; what each model accepts and costs is :mod:`rag.models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .config import Settings
from .types import Asset


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes  # image bytes as returned (PNG/JPEG)
    mime_type: str


@dataclass(frozen=True)
class GenerationResult:
    """What one click produced. Zero images plus ``text`` means the model only replied."""

    images: list[GeneratedImage]
    text: str  # any text parts joined (the model's reply)
    prompt: str
    model: str
    aspect_ratio: str
    references: list[Asset]
    created: float


@runtime_checkable
class ImageGenerator(Protocol):
    model: str
    max_references: int

    def generate(
        self, prompt: str, references: Sequence[Asset], *, aspect_ratio: str = "1:1", n: int = 1
    ) -> GenerationResult: ...


def make_generator(settings: Settings) -> ImageGenerator:
    """The configured generator; raises :class:`rag.errors.GenerationDisabled` without an API key."""
    from .gemini import GeminiGenerator  # gemini builds the records above, so it imports this module

    return GeminiGenerator(settings)

"""Image generation behind a narrow interface: what the UI, the CLI and :class:`rag.studio.studio.Studio` see.

They only use :class:`ImageGenerator`, :class:`GenerationResult` and the exceptions in
:mod:`rag.core.errors`, so another generator can plug in without touching them. Generation never
writes anything: saving is :func:`rag.generation.provenance.save_result`, a separate step, so a failed or
refused generation leaves the outputs folder untouched. The Gemini implementation is
:mod:`rag.generation.gemini`; what each model accepts and costs is :mod:`rag.generation.models`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rag.core import Asset
from rag.generation.models import ListedModel

Content = dict[str, Any]
"""One turn of a conversation as JSON: the API's ``Content`` (role and parts), bytes in base64.

Kept exactly as the model sent it, thought parts and ``thought_signature`` included: Gemini 3 image
models need their signatures back on later turns to keep the context of an edit."""

Notify = Callable[[str], None]
"""Told a sentence while a request waits ("Gemini is busy; retrying in 4 s (attempt 2 of 4)")."""


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes  # image bytes as returned (PNG/JPEG)
    mime_type: str


@dataclass(frozen=True)
class ModelReply:
    """One response: its images and text, and the model's turn to send back next time."""

    images: list[GeneratedImage]
    text: str
    content: Content


@dataclass(frozen=True)
class GenerationResult:
    """What one click produced. Zero images plus ``text`` means the model only replied.

    ``request`` is the user turn that was sent (prompt and references) and ``replies`` one entry
    per API call, so a conversation can continue from any of them.
    """

    images: list[GeneratedImage]
    text: str  # any text parts joined (the model's reply)
    prompt: str
    model: str
    aspect_ratio: str
    references: list[Asset]
    created: float
    image_size: str = ""
    request: Content = field(default_factory=dict)
    replies: list[ModelReply] = field(default_factory=list)


@runtime_checkable
class ImageGenerator(Protocol):
    """Which model a request uses is the caller's choice (:class:`rag.generation.model_list.ModelList`), never a constant here."""

    def generate(
        self,
        prompt: str,
        references: Sequence[Asset],
        *,
        aspect_ratio: str = "1:1",
        n: int = 1,
        model: str = "",
        image_size: str = "",
        history: Sequence[Content] = (),
        notify: Notify | None = None,
    ) -> GenerationResult:
        """``history`` is the conversation so far (user and model turns, oldest first); empty for a first turn."""
        ...

    def describe(self, asset: Asset, instruction: str, model: str) -> str:
        """A text model's answer about one image (captions for word search)."""
        ...

    def models(self) -> list[ListedModel]:
        """Every model the service offers this key now; raises :class:`rag.core.errors.GenerationError` when it cannot say."""
        ...

"""Image generation behind a narrow interface: what the UI, the CLI and :class:`rag.studio.Studio` see.

They only use :class:`ImageGenerator`, :class:`GenerationResult` and the exceptions in
:mod:`rag.core.errors`, so another generator can plug in without touching them. Generation never
writes anything: saving is :func:`rag.generation.provenance.save_result`, a separate step, so a failed or
refused generation leaves the outputs folder untouched. The Gemini implementation is
:mod:`rag.generation.gemini`; what each model accepts and costs is :mod:`rag.generation.models`.
Batch mode (many requests as one cheaper job, answered later) is :class:`BatchGenerator`: campaigns
use it without knowing how the service takes a job in or gives its answers back.
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


@dataclass(frozen=True)
class BatchRequest:
    """One image request of a Batch job, sent once per key: a campaign asks several images of one item,
    and each answer comes back under its key. Without keys nothing is sent (only its turn is wanted)."""

    prompt: str
    references: list[Asset]
    aspect_ratio: str
    image_size: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedBatch:
    """Batch requests read and encoded, not sent yet, so a reference that cannot be sent is found before
    the job is paid for. ``turns[i]`` is request ``i``'s user turn as JSON (what a refinement of its image
    sends again); ``payload`` belongs to the generator that prepared it, which alone reads it."""

    turns: list[Content]
    payload: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class BatchAnswer:
    """What came back for one key: the model's reply, or ``error`` (a sentence) when it made nothing."""

    key: str
    reply: ModelReply | None
    error: str = ""


@dataclass(frozen=True)
class BatchJob:
    """A Batch job as last seen. ``state`` is the service's name for it (shown to people and kept with the
    campaign); ``answers`` are filled once it has succeeded."""

    name: str
    state: str
    ended: bool = False
    succeeded: bool = False
    answers: tuple[BatchAnswer, ...] = ()


@runtime_checkable
class BatchGenerator(Protocol):
    """Batch mode: submit requests as one job, then ask how it is doing until it ends with its answers.

    Every failure is a :class:`rag.core.errors.GenerationError` sentence, the API key scrubbed."""

    def prepare_batch(self, requests: Sequence[BatchRequest]) -> PreparedBatch:
        """Read and encode the requests (each reference re-encoded); nothing is sent."""
        ...

    def submit_batch(self, model: str, batch: PreparedBatch, name: str) -> BatchJob:
        """Send the prepared requests to ``model`` as one job shown as ``name``; returns the job (its name is its id)."""
        ...

    def poll_batch(self, name: str) -> BatchJob:
        """How job ``name`` is doing, with its answers once it has succeeded."""
        ...

"""Gemini image generation ("Nano Banana") through the google-genai SDK, with bounded retries.

Every failure becomes a :class:`rag.core.errors.GenerationError` sentence. The API key is a secret:
it is scrubbed from every message we build, SDK/HTTP exceptions are not chained (their request
objects carry the key header), and it is never saved.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.core import (
    Asset,
    GenerationDisabled,
    GenerationError,
    GenerationTimeout,
    ImageError,
    ModelUnavailable,
    RateLimited,
    Settings,
)
from rag.generation.base import BatchJob, BatchRequest, Content, GenerationResult, ModelReply, Notify, PreparedBatch
from rag.generation.gemini_batch import GeminiBatches
from rag.generation.gemini_files import (
    MAX_REQUEST_BYTES,
    FileCache,
    b64_len,
    file_uris,
    is_file_gone,
    offload,
    sdk_uploader,
    turn_bytes,
)
from rag.generation.model_list import pinned
from rag.generation.models import ListedModel, ModelInfo, current_models, model_info, replacement_for
from rag.generation.reply import read_reply, retry_delay
from rag.media import encode_reference

logger = logging.getLogger(__name__)

MAX_REFERENCE_SIDE = 1536  # px; the models work at ~1024 px, bigger only costs upload time
MAX_REFERENCE_BYTES = 7 * 1024 * 1024  # Gemini's per-inline-image limit
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

LIST_TIMEOUT_S = 10.0  # listing models only fills a picker; it must not hold up a page


def _optional_exc(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Exception classes from httpx and its fork httpx2 (the SDK may use either)."""
    try:
        mod = __import__(module)
    except ImportError:
        return ()
    return tuple(getattr(mod, n) for n in names if hasattr(mod, n))


@functools.cache
def _network_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, transport failures) as the SDK's HTTP client raises them; looked up when a client is made."""
    timeouts = _optional_exc("httpx", "TimeoutException") + _optional_exc("httpx2", "TimeoutException")
    transport = _optional_exc("httpx", "TransportError") + _optional_exc("httpx2", "TransportError")
    return timeouts + (TimeoutError,), transport + (ConnectionError,)


class _FileGone(Exception):
    """A file the request named is no longer known to the Files API (expired, deleted)."""


class GeminiGenerator:
    """Gemini image generation through the google-genai SDK, with our own bounded retries.

    ``sleep``, ``base_delay`` and ``max_delay`` shape the backoff (tests pass a no-op sleep);
    ``max_request_bytes`` is the request size past which earlier images go through the Files API
    (a gateway with a smaller limit than Google's passes its own).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        key = settings.gemini_api_key.strip()
        if not key:
            raise GenerationDisabled(
                "Image generation is off because this app has no Gemini API key yet. Whoever runs it adds one "
                "(from https://aistudio.google.com/apikey) and restarts it; search still works."
            )
        from google import genai
        from google.genai import errors as genai_errors
        from google.genai import types as genai_types

        self._types = genai_types
        self._api_error = genai_errors.APIError
        self._bad_response = genai_errors.UnknownApiResponseError
        self._timeout_exc, self._transport_exc = _network_errors()
        self._key = key
        # The default for direct callers; the app picks each request's model through rag.generation.model_list.ModelList.
        self.model = pinned(settings.gemini_model) or current_models()[0].name
        self._timeout_s = settings.gemini_timeout_s
        self._max_pixels = settings.max_image_pixels
        self._attempts = max(0, settings.gemini_retries) + 1
        self._sleep = sleep
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_request = max_request_bytes
        timeout_ms = int(round(settings.gemini_timeout_s * 1000)) if settings.gemini_timeout_s > 0 else None
        try:
            self._client = genai.Client(
                vertexai=False,
                api_key=key,
                http_options=genai_types.HttpOptions(
                    base_url=settings.gemini_base_url or None,
                    api_version=settings.gemini_api_version,
                    timeout=timeout_ms,  # milliseconds
                ),
            )
        except Exception as exc:  # noqa: BLE001 - SDK raises ValueError/pydantic errors
            raise GenerationError(f"Could not set up the Gemini client: {self._scrub(str(exc))}") from None
        self.files = FileCache(sdk_uploader(self._client))
        self._batches = GeminiBatches(self._client, self.prepared, self._scrub)

    # -- public
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
        """Run ``n`` generation calls (one image each, typically) after ``history``, and collect their replies.

        The config (modalities, ratio, size) goes with every call: a turn's config replaces, never
        extends, an earlier one. If a later call fails after earlier ones produced images, those
        images are kept (they are already paid for) and the failure is appended to ``text``.
        """
        prompt = prompt.strip()
        info = model_info(model or self.model)
        refs = self._check(prompt, references, aspect_ratio, n, info, image_size)
        size = (image_size or "1K") if info.sends_size else ""
        contents, request, config = self.prepared(prompt, refs, aspect_ratio, size, history)
        replies: list[ModelReply] = []
        notes: list[str] = []
        for i in range(n):
            try:
                replies.append(read_reply(self._sent(contents, config, info.name, notify, (prompt, refs, history))))
            except GenerationError as exc:
                if not any(r.images for r in replies):
                    raise
                notes.append(f"Stopped after {i} of {n} requests: {exc}")
                break
        return GenerationResult(
            images=[image for r in replies for image in r.images],
            text="\n\n".join(t for t in [*(r.text for r in replies), *notes] if t),
            prompt=prompt,
            model=info.name,
            aspect_ratio=aspect_ratio,
            references=refs,
            created=time.time(),
            image_size=size,
            request=request,
            replies=replies,
        )

    def describe(self, asset: Asset, instruction: str, model: str, *, max_side: int = 768) -> str:
        """A text model's answer about one image (captions): the same client, retries and errors."""
        data, mime = encode_reference(asset.path, max_side=max_side, max_bytes=MAX_REFERENCE_BYTES,
                                      max_pixels=self._max_pixels)
        t = self._types
        contents = [t.Content(role="user", parts=[t.Part.from_bytes(data=data, mime_type=mime),
                                                  t.Part.from_text(text=instruction)])]
        config = t.GenerateContentConfig(response_modalities=["TEXT"])
        return read_reply(self._call(contents, config, model, None)).text

    def prepared(self, prompt: str, refs: list[Asset], aspect_ratio: str, size: str,
                 history: Sequence[Content] = ()) -> tuple[list[Any], Content, Any]:
        """(contents, this turn as JSON, config) of one request: what a call and a Batch-mode request send."""
        contents, request = self._contents(prompt, refs, history)
        t = self._types
        config = t.GenerateContentConfig(
            response_modalities=["IMAGE", "TEXT"],
            image_config=t.ImageConfig(aspect_ratio=aspect_ratio or None, image_size=size or None),
        )
        return contents, request, config

    # -- Batch mode (rag.generation.base.BatchGenerator), in rag.generation.gemini_batch
    def prepare_batch(self, requests: Sequence[BatchRequest]) -> PreparedBatch:
        return self._batches.prepare(requests)

    def submit_batch(self, model: str, batch: PreparedBatch, name: str) -> BatchJob:
        return self._batches.submit(model, batch, name)

    def poll_batch(self, name: str) -> BatchJob:
        return self._batches.poll(name)

    def models(self) -> list[ListedModel]:
        """Every model ``models.list`` names for this key (all pages), with the methods each serves."""
        try:
            pager = self._client.models.list(
                config={"page_size": 1000, "http_options": {"timeout": int(LIST_TIMEOUT_S * 1000)}}
            )
            return [ListedModel(m.name or "", m.display_name or "",
                                tuple(m.supported_actions) if m.supported_actions is not None else None) for m in pager]
        except self._api_error as exc:
            raise GenerationError(f"Gemini could not list its models ({exc.code} {exc.status or ''}).") from None
        except (*self._timeout_exc, *self._transport_exc) as exc:
            raise GenerationError(f"Could not reach the Gemini API to list models ({type(exc).__name__}).") from None

    # -- the request
    def _check(
        self, prompt: str, references: Sequence[Asset], aspect_ratio: str, n: int, info: ModelInfo, size: str
    ) -> list[Asset]:
        """The distinct references, once the request is known to be one this model can take."""
        refs = list({a.id: a for a in references}.values())  # same asset twice adds nothing
        info.check(prompt, len(refs), aspect_ratio, size, n)
        return refs

    def _contents(self, prompt: str, refs: list[Asset], history: Sequence[Content]) -> tuple[list[Any], Content]:
        """The conversation so far plus this turn (prompt and each reference re-encoded), within Gemini's request
        size: past it, the conversation's oldest images go through the Files API."""
        t = self._types
        parts = [t.Part.from_text(text=prompt)]
        own = len(prompt.encode())
        for asset in refs:
            data, mime = self._reference(asset)
            own += b64_len(len(data))
            parts.append(t.Part.from_bytes(data=data, mime_type=mime))
        turn = t.Content(role="user", parts=parts)
        try:
            earlier = [t.Content.model_validate(c) for c in history]
        except ValueError:
            raise GenerationError("This session's stored history is damaged; start a new session from this version.") from None
        total = own + sum(turn_bytes(c) for c in history)
        if total > self._max_request and earlier:
            earlier = self._offloaded(earlier, total - self._max_request)
            total = own + sum(len(c.model_dump_json(exclude_none=True)) for c in earlier)
        if total > self._max_request:
            raise GenerationError(
                f"The references add up to about {total / 2**20:.1f} MB, over Gemini's "
                f"{self._max_request // 2**20} MB request limit; use fewer or smaller references."
            )
        return [*earlier, turn], turn.model_dump(mode="json", exclude_none=True)

    def _offloaded(self, earlier: list[Any], excess: int) -> list[Any]:
        try:
            return offload(earlier, excess, self.files, self._types)
        except (self._api_error, *self._timeout_exc, *self._transport_exc) as exc:
            raise GenerationError("Could not upload the conversation's earlier images to Gemini's Files API "
                                  f"({type(exc).__name__}); try again.") from None

    def _sent(self, contents: list[Any], config: Any, model: str, notify: Notify | None,
              turn: tuple[str, list[Asset], Sequence[Content]]) -> Any:
        """One call; when a file the conversation named has expired on Google's side, upload it again, once."""
        try:
            return self._call(contents, config, model, notify)
        except _FileGone:
            self.files.forget(file_uris(contents))
        try:
            return self._call(self._contents(*turn)[0], config, model, notify)
        except _FileGone:
            raise GenerationError("Gemini could not find the images this conversation uploaded; try again.") from None

    def _reference(self, asset: Asset) -> tuple[bytes, str]:
        name = Path(asset.path).name
        try:
            return encode_reference(
                asset.path, max_side=MAX_REFERENCE_SIDE, max_bytes=MAX_REFERENCE_BYTES, max_pixels=self._max_pixels
            )
        except ImageError as exc:
            if not Path(asset.path).exists():
                raise GenerationError(f"Reference {name} is missing on disk ({asset.path}); re-index the library.") from None
            raise GenerationError(f"Reference {name} cannot be used: {exc}.") from None

    # -- one API call with retries
    def _call(self, contents: list[Any], config: Any, model: str, notify: Notify | None) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._client.models.generate_content(model=model, contents=contents, config=config)
            except self._api_error as exc:
                code = int(getattr(exc, "code", 0) or 0)
                if code in RETRY_STATUS and attempt < self._attempts:
                    self._wait(attempt, f"{code} {exc.status or ''}".strip(), retry_delay(exc), notify)
                    continue
                raise self._translate(exc, attempt, model) from None
            except self._timeout_exc:
                raise GenerationTimeout(
                    f"Gemini did not answer within {self._timeout_s:g} s. Try again, or raise GEMINI_TIMEOUT_S."
                ) from None
            except self._transport_exc as exc:
                if attempt < self._attempts:
                    self._wait(attempt, type(exc).__name__, None, notify)
                    continue
                raise GenerationError(
                    f"Could not reach the Gemini API ({type(exc).__name__}: {self._scrub(str(exc))}). "
                    "Check the network connection and GEMINI_BASE_URL."
                ) from None
            except self._bad_response:
                raise GenerationError("Gemini sent a reply that is not valid JSON; try again.") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, why: str, server_delay: float | None, notify: Notify | None) -> None:
        """Exponential backoff, or the server's RetryInfo delay when it gave one (both capped); says so first."""
        delay = server_delay if server_delay is not None else self._base_delay * 2 ** (attempt - 1)
        delay = max(0.0, min(delay, self._max_delay))
        logger.info("Gemini %s; retrying in %.1f s (attempt %d of %d)", why, delay, attempt + 1, self._attempts)
        if notify is not None:
            notify(f"Gemini is busy ({why}); retrying in {delay:.0f} s (attempt {attempt + 1} of {self._attempts}).")
        self._sleep(delay)

    def _translate(self, exc: Any, attempts: int, model: str) -> GenerationError:
        code = int(getattr(exc, "code", 0) or 0)
        status = exc.status or ""
        message = self._scrub(str(exc.message or exc.details or ""))[:300]
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if code == 429:
            delay = retry_delay(exc)
            wait = f" It asked to wait about {delay:.0f} s." if delay else ""
            return RateLimited(
                f"Gemini's rate limit or quota was exceeded{tried}.{wait} Wait a minute and try again, "
                f"or check your quota in Google AI Studio. ({message})"
            )
        if code >= 500:
            return GenerationError(f"Gemini had a server error ({code} {status}){tried}; try again later. ({message})")
        if is_file_gone(code, message):
            raise _FileGone(message)
        if code in (401, 403) or (code == 400 and "api key" in message.lower()):
            return GenerationError(f"Gemini rejected the app's API key ({code} {status}): {message} Whoever runs the "
                                   "app checks the key.", setting="GEMINI_API_KEY")
        if code == 404:
            instead = replacement_for(model)
            return ModelUnavailable(f"Gemini no longer serves {model} ({code} {status}); use {instead.title} instead.",
                                    model, instead.name)
        return GenerationError(f"Gemini rejected the request ({code} {status}): {message}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text

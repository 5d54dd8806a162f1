"""Gemini image generation ("Nano Banana") through the google-genai SDK, with bounded retries.

Every failure becomes a :class:`rag.errors.GenerationError` sentence. The API key is a secret:
it is scrubbed from every message we build, SDK/HTTP exceptions are not chained (their request
objects carry the key header), and it is never saved.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import ASPECT_RATIOS, Settings
from .errors import GenerationBlocked, GenerationDisabled, GenerationError, GenerationTimeout, ImageError, RateLimited
from .generate import GeneratedImage, GenerationResult
from .images import encode_reference
from .models import MAX_IMAGES_PER_RUN, max_references_for
from .types import Asset

logger = logging.getLogger(__name__)

MAX_REFERENCE_SIDE = 1536  # px; the models work at ~1024 px, bigger only costs upload time
MAX_REFERENCE_BYTES = 7 * 1024 * 1024  # Gemini's per-inline-image limit
MAX_REQUEST_BYTES = 20 * 1024 * 1024  # Gemini's limit for a whole inline request (base64 counts)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

# Finish reasons meaning "refused"; anything else without an image is a plain no-image reply.
_BLOCK_FINISH: dict[str, str] = {
    "SAFETY": "the safety filters flagged it",
    "IMAGE_SAFETY": "the generated image was flagged by the safety filters",
    "PROHIBITED_CONTENT": "it may contain prohibited content",
    "IMAGE_PROHIBITED_CONTENT": "the generated image may contain prohibited content",
    "BLOCKLIST": "it contains blocked terms",
    "SPII": "it may contain sensitive personal information",
    "RECITATION": "it resembled existing copyrighted material too closely",
    "IMAGE_RECITATION": "the generated image resembled existing material too closely",
    "MODEL_ARMOR": "a policy filter blocked it",
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*s?\s*$")


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


def _b64_len(n: int) -> int:
    return 4 * math.ceil(n / 3)


class GeminiGenerator:
    """Gemini image generation through the google-genai SDK, with our own bounded retries.

    ``sleep``, ``base_delay`` and ``max_delay`` shape the backoff (tests pass a no-op sleep).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        key = settings.gemini_api_key.strip()
        if not key:
            raise GenerationDisabled(
                "Image generation is off because no API key is set. Set GEMINI_API_KEY "
                "(get one at https://aistudio.google.com/apikey) and restart; search still works."
            )
        from google import genai
        from google.genai import errors as genai_errors
        from google.genai import types as genai_types

        self._types = genai_types
        self._api_error = genai_errors.APIError
        self._bad_response = genai_errors.UnknownApiResponseError
        self._timeout_exc, self._transport_exc = _network_errors()
        self._key = key
        self.model = settings.gemini_model.strip()
        self.max_references = max_references_for(self.model)
        self._timeout_s = settings.gemini_timeout_s
        self._max_pixels = settings.max_image_pixels
        self._attempts = max(0, settings.gemini_retries) + 1
        self._sleep = sleep
        self._base_delay = base_delay
        self._max_delay = max_delay
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

    def close(self) -> None:
        self._client.close()

    # -- public
    def generate(
        self, prompt: str, references: Sequence[Asset], *, aspect_ratio: str = "1:1", n: int = 1
    ) -> GenerationResult:
        """Run ``n`` generation calls (one image each, typically) and collect images and text.

        If a later call fails after earlier ones produced images, those images are kept
        (they are already paid for) and the failure is appended to ``text``.
        """
        prompt = prompt.strip()
        refs = self._check(prompt, references, aspect_ratio, n)
        t = self._types
        contents = self._contents(prompt, refs)
        config = t.GenerateContentConfig(
            response_modalities=["IMAGE", "TEXT"],
            image_config=t.ImageConfig(aspect_ratio=aspect_ratio),
        )
        images: list[GeneratedImage] = []
        texts: list[str] = []
        for i in range(n):
            try:
                response = self._call(contents, config)
                got, said = self._read(response)
            except GenerationError as exc:
                if not images:
                    raise
                texts.append(f"Stopped after {i} of {n} requests: {exc}")
                break
            images += got
            texts += said
        return GenerationResult(
            images=images,
            text="\n\n".join(s.strip() for s in texts if s.strip()),
            prompt=prompt,
            model=self.model,
            aspect_ratio=aspect_ratio,
            references=refs,
            created=time.time(),
        )

    # -- the request
    def _check(self, prompt: str, references: Sequence[Asset], aspect_ratio: str, n: int) -> list[Asset]:
        """The distinct references, once the request is known to be one Gemini can take."""
        if not prompt:
            raise GenerationError("Write a prompt describing the image you want.")
        if aspect_ratio not in ASPECT_RATIOS:
            raise GenerationError(f"Unsupported aspect ratio {aspect_ratio!r}; choose one of {', '.join(ASPECT_RATIOS)}.")
        if not 1 <= n <= MAX_IMAGES_PER_RUN:
            raise GenerationError(f"Ask for between 1 and {MAX_IMAGES_PER_RUN} images at a time (got {n}).")
        refs = list({a.id: a for a in references}.values())  # same asset twice adds nothing
        if len(refs) > self.max_references:
            raise GenerationError(
                f"{self.model} accepts at most {self.max_references} reference image"
                f"{'s' if self.max_references != 1 else ''}; you picked {len(refs)}. Remove some and try again."
            )
        return refs

    def _contents(self, prompt: str, refs: list[Asset]) -> list[Any]:
        """The prompt and each reference re-encoded, within Gemini's request size."""
        contents: list[Any] = [prompt]
        total = len(prompt.encode())
        for asset in refs:
            data, mime = self._reference(asset)
            total += _b64_len(len(data))
            contents.append(self._types.Part.from_bytes(data=data, mime_type=mime))
        if total > MAX_REQUEST_BYTES:
            raise GenerationError(
                f"The references add up to about {total / 2**20:.1f} MB, over Gemini's "
                f"{MAX_REQUEST_BYTES // 2**20} MB request limit; use fewer references."
            )
        return contents

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
    def _call(self, contents: list[Any], config: Any) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._client.models.generate_content(model=self.model, contents=contents, config=config)
            except self._api_error as exc:
                code = int(getattr(exc, "code", 0) or 0)
                if code in RETRY_STATUS and attempt < self._attempts:
                    self._wait(attempt, f"{code} {exc.status or ''}".strip(), _retry_delay(exc))
                    continue
                raise self._translate(exc, attempt) from None
            except self._timeout_exc:
                raise GenerationTimeout(
                    f"Gemini did not answer within {self._timeout_s:g} s. Try again, or raise GEMINI_TIMEOUT_S."
                ) from None
            except self._transport_exc as exc:
                if attempt < self._attempts:
                    self._wait(attempt, type(exc).__name__, None)
                    continue
                raise GenerationError(
                    f"Could not reach the Gemini API ({type(exc).__name__}: {self._scrub(str(exc))}). "
                    "Check the network connection and GEMINI_BASE_URL."
                ) from None
            except self._bad_response:
                raise GenerationError("Gemini sent a reply that is not valid JSON; try again.") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, why: str, server_delay: float | None) -> None:
        """Exponential backoff, or the server's RetryInfo delay when it gave one (both capped)."""
        delay = server_delay if server_delay is not None else self._base_delay * 2 ** (attempt - 1)
        delay = max(0.0, min(delay, self._max_delay))
        logger.info("Gemini %s; retrying in %.1f s (attempt %d of %d)", why, delay, attempt + 1, self._attempts)
        self._sleep(delay)

    def _translate(self, exc: Any, attempts: int) -> GenerationError:
        code = int(getattr(exc, "code", 0) or 0)
        status = exc.status or ""
        message = self._scrub(str(exc.message or exc.details or ""))[:300]
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if code == 429:
            delay = _retry_delay(exc)
            wait = f" It asked to wait about {delay:.0f} s." if delay else ""
            return RateLimited(
                f"Gemini's rate limit or quota was exceeded{tried}.{wait} Wait a minute and try again, "
                f"or check your quota in Google AI Studio. ({message})"
            )
        if code >= 500:
            return GenerationError(f"Gemini had a server error ({code} {status}){tried}; try again later. ({message})")
        if code in (401, 403) or (code == 400 and "api key" in message.lower()):
            return GenerationError(f"Gemini rejected the API key ({code} {status}): {message} Check GEMINI_API_KEY.")
        if code == 404:
            return GenerationError(f"Gemini does not know the model {self.model!r} ({message}). Check GEMINI_MODEL.")
        return GenerationError(f"Gemini rejected the request ({code} {status}): {message}")

    # -- the reply
    def _read(self, response: Any) -> tuple[list[GeneratedImage], list[str]]:
        """Images and text of one response; refusals raise :class:`GenerationBlocked`."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            reason = _enum_name(feedback.block_reason)
            detail = f" {feedback.block_reason_message}" if feedback.block_reason_message else ""
            raise GenerationBlocked(
                f"Gemini refused the prompt (reason: {reason}).{detail} Try rewording it or using other references."
            )
        candidates = response.candidates or []
        if not candidates:
            raise GenerationError("Gemini returned an empty reply (no candidates); try again.")
        images: list[GeneratedImage] = []
        texts: list[str] = []
        finish = ""
        for cand in candidates:
            finish = _enum_name(cand.finish_reason) if cand.finish_reason else ""
            parts = cand.content.parts if cand.content is not None and cand.content.parts else []
            said: list[str] = []
            for part in parts:
                if part.thought:  # Gemini 3 drafts and thought summaries, not the answer
                    continue
                blob = part.inline_data
                if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                    images.append(GeneratedImage(data=bytes(blob.data), mime_type=blob.mime_type or "image/png"))
                elif part.text:
                    said.append(part.text)
            if finish in _BLOCK_FINISH:
                reply = f" The model said: {' '.join(said).strip()}" if said else ""
                raise GenerationBlocked(
                    f"Gemini refused to make this image (reason: {finish}): {_BLOCK_FINISH[finish]}.{reply} "
                    "Try a different prompt or references."
                )
            if not said and not images and cand.finish_message:
                said.append(cand.finish_message)
            texts += said
        if not images and not texts:
            raise GenerationError(f"Gemini returned neither an image nor text (finish reason: {finish or 'none'}).")
        return images, texts

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value))


def _retry_delay(exc: Any) -> float | None:
    """Seconds from a google.rpc.RetryInfo in the error details, else a Retry-After header."""
    body = getattr(exc, "details", None)
    body = body if isinstance(body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    items = error.get("details")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            raw = item.get("retryDelay", item.get("retry_delay"))
            if isinstance(raw, dict):
                return float(raw.get("seconds", 0)) + float(raw.get("nanos", 0)) / 1e9
            if isinstance(raw, str) and (m := _DURATION_RE.match(raw)):
                return float(m.group(1))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    raw_header = headers.get("retry-after") if headers is not None else None
    if raw_header and (m := _DURATION_RE.match(str(raw_header))):
        return float(m.group(1))
    return None

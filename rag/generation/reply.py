"""Reading what Gemini sends back: images, text, refusals, the model's turn, and how long to wait.

Separate from :mod:`rag.generation.gemini` (which makes the requests) so each stays short; both speak the
google-genai SDK's types and raise :mod:`rag.core.errors` sentences.
"""

from __future__ import annotations

import re
from typing import Any

from rag.core import GenerationBlocked, GenerationError
from rag.generation.base import GeneratedImage, ModelReply

# Finish reasons meaning "refused"; anything else without an image is a plain no-image reply.
BLOCK_FINISH: dict[str, str] = {
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


def enum_name(value: Any) -> str:
    return str(getattr(value, "value", value))


def _refused(response: Any) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        reason = enum_name(feedback.block_reason)
        detail = f" {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise GenerationBlocked(
            f"Gemini refused the prompt (reason: {reason}).{detail} Try rewording it or using other references."
        )


def _parts(cand: Any) -> tuple[list[GeneratedImage], list[str]]:
    """The answer's images and text; thought parts (Gemini 3 drafts and summaries) are not the answer."""
    images: list[GeneratedImage] = []
    said: list[str] = []
    for part in cand.content.parts if cand.content is not None and cand.content.parts else []:
        if part.thought:
            continue
        blob = part.inline_data
        if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
            images.append(GeneratedImage(data=bytes(blob.data), mime_type=blob.mime_type or "image/png"))
        elif part.text:
            said.append(part.text)
    return images, said


def read_reply(response: Any) -> ModelReply:
    """Images, text and the model's full turn of one response; refusals raise :class:`GenerationBlocked`."""
    _refused(response)
    candidates = response.candidates or []
    if not candidates:
        raise GenerationError("Gemini returned an empty reply (no candidates); try again.")
    images: list[GeneratedImage] = []
    texts: list[str] = []
    finish = ""
    for cand in candidates:
        finish = enum_name(cand.finish_reason) if cand.finish_reason else ""
        got, said = _parts(cand)
        if finish in BLOCK_FINISH:
            reply = f" The model said: {' '.join(said).strip()}" if said else ""
            raise GenerationBlocked(
                f"Gemini refused to make this image (reason: {finish}): {BLOCK_FINISH[finish]}.{reply} "
                "Try a different prompt or references."
            )
        if not said and not got and cand.finish_message:
            said.append(cand.finish_message)
        images += got
        texts += said
    if not images and not texts:
        raise GenerationError(f"Gemini returned neither an image nor text (finish reason: {finish or 'none'}).")
    first = candidates[0].content
    # The whole turn, thought parts and signatures included: later turns must send it back unchanged.
    content = first.model_dump(mode="json", exclude_none=True) if first is not None else {"parts": []}
    content["role"] = "model"
    return ModelReply(images=images, text="\n\n".join(t.strip() for t in texts if t.strip()), content=content)


def retry_delay(exc: Any) -> float | None:
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

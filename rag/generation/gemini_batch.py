"""Gemini's Batch mode through the google-genai SDK: the service side of :class:`rag.generation.base.BatchGenerator`.

A job costs about half the interactive price and answers within 24 hours. Its requests go inline
(``client.batches.create(src=[...])``) up to :data:`INLINE_LIMIT_BYTES`, and above it as a JSONL file
through the Files API (``client.files.upload``); the answers come back inline or as a results file
(``client.files.download``). :class:`rag.generation.gemini.GeminiGenerator` hands its client, its
request building and its key scrubbing to :class:`GeminiBatches`, so a Batch request is built exactly
as an interactive one and its failures read the same: sentences, the API key scrubbed, SDK errors never
chained (they carry it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core import Asset, BananaError, GenerationError
from rag.generation.base import BatchAnswer, BatchJob, BatchRequest, Content, PreparedBatch
from rag.generation.reply import read_reply

# A batch's inline requests must stay "under 20 MB" in all; a bigger batch goes as a JSONL file. Read as decimal
# megabytes, the smaller reading. https://ai.google.dev/gemini-api/docs/batch-api (checked 2026-12-07)
INLINE_LIMIT_BYTES = 20_000_000
# A batch's displayName is required with no stated limit (https://ai.google.dev/api/batch-api); a File's is at
# most 512 characters (https://ai.google.dev/api/files); both checked 2026-12-07. The campaign's name, cut to this.
DISPLAY_NAME_CHARS = 100
SUCCEEDED = "JOB_STATE_SUCCEEDED"
ENDED = frozenset({SUCCEEDED, "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})

Prepare = Callable[[str, list[Asset], str, str], tuple[list[Any], Content, Any]]
"""``GeminiGenerator.prepared``: (SDK contents, the user turn as JSON, SDK config) of one request."""


@dataclass(frozen=True)
class _Payload:
    requests: list[dict[str, Any]]  # each request's SDK contents and config, and its key
    size: int  # bytes of the requests' turns as JSON: whether they fit inline


def _state(job: Any) -> str:
    return str(getattr(job.state, "value", job.state) or "JOB_STATE_PENDING")


def _error(error: Any) -> str:
    if error is None:
        return ""
    message = error.get("message") if isinstance(error, dict) else getattr(error, "message", None)
    return f"Gemini could not make it: {message or error}"


def _answer(key: str, response: Any, error: str) -> BatchAnswer:
    """One key's reply read as an interactive one is; an error or refusal stays with the key."""
    if error or response is None:
        return BatchAnswer(key, None, error or "Gemini sent no response for it.")
    try:
        return BatchAnswer(key, read_reply(response))
    except BananaError as exc:
        return BatchAnswer(key, None, str(exc))


class GeminiBatches:
    """Batch jobs on one SDK client; ``prepare`` builds a request, ``scrub`` takes the API key out of a text."""

    def __init__(self, client: Any, prepare: Prepare, scrub: Callable[[str], str]) -> None:
        self._client = client
        self._prepare = prepare
        self._scrub = scrub

    def prepare(self, requests: Sequence[BatchRequest]) -> PreparedBatch:
        """Each request built once (its references re-encoded) and repeated per key."""
        wire: list[dict[str, Any]] = []
        turns: list[Content] = []
        size = 0
        for r in requests:
            contents, turn, config = self._prepare(r.prompt, list(r.references), r.aspect_ratio, r.image_size)
            size += len(json.dumps(turn)) * len(r.keys)
            turns.append(turn)
            wire += [{"contents": contents, "config": config, "metadata": {"key": key}} for key in r.keys]
        return PreparedBatch(turns, _Payload(wire, size))

    def submit(self, model: str, batch: PreparedBatch, name: str) -> BatchJob:
        payload: _Payload = batch.payload
        try:
            src = payload.requests if payload.size <= INLINE_LIMIT_BYTES else self._uploaded(payload.requests, name)
            job = self._client.batches.create(model=model, src=src, config={"display_name": name[:DISPLAY_NAME_CHARS]})
        except Exception as exc:  # noqa: BLE001 - the SDK's APIError or a transport error: the job was not made
            raise GenerationError(f"Gemini did not accept the Batch job ({self._said(exc)}).") from None
        return BatchJob(str(job.name), _state(job))

    def poll(self, name: str) -> BatchJob:
        try:
            job = self._client.batches.get(name=name)
        except Exception as exc:  # noqa: BLE001 - the SDK's APIError or a transport error: ask again later
            raise GenerationError(f"Gemini could not say how Batch job {name} is doing ({self._said(exc)}); "
                                  "it is asked again later.") from None
        state = _state(job)
        answers = tuple(self._answers(job)) if state == SUCCEEDED else ()
        return BatchJob(name, state, ended=state in ENDED, succeeded=state == SUCCEEDED, answers=answers)

    def _uploaded(self, requests: list[dict[str, Any]], name: str) -> str:
        """The requests as a JSONL file in the Files API (``{"key", "request"}`` a line); returns the file's name."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="banana-batch-", delete=False) as out:
            for r in requests:
                request = {"contents": [c.model_dump(mode="json", exclude_none=True, by_alias=True) for c in r["contents"]],
                           "generationConfig": r["config"].model_dump(mode="json", exclude_none=True, by_alias=True)}
                out.write(json.dumps({"key": r["metadata"]["key"], "request": request}) + "\n")
        try:
            uploaded = self._client.files.upload(file=out.name, config={"mime_type": "jsonl", "display_name": name[:DISPLAY_NAME_CHARS]})
        finally:
            Path(out.name).unlink(missing_ok=True)
        return str(uploaded.name)

    def _answers(self, job: Any) -> list[BatchAnswer]:
        """One answer per request: inline, or read from the job's results file."""
        dest = job.dest
        if dest is not None and dest.inlined_responses:
            return [_answer(str((a.metadata or {}).get("key", "")), a.response, _error(a.error))
                    for a in dest.inlined_responses]
        if dest is None or not dest.file_name:
            return []
        from google.genai import types

        try:
            rows = [json.loads(line) for line in self._client.files.download(file=dest.file_name).decode().splitlines()
                    if line.strip()]
            found = [(str(r.get("key", "")), types.GenerateContentResponse.model_validate(r["response"])
                      if r.get("response") else None, _error(r.get("error"))) for r in rows]
        except Exception as exc:  # noqa: BLE001 - a download failure or a damaged line: nothing lands, the next poll retries
            raise GenerationError(f"The Batch job's results file {dest.file_name} could not be read "
                                  f"({self._said(exc)}).") from None
        return [_answer(*row) for row in found]

    def _said(self, exc: BaseException) -> str:
        """An SDK or transport error in one line, the API key scrubbed."""
        return self._scrub(f"{type(exc).__name__}: {str(exc)[:200]}")

"""Gemini Batch mode for campaigns: submit every unfinished item as one job, poll it, keep what it returns.

A job costs about half the interactive price and answers within 24 hours. Its requests go inline
(``client.batches.create(src=[...])``) up to the API's inline size, and above it as a JSONL file
through the Files API (``client.files.upload``; the results come back as a file too). The whole
job is one attempt in History, checked
against the budget at its estimate before it is submitted; its id is kept on the campaign, so a
restarted app or CLI picks the job up again. Results become versions exactly as a "now" run's do
(:func:`rag.generation.refine.keep_images`), one session per item.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.campaigns.records import Campaign, CampaignStore, Item
from rag.core import Asset, BananaError, GenerationError, Settings
from rag.generation import Ask, GenerationResult, ModelList, keep_images, read_reply

log = logging.getLogger(__name__)
INLINE_LIMIT_BYTES = 20 * 1024 * 1024  # Gemini's limit for a batch's inline requests; bigger needs a JSONL file
ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def poll_forever(poll: Callable[[], object], every_s: float) -> None:
    """The app's background loop: ``poll`` (every waiting campaign's job) every ``every_s`` seconds, forever."""
    while True:
        time.sleep(every_s)
        try:
            poll()
        except Exception:  # noqa: BLE001 - a bad poll must not end the loop; the next one tries again
            log.exception("Polling Batch jobs failed")


def _key(item: Item, k: int) -> str:
    return f"{item.seq}-{k}"


def _state(job: Any) -> str:
    return str(getattr(job.state, "value", job.state) or "JOB_STATE_PENDING")


def submit(store: CampaignStore, generator: Any, settings: Settings, models: ModelList, campaign: Campaign,
           get: Callable[[Sequence[str]], list[Asset]]) -> str:
    """Submit the unfinished items as one job (``per_item`` requests each); returns the job's name."""
    if campaign.batch_job:
        raise BananaError(f"Campaign {campaign.name!r} is already Batch job {campaign.batch_job}; its results come by polling.")
    info = models.usable(campaign.model)  # a model shut down since the plan: refused before anything is paid
    todo = [i for i in store.items(campaign.id) if i.status != "done"]
    known = {a.id: a for a in get(list({i.asset_id for i in todo} | set(campaign.shared_refs)))}
    requests, size = [], 0
    for item in todo:
        refs = [known[i] for i in [item.asset_id, *campaign.shared_refs] if i in known]
        contents, turn, config = generator.prepared(item.prompt, refs, item.aspect_ratio, info.size(campaign.image_size))
        size += len(json.dumps(turn)) * campaign.per_item
        requests += [{"contents": contents, "config": config, "metadata": {"key": _key(item, k)}}
                     for k in range(1, campaign.per_item + 1)]
    estimate = info.estimate(len(requests), info.size(campaign.image_size), batch=True)
    attempt = store.sessions.begin_attempt(
        user=campaign.user, session_id="", parent_id="", model=info.name, image_size=info.size(campaign.image_size),
        prompt=f"[batch] {campaign.template}", references=[], requested=len(requests), estimate=estimate,
        budget=settings.gemini_daily_budget_usd)
    try:
        src = requests if size <= INLINE_LIMIT_BYTES else _uploaded(generator, requests, campaign.name)
        job = generator.client.batches.create(model=info.name, src=src, config={"display_name": campaign.name[:100]})
    except Exception as exc:  # noqa: BLE001 - the SDK's APIError or a transport error: the job was not made
        why = _said(exc, settings)
        store.sessions.end_attempt(attempt, outcome="failed", images=0, cost=0.0, reason=why)
        raise GenerationError(f"Gemini did not accept the Batch job ({why}).") from None
    store.set_status(campaign.id, "batch", batch_job=str(job.name), batch_state=_state(job), batch_attempt=attempt)
    return str(job.name)


def _uploaded(generator: Any, requests: list[dict[str, Any]], name: str) -> str:
    """The requests as a JSONL file in the Files API (``{"key", "request"}`` a line); returns the file's name."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="banana-batch-", delete=False) as out:
        for r in requests:
            request = {"contents": [c.model_dump(mode="json", exclude_none=True, by_alias=True) for c in r["contents"]],
                       "generationConfig": r["config"].model_dump(mode="json", exclude_none=True, by_alias=True)}
            out.write(json.dumps({"key": r["metadata"]["key"], "request": request}) + "\n")
    try:
        uploaded = generator.client.files.upload(file=out.name, config={"mime_type": "jsonl", "display_name": name[:100]})
    finally:
        Path(out.name).unlink(missing_ok=True)
    return str(uploaded.name)


def _answers(generator: Any, job: Any, settings: Settings) -> list[tuple[str, Any, str]]:
    """``(key, response, error)`` per request: inline, or read from the job's results file."""
    dest = job.dest
    if dest is not None and dest.inlined_responses:
        return [(str((a.metadata or {}).get("key", "")), a.response, _error(a.error)) for a in dest.inlined_responses]
    if dest is None or not dest.file_name:
        return []
    from google.genai import types

    try:
        rows = [json.loads(line) for line in generator.client.files.download(file=dest.file_name).decode().splitlines()
                if line.strip()]
        return [(str(r.get("key", "")), types.GenerateContentResponse.model_validate(r["response"])
                 if r.get("response") else None, _error(r.get("error"))) for r in rows]
    except Exception as exc:  # noqa: BLE001 - a download failure or a damaged line: nothing lands, the next poll retries
        raise GenerationError(f"The Batch job's results file {dest.file_name} could not be read "
                              f"({_said(exc, settings)}).") from None


def _said(exc: BaseException, settings: Settings) -> str:
    """An SDK or transport error in one line, the API key scrubbed (SDK errors are never chained: they carry it)."""
    text = f"{type(exc).__name__}: {str(exc)[:200]}"
    key = settings.gemini_api_key.strip()
    return text.replace(key, "[redacted]") if key else text


def _error(error: Any) -> str:
    if error is None:
        return ""
    message = error.get("message") if isinstance(error, dict) else getattr(error, "message", None)
    return f"Gemini could not make it: {message or error}"


def poll(store: CampaignStore, generator: Any, settings: Settings, models: ModelList, campaign: Campaign,
         get: Callable[[Sequence[str]], list[Asset]]) -> str:
    """Ask how the job is doing; when it has ended, keep its images as the items' versions. Returns its state."""
    if not campaign.batch_job:
        raise BananaError(f"Campaign {campaign.name!r} has no Batch job.")
    try:
        job = generator.client.batches.get(name=campaign.batch_job)
    except Exception as exc:  # noqa: BLE001 - the SDK's APIError or a transport error: ask again later
        raise GenerationError(f"Gemini could not say how Batch job {campaign.batch_job} is doing ({_said(exc, settings)}); "
                              "it is asked again later.") from None
    state, attempt = _state(job), campaign.batch_attempt
    if state not in ENDED:
        store.set_status(campaign.id, "batch", batch_state=state)
        return state
    answers = _answers(generator, job, settings) if state == "JOB_STATE_SUCCEEDED" else []
    made = _land(store, generator, settings, models, campaign, get, answers) if answers else 0
    if state != "JOB_STATE_SUCCEEDED":
        for item in store.items(campaign.id):
            if item.status != "done":
                store.update_item(campaign.id, item.seq, status="failed", error=f"the Batch job ended {state}")
    info = models.get(campaign.model)
    if attempt and campaign.status == "batch":  # ended once, even when polled again
        store.sessions.end_attempt(attempt, outcome="ok" if made else "failed", images=made,
                                   cost=info.estimate(made, info.size(campaign.image_size), batch=True),
                                   reason="" if made else f"Batch job {state}")
    counts = store.counts(campaign.id)
    store.set_status(campaign.id, "done" if counts["done"] == sum(counts.values()) else "stopped", batch_state=state)
    return state


def _land(store: CampaignStore, generator: Any, settings: Settings, models: ModelList, campaign: Campaign,
          get: Callable[[Sequence[str]], list[Asset]], answers: list[tuple[str, Any, str]]) -> int:
    """Each response kept as a version of its item's session; an error stays with its item."""
    items = {i.seq: i for i in store.items(campaign.id)}
    known = {a.id: a for a in get(list({i.asset_id for i in items.values()} | set(campaign.shared_refs)))}
    info, made = models.get(campaign.model), 0
    finished = {seq for seq, i in items.items() if i.status == "done"}  # a job polled twice lands once
    for key, response, error in answers:
        seq = int(key.partition("-")[0]) if key.partition("-")[0].isdigit() else 0
        item = items.get(seq)
        if item is None or seq in finished:
            continue
        try:
            if error or response is None:
                raise GenerationError(error or "Gemini sent no response for it.")
            reply = read_reply(response)
        except BananaError as exc:  # one of per_item images: the item keeps the others
            store.update_item(campaign.id, seq, status="done" if item.version_ids else "failed", error=str(exc))
            continue
        refs = [known[i] for i in [item.asset_id, *campaign.shared_refs] if i in known]
        size = info.size(campaign.image_size)
        ask = Ask(item.prompt, refs, info, item.aspect_ratio, size, 1, campaign.user,
                  {"campaign": campaign.name, "campaign_id": campaign.id, "campaign_item": seq,
                   "batch_job": campaign.batch_job})
        session = store.sessions.session(item.session_id) if item.session_id else None
        turn = generator.prepared(item.prompt, refs, item.aspect_ratio, size)[1]  # what a refinement sends again
        result = GenerationResult(images=reply.images, text=reply.text, prompt=item.prompt, model=info.name,
                                  aspect_ratio=item.aspect_ratio, references=refs, created=time.time(),
                                  image_size=size, replies=[reply], request=turn)
        session, versions, _ = keep_images(store.sessions, settings, session, None, ask, result)
        made += len(versions)
        ids = [*item.version_ids, *(v.id for v in versions)]
        store.update_item(campaign.id, seq, status="done" if ids else "failed", session_id=session.id if session else "",
                          version_ids=ids, error="" if ids else f"no image: {reply.text or 'the model said nothing'}")
        items[seq] = store.items(campaign.id)[seq - 1]
    return made

"""Gemini Batch mode for campaigns: submit every unfinished item as one job, poll it, keep what it returns.

A job costs about half the interactive price and answers within 24 hours. Its requests go inline
(``client.batches.create(src=[...])``) up to the API's inline size; a bigger campaign is refused
with a sentence (split it, or run it now). The whole job is one attempt in History, checked
against the budget at its estimate before it is submitted; its id is kept on the campaign, so a
restarted app or CLI picks the job up again. Results become versions exactly as a "now" run's do
(:func:`rag.refine.keep_images`), one session per item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .campaign_store import Campaign, CampaignStore, Item
from .campaigns import BATCH_DISCOUNT
from .config import Settings
from .errors import BananaError, GenerationError
from .gemini_reply import read_reply
from .generate import GenerationResult
from .models import ModelList
from .refine import Ask, keep_images
from .types import Asset

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
    todo = [i for i in store.items(campaign.id) if i.status != "done"]
    known = {a.id: a for a in get(list({i.asset_id for i in todo} | set(campaign.shared_refs)))}
    info = models.get(campaign.model)
    requests, size = [], 0
    for item in todo:
        refs = [known[i] for i in [item.asset_id, *campaign.shared_refs] if i in known]
        contents, turn, config = generator.prepared(item.prompt, refs, item.aspect_ratio, info.size(campaign.image_size))
        size += len(str(turn))
        requests += [{"contents": contents, "config": config, "metadata": {"key": _key(item, k)}}
                     for k in range(1, campaign.per_item + 1)]
    if size * campaign.per_item > INLINE_LIMIT_BYTES:
        raise BananaError(f"This campaign's requests add up to about {size * campaign.per_item / 2**20:.0f} MB, over "
                          "Batch mode's inline limit; split it into smaller campaigns, or run it now.")
    estimate = round(info.estimate(len(requests), info.size(campaign.image_size)) * BATCH_DISCOUNT, 4)
    attempt = store.sessions.begin_attempt(
        user=campaign.user, session_id="", parent_id="", model=info.name, image_size=info.size(campaign.image_size),
        prompt=f"[batch] {campaign.template}", references=[], requested=len(requests), estimate=estimate,
        budget=settings.gemini_daily_budget_usd)
    try:
        job = generator.client.batches.create(model=info.name, src=requests, config={"display_name": campaign.name[:100]})
    except Exception as exc:  # noqa: BLE001 - the SDK's APIError or a transport error: the job was not made
        store.sessions.end_attempt(attempt, outcome="failed", images=0, cost=0.0, reason=str(exc)[:300])
        raise GenerationError(f"Gemini did not accept the Batch job ({type(exc).__name__}: {str(exc)[:200]}).") from None
    store.set_status(campaign.id, "batch", batch_job=job.name, batch_state=f"{_state(job)} attempt:{attempt}")
    return str(job.name)


def poll(store: CampaignStore, generator: Any, settings: Settings, models: ModelList, campaign: Campaign,
         get: Callable[[Sequence[str]], list[Asset]]) -> str:
    """Ask how the job is doing; when it has ended, keep its images as the items' versions. Returns its state."""
    if not campaign.batch_job:
        raise BananaError(f"Campaign {campaign.name!r} has no Batch job.")
    job = generator.client.batches.get(name=campaign.batch_job)
    state, attempt = _state(job), int(campaign.batch_state.rpartition("attempt:")[2] or 0)
    if state not in ENDED:
        store.set_status(campaign.id, "batch", batch_state=f"{state} attempt:{attempt}")
        return state
    made = _land(store, settings, models, campaign, get, job) if state == "JOB_STATE_SUCCEEDED" else 0
    if state != "JOB_STATE_SUCCEEDED":
        for item in store.items(campaign.id):
            if item.status != "done":
                store.update_item(campaign.id, item.seq, status="failed", error=f"the Batch job ended {state}")
    info = models.get(campaign.model)
    if attempt:
        store.sessions.end_attempt(attempt, outcome="ok" if made else "failed", images=made,
                                   cost=round(info.estimate(made, info.size(campaign.image_size)) * BATCH_DISCOUNT, 4),
                                   reason="" if made else f"Batch job {state}")
    counts = store.counts(campaign.id)
    store.set_status(campaign.id, "done" if counts["done"] == sum(counts.values()) else "stopped", batch_state=state)
    return state


def _land(store: CampaignStore, settings: Settings, models: ModelList, campaign: Campaign,
          get: Callable[[Sequence[str]], list[Asset]], job: Any) -> int:
    """Each inlined response kept as a version of its item's session; an error stays with its item."""
    items = {i.seq: i for i in store.items(campaign.id)}
    known = {a.id: a for a in get(list({i.asset_id for i in items.values()} | set(campaign.shared_refs)))}
    info, made = models.get(campaign.model), 0
    for answer in (job.dest.inlined_responses if job.dest and job.dest.inlined_responses else []):
        seq = int(str((answer.metadata or {}).get("key", "0-0")).partition("-")[0])
        item = items.get(seq)
        if item is None or item.status == "done":
            continue
        try:
            if answer.error is not None:
                raise GenerationError(f"Gemini could not make it: {getattr(answer.error, 'message', answer.error)}")
            reply = read_reply(answer.response)
        except BananaError as exc:
            store.update_item(campaign.id, seq, status="failed", error=str(exc))
            continue
        refs = [known[i] for i in [item.asset_id, *campaign.shared_refs] if i in known]
        ask = Ask(item.prompt, refs, info, item.aspect_ratio, info.size(campaign.image_size), 1, campaign.user,
                  {"campaign": campaign.name, "campaign_id": campaign.id, "campaign_item": seq, "batch_job": job.name})
        session = store.sessions.session(item.session_id) if item.session_id else None
        result = GenerationResult(images=reply.images, text=reply.text, prompt=item.prompt, model=info.name,
                                  aspect_ratio=item.aspect_ratio, references=refs, created=time.time(),
                                  image_size=info.size(campaign.image_size), replies=[reply],
                                  request={"role": "user", "parts": [{"text": item.prompt}]})
        session, versions, _ = keep_images(store.sessions, settings, session, None, ask, result)
        made += len(versions)
        ids = [*item.version_ids, *(v.id for v in versions)]
        store.update_item(campaign.id, seq, status="done" if ids else "failed", session_id=session.id if session else "",
                          version_ids=ids, error="" if ids else f"no image: {reply.text or 'the model said nothing'}")
        items[seq] = store.items(campaign.id)[seq - 1]
    return made

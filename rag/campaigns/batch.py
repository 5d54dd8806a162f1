"""Gemini Batch mode for campaigns: submit every unfinished item as one job, poll it, keep what it returns.

A job costs about half the interactive price and answers within 24 hours. It goes through the
generator's :class:`rag.generation.base.BatchGenerator` (how the requests travel and how the answers come
back is :mod:`rag.generation.gemini_batch`'s business). The whole job is one attempt in History, checked
against the budget at its estimate before it is submitted; its id is kept on the campaign, so a
restarted app or CLI picks the job up again. Results become versions exactly as a "now" run's do
(:func:`rag.generation.refine.keep_images`), one session per item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from rag.campaigns.records import Campaign, CampaignStore, Item
from rag.core import Asset, BananaError, GenerationError, Settings
from rag.generation import Ask, BatchAnswer, BatchGenerator, BatchRequest, GenerationResult, ModelList, keep_images

log = logging.getLogger(__name__)


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


def _refs(item: Item, campaign: Campaign, known: dict[str, Asset]) -> list[Asset]:
    """The item's own picture, then the campaign's shared references (those still in the library)."""
    return [known[i] for i in [item.asset_id, *campaign.shared_refs] if i in known]


def submit(store: CampaignStore, generator: BatchGenerator, settings: Settings, models: ModelList, campaign: Campaign,
           get: Callable[[Sequence[str]], list[Asset]]) -> str:
    """Submit the unfinished items as one job (``per_item`` requests each); returns the job's name."""
    if campaign.batch_job:
        raise BananaError(f"Campaign {campaign.name!r} is already Batch job {campaign.batch_job}; its results come by polling.")
    info = models.usable(campaign.model)  # a model shut down since the plan: refused before anything is paid
    size = info.size(campaign.image_size)
    todo = [i for i in store.items(campaign.id) if i.status != "done"]
    known = {a.id: a for a in get(list({i.asset_id for i in todo} | set(campaign.shared_refs)))}
    requests = [BatchRequest(item.prompt, _refs(item, campaign, known), item.aspect_ratio, size,
                             keys=tuple(_key(item, k) for k in range(1, campaign.per_item + 1))) for item in todo]
    prepared = generator.prepare_batch(requests)  # a reference that cannot be sent is refused before anything is paid
    count = sum(len(r.keys) for r in requests)
    attempt = store.sessions.begin_attempt(
        user=campaign.user, session_id="", parent_id="", model=info.name, image_size=size,
        prompt=f"[batch] {campaign.template}", references=[], requested=count,
        estimate=info.estimate(count, size, batch=True), budget=settings.gemini_daily_budget_usd)
    try:
        job = generator.submit_batch(info.name, prepared, campaign.name)
    except GenerationError as exc:  # the job was not made: nothing is owed
        store.sessions.end_attempt(attempt, outcome="failed", images=0, cost=0.0, reason=str(exc))
        raise
    store.set_status(campaign.id, "batch", batch_job=job.name, batch_state=job.state, batch_attempt=attempt)
    return job.name


def poll(store: CampaignStore, generator: BatchGenerator, settings: Settings, models: ModelList, campaign: Campaign,
         get: Callable[[Sequence[str]], list[Asset]]) -> str:
    """Ask how the job is doing; when it has ended, keep its images as the items' versions. Returns its state."""
    if not campaign.batch_job:
        raise BananaError(f"Campaign {campaign.name!r} has no Batch job.")
    job = generator.poll_batch(campaign.batch_job)  # a GenerationError: the campaign keeps waiting, asked again later
    state, attempt = job.state, campaign.batch_attempt
    if not job.ended:
        store.set_status(campaign.id, "batch", batch_state=state)
        return state
    notes: list[str] = []  # images saved without content credentials, in words for History
    made = _land(store, generator, settings, models, campaign, get, job.answers, notes) if job.answers else 0
    if not job.succeeded:
        for item in store.items(campaign.id):
            if item.status != "done":
                store.update_item(campaign.id, item.seq, status="failed", error=f"the Batch job ended {state}")
    info = models.get(campaign.model)
    if attempt and campaign.status == "batch":  # ended once, even when polled again
        store.sessions.end_attempt(attempt, outcome="ok" if made else "failed", images=made,
                                   cost=info.estimate(made, info.size(campaign.image_size), batch=True),
                                   reason=" ".join(notes) if made else f"Batch job {state}")
    counts = store.counts(campaign.id)
    store.set_status(campaign.id, "done" if counts["done"] == sum(counts.values()) else "stopped", batch_state=state)
    return state


def _land(store: CampaignStore, generator: BatchGenerator, settings: Settings, models: ModelList, campaign: Campaign,
          get: Callable[[Sequence[str]], list[Asset]], answers: Sequence[BatchAnswer], notes: list[str]) -> int:
    """Each reply kept as a version of its item's session; an error stays with its item."""
    items = {i.seq: i for i in store.items(campaign.id)}
    known = {a.id: a for a in get(list({i.asset_id for i in items.values()} | set(campaign.shared_refs)))}
    info, made = models.get(campaign.model), 0
    finished = {seq for seq, i in items.items() if i.status == "done"}  # a job polled twice lands once
    for answer in answers:
        seq = int(answer.key.partition("-")[0]) if answer.key.partition("-")[0].isdigit() else 0
        item = items.get(seq)
        if item is None or seq in finished:
            continue
        reply = answer.reply
        if reply is None:  # one of per_item images: the item keeps the others
            store.update_item(campaign.id, seq, status="done" if item.version_ids else "failed", error=answer.error)
            continue
        refs = _refs(item, campaign, known)
        size = info.size(campaign.image_size)
        ask = Ask(item.prompt, refs, info, item.aspect_ratio, size, 1, campaign.user,
                  {"campaign": campaign.name, "campaign_id": campaign.id, "campaign_item": seq,
                   "batch_job": campaign.batch_job})
        session = store.sessions.session(item.session_id) if item.session_id else None
        # What a refinement sends again: the turn as it was sent, rebuilt (the job's answers do not repeat it).
        turn = generator.prepare_batch([BatchRequest(item.prompt, refs, item.aspect_ratio, size)]).turns[0]
        result = GenerationResult(images=reply.images, text=reply.text, prompt=item.prompt, model=info.name,
                                  aspect_ratio=item.aspect_ratio, references=refs, created=time.time(),
                                  image_size=size, replies=[reply], request=turn)
        session, versions, _ = keep_images(store.sessions, settings, session, None, ask, result, notes=notes)
        made += len(versions)
        ids = [*item.version_ids, *(v.id for v in versions)]
        store.update_item(campaign.id, seq, status="done" if ids else "failed", session_id=session.id if session else "",
                          version_ids=ids, error="" if ids else f"no image: {reply.text or 'the model said nothing'}")
        items[seq] = store.items(campaign.id)[seq - 1]
    return made

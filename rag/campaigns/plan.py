"""A campaign: one prompt template applied to many library assets, each with shared references.

The plan (every request, its text and its cost) is known before anything is sent, and refused
whole when the day's budget cannot pay for it. Each request is one refine turn (:func:`rag.generation.refine.run_turn`)
in a session of its own, so the budget, retries, attempts, provenance and later regenerations are
the sessions' own. The runner sends a few at a time; an item is marked running, with its session,
before its request goes, so a run killed part-way resumes from the unfinished items and never
pays again for an image that arrived.
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.campaigns.records import Campaign, CampaignStore, Item
from rag.core import Asset, BananaError, BudgetExceeded, Settings
from rag.generation import MAX_PROMPT_CHARS, Ask, ImageGenerator, ModelInfo, ModelList, SessionStore, run_turn

FIELDS = ("name", "filename", "folder", "tags")
MAX_CAMPAIGN_IMAGES = 2000  # images one campaign may make (items x ratios x per item), whatever the budget
Progress = Callable[[int, int, str], None]


def asset_name(asset: Asset) -> str:
    """``peach_simple.png`` → ``peach simple``: how a template speaks of a product."""
    return " ".join(Path(asset.filename).stem.replace("_", " ").replace("-", " ").split())


def check_template(template: str) -> None:
    """Refuse a template with an unknown or malformed placeholder before anything is planned."""
    if not template.strip():
        raise BananaError('Write a prompt template, such as "A premium ad photo of {name} on a marble counter".')
    if len(template) > MAX_PROMPT_CHARS:
        raise BananaError(f"The template is {len(template):,} characters; a prompt may have at most {MAX_PROMPT_CHARS:,}.")
    fields = _fields(template)
    unknown = ["{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
               for f, spec, conv in fields if f not in FIELDS or spec or conv]
    if unknown:
        raise BananaError(f"The template has an unknown placeholder {unknown[0][:40]}; use "
                          f"{', '.join('{' + f + '}' for f in FIELDS)} as they are, without : or !.")


def _fields(template: str) -> list[tuple[str, str, str]]:
    """Each placeholder's (name, format spec, conversion); a sentence for braces that do not match."""
    try:
        return [(f, spec or "", conv or "") for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise BananaError(f"The template's braces do not match ({exc}); write {{{{ and }}}} for a literal brace.") from None


def render(template: str, asset: Asset) -> str:
    """The template filled in for one asset: plain substitution of :func:`check_template`'s fields, never
    ``str.format`` (whose specs could ask for any width), and never longer than a prompt may be."""
    tags = asset.meta.get("tags") or []
    values = {"name": asset_name(asset), "filename": asset.filename, "folder": asset.folder,
              "tags": ", ".join(str(t) for t in tags)}
    out = "".join(literal + (values[f] if f is not None else "") for literal, f, _, _ in string.Formatter().parse(template))
    if len(out) > MAX_PROMPT_CHARS:
        raise BananaError(f"The template makes a prompt of {len(out):,} characters for {asset.filename}; "
                          f"a prompt may have at most {MAX_PROMPT_CHARS:,}.")
    return out.strip()


@dataclass(frozen=True)
class Plan:
    """Everything a campaign would send, and what it would cost, before anything is."""

    campaign: Campaign
    requests: list[tuple[Asset, str, str]]  # (source asset, aspect ratio, prompt)
    shared: list[Asset]
    model: ModelInfo
    estimate_usd: float
    budget_left: float | None  # None: no daily cap

    @property
    def images(self) -> int:
        return len(self.requests) * self.campaign.per_item

    def fits(self) -> bool:
        return self.budget_left is None or self.estimate_usd <= self.budget_left + 1e-9

    def summary(self) -> str:
        left = "no daily cap" if self.budget_left is None else f"${self.budget_left:.2f} of today's budget left"
        mode = " in Batch mode (about half price)" if self.campaign.mode == "batch" else ""
        return (f"{len(self.requests)} requests ({self.images} images) on {self.model.name}{mode}: about "
                f"${self.estimate_usd:.2f}; {left}.")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.campaign.name, "requests": [{"asset_id": a.id, "asset": a.filename, "aspect_ratio": r,
                                                          "prompt": p} for a, r, p in self.requests],
                "shared_refs": [a.id for a in self.shared], "model": self.model.name, "images": self.images,
                "estimate_usd": self.estimate_usd, "budget_left": self.budget_left, "mode": self.campaign.mode}


def make_plan(campaign: Campaign, assets: Sequence[Asset], shared: Sequence[Asset], models: ModelList,
              sessions: SessionStore, budget: float | None) -> Plan:
    """The campaign's requests (each asset at each aspect ratio), checked against the model, and their cost."""
    check_template(campaign.template)
    if not assets:
        raise BananaError(f"No library images match {campaign.source}; choose a folder, search or tag that has some.")
    if not campaign.aspect_ratios:
        raise BananaError("Choose at least one aspect ratio.")
    images = len(assets) * len(campaign.aspect_ratios) * campaign.per_item
    if images > MAX_CAMPAIGN_IMAGES:
        raise BananaError(f"This campaign would make {images:,} images; one campaign makes at most "
                          f"{MAX_CAMPAIGN_IMAGES:,}. Choose fewer images, aspect ratios or images per item.")
    info = models.get(campaign.model)
    requests = [(a, ratio, render(campaign.template, a)) for a in assets for ratio in campaign.aspect_ratios]
    for asset, ratio, prompt in requests[: len(campaign.aspect_ratios)]:  # the same checks for every item
        info.check(prompt, len({asset.id, *(s.id for s in shared)}), ratio, info.size(campaign.image_size),
                   campaign.per_item)
    estimate = info.estimate(len(requests) * campaign.per_item, info.size(campaign.image_size),
                             batch=campaign.mode == "batch")
    left = None if budget is None else max(0.0, round(budget - sessions.spent(), 4))
    return Plan(campaign, requests, list(shared), info, estimate, left)


@dataclass
class Runner:
    """Sends a campaign's unfinished items, ``concurrency`` at a time; ``cancel`` stops it between items."""

    store: CampaignStore
    generator: ImageGenerator
    settings: Settings
    models: ModelList
    get: Callable[[Sequence[str]], list[Asset]]
    cancel: threading.Event = field(default_factory=threading.Event)
    _halt: str = ""  # why nothing more is sent (the budget ran out)

    def run(self, campaign: Campaign, progress: Progress | None = None, items: Sequence[Item] | None = None) -> str:
        """Run ``items`` (default: every unfinished one) and return the campaign's new status."""
        todo = list(items) if items is not None else [i for i in self.store.items(campaign.id) if i.status != "done"]
        known = {a.id: a for a in self.get(list({i.asset_id for i in todo} | set(campaign.shared_refs)))}
        lock, done = threading.Lock(), [0]
        self.store.set_status(campaign.id, "running")

        def one(item: Item) -> None:
            self._item(campaign, item, known)
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(done[0], len(todo), f"{done[0]} of {len(todo)}: {item.asset_name} {item.aspect_ratio}")

        with ThreadPoolExecutor(max(1, self.settings.campaign_concurrency), thread_name_prefix="campaign") as pool:
            try:
                list(pool.map(one, todo))
            except BaseException:  # Ctrl+C: the requests in flight finish, the rest are not sent
                self.cancel.set()
                raise
        counts = self.store.counts(campaign.id)
        status = "done" if counts["done"] == sum(counts.values()) else "cancelled" if self.cancel.is_set() else "stopped"
        self.store.set_status(campaign.id, status)
        if self._halt:
            raise BudgetExceeded(self._halt)
        return status

    def _item(self, campaign: Campaign, item: Item, known: dict[str, Asset]) -> None:
        """One request; its failure is the item's, never the campaign's."""
        if self.cancel.is_set() or self._halt:
            return
        sessions = self.store.sessions
        if item.status == "running" and item.session_id:  # the process stopped while this item ran
            made = [v.id for v in sessions.versions(item.session_id) if v.turn_id]
            self._interrupted(campaign, item)
            if made:  # its image arrived first: paid for, kept, not asked again
                self.store.update_item(campaign.id, item.seq, status="done", version_ids=made)
                return
        source, shared = known.get(item.asset_id), [known[i] for i in campaign.shared_refs if i in known]
        if source is None or len(shared) < len(campaign.shared_refs):
            self.store.update_item(campaign.id, item.seq, status="failed",
                                   error="its source image or a shared reference is no longer in the library")
            return
        self._send(campaign, item, [source, *shared])

    def _send(self, campaign: Campaign, item: Item, refs: list[Asset]) -> None:
        """The item's turn in its own session, marked running (with the session) before anything is sent."""
        sessions = self.store.sessions
        session = sessions.session(item.session_id) if item.session_id else sessions.new_session(
            user=campaign.user, title=item.prompt)
        self.store.update_item(campaign.id, item.seq, status="running", session_id=session.id)
        info = self.models.get(campaign.model)
        ask = Ask(item.prompt, refs, info, item.aspect_ratio, info.size(campaign.image_size),
                  campaign.per_item, campaign.user, {"campaign": campaign.name, "campaign_id": campaign.id,
                                                     "campaign_item": item.seq})
        try:
            run = run_turn(sessions, self.generator, self.settings, session, None, ask)
        except BudgetExceeded as exc:
            self._halt = str(exc)
            self.store.update_item(campaign.id, item.seq, status="pending", error=str(exc))
            return
        except BananaError as exc:
            self.store.update_item(campaign.id, item.seq, status="failed", error=str(exc))
            return
        status, why = ("done", "") if run.versions else ("failed", f"no image: {run.result.text or 'the model said nothing'}")
        self.store.update_item(campaign.id, item.seq, status=status, error=why,
                               version_ids=[*item.version_ids, *(v.id for v in run.versions)])

    def _interrupted(self, campaign: Campaign, item: Item) -> None:
        """An attempt left pending by a stopped process ends as "interrupted", at its estimate: it may have been paid."""
        for attempt in self.store.sessions.attempts(1000, user=campaign.user):
            if attempt.session_id == item.session_id and attempt.outcome == "pending":
                self.store.sessions.end_attempt(attempt.id, outcome="interrupted", images=0, cost=attempt.cost_usd,
                                                reason="the process stopped while this request ran; it may have been paid")

"""Campaigns: choose assets, plan, run, review and save a campaign.

:class:`CampaignService` is what :class:`rag.studio.Studio` delegates these to; the work is in
:mod:`rag.campaigns.plan` (plan and runner) and :mod:`rag.campaigns.records` (the records). Every lookup
takes ``user`` (None: no check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.campaigns import (
    LEASE_S,
    Campaign,
    CampaignReview,
    CampaignStore,
    Item,
    Plan,
    Progress,
    Runner,
    approved_unsaved,
    batch,
    lease_holder,
    make_plan,
)
from rag.core import Asset, BananaError, BudgetExceeded, Hit, NothingToDo, Settings
from rag.generation import ImageGenerator, ModelList, SessionStore
from rag.library import IngestReport, LibraryFilter, LibraryPage, clean_campaign_name
from rag.search import Query
from rag.store import VectorStore

log = logging.getLogger(__name__)
MAX_ASSETS = 500  # one campaign; a bigger product line is several
REGENERATE = ("rejected", "text differs")  # which items "Regenerate" sends again


class CampaignService:
    """A campaign's life, given each collaborator it uses rather than the whole Studio.

    The lazy pieces come as getters, so nothing is opened or built before a campaign needs it: ``store``
    (Milvus), ``generator`` (Gemini), ``sessions`` and ``campaign_store`` (sessions.db). ``settings`` is a
    getter too, since Studio's settings can be replaced. ``search``, ``library_page``, ``references`` and
    ``save_generated`` are Studio's methods of those names: how a campaign's assets are chosen and its
    approved images saved. The campaigns running in this process are kept here, to cancel them.
    """

    def __init__(self, settings: Callable[[], Settings], model_list: ModelList, store: Callable[[], VectorStore],
                 generator: Callable[[], ImageGenerator], sessions: Callable[[], SessionStore],
                 campaign_store: Callable[[], CampaignStore], search: Callable[[Query], list[Hit]],
                 library_page: Callable[..., LibraryPage], references: Callable[[Sequence[str]], list[Asset]],
                 save_generated: Callable[[Sequence[str | Path]], IngestReport]) -> None:
        self._settings = settings
        self._model_list = model_list
        self._store = store
        self._generator = generator
        self._sessions = sessions
        self._campaign_store = campaign_store
        self._search = search
        self._library_page = library_page
        self._references = references
        self._save_generated = save_generated
        self._running: dict[str, threading.Event] = {}  # campaigns running in this process, by id

    def campaign_assets(self, *, folder: str = "", query: str = "", tag: str = "", ids: Sequence[str] = (),
                        limit: int = 50) -> tuple[list[Asset], str]:
        """The assets a campaign covers and how they were chosen, in words: a folder, a search, a tag or ids."""
        chosen = [x for x in (folder, query, tag) if x.strip()] + ([ids] if ids else [])
        if len(chosen) != 1:
            raise BananaError("Choose the campaign's images one way: a folder, a search, a tag, or marked rows.")
        if folder.strip() or tag.strip():
            picked = LibraryFilter(folders=(folder.strip(),) if folder.strip() else (), tags=(tag.strip(),) if tag.strip() else ())
            page = self._library_page(picked, limit=MAX_ASSETS)
            source = f"folder {folder}" if folder.strip() else f"tag {tag}"
            if page.total > MAX_ASSETS:
                raise BananaError(f"The {source} holds {page.total:,} images; a campaign covers at most {MAX_ASSETS}. "
                                  "Choose a subfolder or a tag, and run the rest as another campaign.")
            return sorted(page.assets, key=lambda a: a.filename), source
        if query.strip():
            return [h.asset for h in self._search(Query(text=query.strip(), k=min(limit, MAX_ASSETS)))], \
                f"search {query.strip()!r}"
        if len(set(ids)) > MAX_ASSETS:
            raise BananaError(f"{len(set(ids)):,} images are chosen; a campaign covers at most {MAX_ASSETS}.")
        return self._references(list(dict.fromkeys(ids))), f"{len(ids)} chosen images"

    def plan_campaign(self, template: str, *, folder: str = "", query: str = "", tag: str = "", ids: Sequence[str] = (),
                      refs: Sequence[str] = (), name: str = "", model: str = "", aspect_ratios: Sequence[str] = ("1:1",),
                      per_item: int = 1, image_size: str = "", batch: bool = False, user: str = "",
                      limit: int = 50) -> Plan:
        """What a campaign would send and cost; nothing is recorded or sent (``--dry-run``, the UI's preview)."""
        assets, source = self.campaign_assets(folder=folder, query=query, tag=tag, ids=ids, limit=limit)
        shared = self._references(list(dict.fromkeys(refs)))
        info = self._model_list.usable(model)
        campaign = Campaign(id="", created=time.time(), user=user, name=clean_campaign_name(name) or f"{source[:100]} {time.strftime('%Y-%m-%d %H:%M')}",
                            source=source, template=template.strip(), model=info.name, image_size=info.size(image_size),
                            aspect_ratios=list(dict.fromkeys(aspect_ratios)), per_item=int(per_item),
                            shared_refs=[a.id for a in shared], mode="batch" if batch else "now", status="planned")
        return make_plan(campaign, assets, shared, self._model_list, self._sessions(), self._settings().gemini_daily_budget_usd)

    def start_campaign(self, plan: Plan) -> Campaign:
        """Record a planned campaign (refused whole when today's budget cannot pay for it); run it next."""
        if not plan.fits():
            raise BudgetExceeded(f"This campaign would cost about ${plan.estimate_usd:.2f} and ${plan.budget_left:.2f} of "
                                 "today's budget set for this app is left, so nothing was sent. Choose fewer images, "
                                 "ratios or images per item, or ask whoever runs the app to raise the budget.")
        campaign = replace(plan.campaign, estimate_usd=plan.estimate_usd)
        return self._campaign_store().create(campaign, [(a.id, a.filename, r, p) for a, r, p in plan.requests])

    def run_campaign(self, campaign_id: str, *, user: str | None = None, progress: Progress | None = None,
                     cancel: threading.Event | None = None) -> Campaign:
        """Send the campaign's unfinished items ("now" mode): a resumed run starts at the first unfinished one."""
        campaign = self._campaign_store().campaign(campaign_id, user)
        with self._runner(campaign, cancel) as runner:
            runner.run(campaign, progress)
        return self._campaign_store().campaign(campaign.id)

    def resume_campaign(self, campaign_id: str, *, user: str | None = None,
                        progress: Progress | None = None) -> Campaign:
        """Carry a campaign on in its own mode: a Batch campaign's job is polled (or submitted, when its
        submission never went through, so it is never sent at the interactive price); a "now" campaign
        sends its unfinished items."""
        campaign = self._campaign_store().campaign(campaign_id, user)
        if campaign.mode != "batch":
            return self.run_campaign(campaign.id, user=user, progress=progress)
        return self._batch(campaign)

    def cancel_campaign(self, campaign_id: str, *, user: str | None = None) -> bool:
        """Stop a running campaign after the requests in flight; False when it is not running here."""
        event = self._running.get(self._campaign_store().campaign(campaign_id, user).id)
        if event is not None:
            event.set()
        return event is not None

    def regenerate_item(self, campaign_id: str, seq: int, *, user: str | None = None) -> Item:
        """A rejected item again: a new version in its session, beside the ones already reviewed."""
        records = self._campaign_store()
        campaign = records.campaign(campaign_id, user)
        item = next((i for i in records.items(campaign.id) if i.seq == int(seq)), None)
        if item is None:
            raise BananaError(f"Campaign {campaign.name!r} has no item {seq}.")
        with self._runner(campaign, None) as runner:
            runner.run(campaign, items=[item])
        return next(i for i in records.items(campaign.id) if i.seq == item.seq)

    def regenerate_rejected(self, campaign_id: str, *, user: str | None = None,
                            progress: Callable[[int, int, Item], None] | None = None,
                            which: str = "rejected") -> list[Item]:
        """Every item whose latest image was rejected (``which="text differs"``: whose text does not read as its
        prompt's quotes), again (paid), one after another; ``progress(done, total, item)``."""
        if which not in REGENERATE:
            raise BananaError(f"Regenerate the rejected images or those whose text differs, not {str(which)[:40]!r}.")
        review = self.campaign_review(campaign_id, user=user)
        rejected = review.rejected if which == "rejected" else review.text_differs
        made = []
        for n, item in enumerate(rejected):
            if progress is not None:
                progress(n, len(rejected), item)
            made.append(self.regenerate_item(campaign_id, item.seq, user=user))
        return made

    def campaigns(self, limit: int = 50, *, user: str | None = None) -> list[Campaign]:
        return self._campaign_store().campaigns(limit, user)

    def campaign_review(self, campaign_id: str, *, user: str | None = None) -> CampaignReview:
        records = self._campaign_store()
        return records.review_of(records.campaign(campaign_id, user))

    def open_campaign(self, campaign_id: str, *, user: str | None = None) -> tuple[Campaign, list[Item]]:
        records = self._campaign_store()
        campaign = records.campaign(campaign_id, user)
        return campaign, records.items(campaign.id)

    def review_campaign(self, campaign_id: str, version_ids: Sequence[str], verdict: str, *,
                        user: str | None = None, only_waiting: bool = False) -> list[str]:
        """Approve or reject campaign images (``verdict`` "" clears the review); returns the ids given the verdict.
        ``only_waiting``: those still without a verdict, no other (Approve the rest, on the results a page showed:
        one marked in another tab since keeps its mark)."""
        campaign, items = self.open_campaign(campaign_id, user=user)
        mine = {v for i in items for v in i.version_ids}
        strangers = [v for v in version_ids if v not in mine]
        if strangers:
            raise BananaError(f"{strangers[0]!r} is not an image of campaign {campaign.name!r}.")
        if only_waiting:
            waiting = set(self.campaign_review(campaign.id, user=user).unreviewed)
            version_ids = [v for v in version_ids if v in waiting]
        for version_id in version_ids:
            self._campaign_store().review(campaign.id, version_id, verdict)
        return list(version_ids)

    def save_approved(self, campaign_id: str, *, user: str | None = None) -> IngestReport:
        """Add the approved images not saved yet to the library: ``parents`` = source + shared references,
        ``campaign`` = its name (a field, and a ``campaign:NAME`` tag the grid filters on)."""
        records = self._campaign_store()
        campaign = records.campaign(campaign_id, user)
        verdicts = records.verdicts(campaign.id)
        todo = [self._sessions().version(v) for v in approved_unsaved(verdicts)]
        if not todo:
            raise NothingToDo("Nothing new to save: no approved images are waiting (approved ones are saved once).")
        report = self._save_generated([v.path for v in todo])
        stored = {a.id for a in report.added} | {i for _, i in report.duplicates}
        for version in todo:
            if version.image_id in stored:
                records.review(campaign.id, version.id, "approved", saved_id=version.image_id)
        return report

    def submit_campaign_batch(self, campaign_id: str, *, user: str | None = None) -> Campaign:
        """Batch mode: submit the unfinished items as one Gemini Batch job (about half price, within 24 h)."""
        return self._batch(self._campaign_store().campaign(campaign_id, user), batch.submit)

    def poll_campaign_batch(self, campaign_id: str, *, user: str | None = None) -> Campaign:
        """Ask how a campaign's Batch job is doing; when it has ended, its images land in the campaign."""
        return self._batch(self._campaign_store().campaign(campaign_id, user), batch.poll)

    def poll_batches(self) -> list[Campaign]:
        """Poll every campaign waiting on a Batch job (the app does this in the background); returns them."""
        waiting = [c for c in self._campaign_store().campaigns(500) if c.status == "batch"]
        for campaign in waiting:
            try:
                self.poll_campaign_batch(campaign.id)
            except BananaError as exc:
                log.warning("Polling the Batch job of campaign %s failed: %s", campaign.id, exc)
        return waiting

    def _batch(self, campaign: Campaign, step: Callable[..., Any] | None = None) -> Campaign:
        """A Batch step (submit or poll; without ``step``, whichever the campaign needs) with the campaign held,
        decided once held: two Resumes never submit two paid jobs."""
        with self._lease(campaign) as held:
            (step or (batch.poll if held.batch_job else batch.submit))(
                self._campaign_store(), self._generator(), self._settings(), self._model_list, held, self._store().get)
        return self._campaign_store().campaign(campaign.id)

    @contextmanager
    def _lease(self, campaign: Campaign) -> Iterator[Campaign]:
        """The campaign held by this block alone, across threads and processes (a lease row in sessions.db,
        renewed while the block runs); yields the campaign as it is once held."""
        holder, stop = lease_holder(), threading.Event()
        self._campaign_store().take_lease(campaign.id, holder)

        def renew() -> None:
            while not stop.wait(LEASE_S / 3):
                self._campaign_store().take_lease(campaign.id, holder)

        keeper = threading.Thread(target=renew, name=f"lease-{campaign.id}", daemon=True)
        keeper.start()
        try:
            yield self._campaign_store().campaign(campaign.id)
        finally:
            stop.set()
            keeper.join(timeout=5)
            self._campaign_store().release_lease(campaign.id, holder)

    @contextmanager
    def _runner(self, campaign: Campaign, cancel: threading.Event | None) -> Iterator[Runner]:
        """The campaign's one runner, held (:meth:`_lease`) and cancellable here until the block ends, however it ends."""
        self._model_list.usable(campaign.model)  # shut down since it was planned: say so before anything is sent
        with self._lease(campaign):
            runner = Runner(self._campaign_store(), self._generator(), self._settings(), self._model_list,
                            self._store().get, cancel or threading.Event())
            self._running[campaign.id] = runner.cancel
            try:
                yield runner
            finally:
                self._running.pop(campaign.id, None)

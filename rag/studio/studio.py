"""One object that wires settings, model, store and generator together.

The UI and the CLI both build a :class:`Studio` and call it; they hold no logic of their own. The work is
done by the services beside this module, each given only the collaborators it uses; Studio builds them,
owns the heavy pieces (opened on first use, :mod:`rag.studio.resources`) and delegates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from rag import generation as gen
from rag.campaigns import Campaign, CampaignReview, CampaignStore, Item, Plan
from rag.clip import ClipEmbedder, Embedder
from rag.core import SAMPLE_DIR, Asset, Hit, Settings
from rag.library import IngestReport, LibraryFilter, LibraryIndex, LibraryPage, Progress, ReindexReport, Trash, captions
from rag.library import assets as asset_pages
from rag.library import grid as lib
from rag.search import Query, SearchResults, search_results
from rag.store import QUERY_PAGE, VectorStore
from rag.studio.assets import AssetPages
from rag.studio.campaigns import CampaignService
from rag.studio.credentials import CredentialsService
from rag.studio.ingest import IngestService
from rag.studio.maintenance import LibraryMaintenance, app_owns
from rag.studio.ocr import OcrService
from rag.studio.regions import RegionService
from rag.studio.resources import Resources
from rag.studio.reviews import ReviewService
from rag.studio.sessions import GenerationService


class Studio:
    """The one object the UI and the CLI call: ingest, search, library, generation, sessions, campaigns.

    It owns the lazy pieces and hands the services getters for them, so building a Studio connects to
    nothing; the services' methods are documented where they are implemented."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, store: VectorStore | None = None,
                 generator: gen.ImageGenerator | None = None) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or ClipEmbedder(settings)
        self._parts = Resources(lambda: self.settings, self.embedder, store, generator)
        self.model_list = gen.ModelList(lambda: self.generator.models(), settings.gemini_model,
                                    caption=settings.caption_model)
        self.trash = Trash(settings.trash_dir, lambda path: app_owns(self.settings, path))  # for the Trash view
        self._build_services()

    def _build_services(self) -> None:
        """The services, each given what it uses: getters keep the store, generator and databases lazy
        and follow a replaced ``settings`` (the CLI's ``--out``)."""
        parts, config = self._parts, (lambda: self.settings)
        store, generator, sessions = (lambda: parts.store), (lambda: parts.generator), (lambda: parts.sessions)
        writes = threading.Lock()  # embedding saturates the CPU: one ingest or re-index at a time
        self.ocr = OcrService(config, store, writes)  # the text in the pictures, read after ingests (rag/studio/ocr.py)
        self._ingest = IngestService(config, self.embedder, store, writes, after=self.ocr.queue_report)
        self._maintenance = LibraryMaintenance(config, self.embedder, store, self.trash, parts.close, writes)
        self._pages = AssetPages(config, store, self.trash, self._ingest.ingest_files)
        self._generation = GenerationService(config, self.model_list, store, generator, parts.generator_built,
                                             sessions, self.search, self._ingest.ingest_files, self._pages.preview)
        self._campaigns = CampaignService(config, self.model_list, store, generator, sessions,
                                          lambda: parts.campaign_store, self.search, self._pages.library_page,
                                          self._generation.references, self._generation.save_generated)
        self.regions = RegionService(config, self.model_list, generator, sessions)  # region edits (rag/studio/regions.py)
        self.reviews = ReviewService(config, sessions, store, self._pages.preview, self._campaigns, self._generation)
        self.credentials = CredentialsService(config, store)  # content credentials (rag/studio/credentials.py)

    @classmethod
    def from_env(cls) -> Studio:
        return cls(Settings.from_env())

    # -- the heavy pieces, opened on first use (rag/studio/resources.py) --------------------
    def warm_up(self) -> None:
        self._parts.warm_up()

    def close(self) -> None:
        self.ocr.stop()
        self._parts.close()

    @property
    def store(self) -> VectorStore:
        return self._parts.store

    @property
    def generator(self) -> gen.ImageGenerator:
        return self._parts.generator

    @property
    def sessions(self) -> gen.SessionStore:
        return self._parts.sessions

    @property
    def campaign_store(self) -> CampaignStore:
        return self._parts.campaign_store

    # -- ingest (rag/studio/ingest.py) ------------------------------------------------------
    def ingest_folder(self, root: str | Path, *, progress: Progress | None = None) -> IngestReport:
        return self._ingest.ingest_folder(root, progress=progress)

    def ingest_allowed_folder(self, path: str | Path, *, progress: Progress | None = None) -> IngestReport:
        return self._ingest.ingest_allowed_folder(path, progress=progress)

    def ingest_files(self, paths: Sequence[str | Path], *, source: str = "upload", folder: str = "uploads",
                     names: dict[Path, str] | None = None, folders: dict[Path, str] | None = None,
                     meta: dict[str, Any] | None = None, progress: Progress | None = None) -> IngestReport:
        return self._ingest.ingest_files(paths, source=source, folder=folder, names=names, folders=folders, meta=meta,
                                         progress=progress)

    def ingest_uploads(self, paths: Sequence[str | Path], *, folder: str = "uploads", tags: str | Sequence[str] = "",
                       progress: Progress | None = None) -> IngestReport:
        return self._ingest.ingest_uploads(paths, folder=folder, tags=tags, progress=progress)

    def preview(self, asset: Asset, *, large: bool = False, make: bool = True) -> Path | None:
        return self._pages.preview(asset, large=large, make=make)

    # -- search -----------------------------------------------------------------------------
    def search(self, query: Query | str = "", /, **options: Any) -> list[Hit]:
        """Search the library with a :class:`Query`, or with text and the query's options as keywords."""
        return self.search_results(query, **options).hits

    def search_results(self, query: Query | str = "", /, **options: Any) -> SearchResults:
        """:meth:`search`, with the cut-off count and the word-search notice a person should see."""
        if not isinstance(query, Query):
            query = Query.of({"text": query, **options})
        elif options:
            query = replace(query, **options)
        return search_results(self.embedder, self.store, query)

    def words_notice(self) -> str:
        """Why word search is off (an old Milvus server, a library to re-index), or ""."""
        return self.store.words_notice

    def caption_plan(self, *, limit: int = 0) -> captions.CaptionPlan:
        """Which images have no words, and what captioning them with CAPTION_MODEL should cost."""
        return captions.plan(self.store, self.model_list.caption_model(), limit)

    def caption(self, chosen: captions.CaptionPlan, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Caption the planned images with Gemini (recorded in History); returns how many."""
        return captions.run(chosen, self.store, self.generator, self.sessions, self.settings, progress=progress)

    # -- library ----------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Asset]:
        return self.store.get(ids)

    def count(self) -> int:
        return self.store.count()

    def stats(self) -> dict[str, Any]:
        return self._maintenance.stats() | {"generation": self.generation_status()[1], "text_in_images": self.ocr.stats()}

    def table(self, *, folders: Sequence[str] = (), sources: Sequence[str] = (), limit: int = 1000, offset: int = 0,
              chosen: LibraryFilter | None = None) -> pd.DataFrame:
        return self._pages.table(folders=folders, sources=sources, limit=limit, offset=offset, chosen=chosen)

    # -- asset pages and the Trash (rag/studio/assets.py) -----------------------------------
    @property
    def library(self) -> LibraryIndex:
        return self._pages.library

    def library_page(self, chosen: LibraryFilter | None = None, *, offset: int = 0, limit: int = lib.PAGE_SIZE) -> LibraryPage:
        return self._pages.library_page(chosen, offset=offset, limit=limit)

    def asset(self, asset_id: str) -> asset_pages.AssetDetails:
        return self._generation.name_unsaved(self._pages.asset(asset_id))

    def set_tags(self, asset_id: str, tags: str | Sequence[str]) -> Asset:
        return self._pages.set_tags(asset_id, tags)

    def add_tags(self, ids: Sequence[str], tags: str | Sequence[str]) -> int:
        return self._pages.add_tags(ids, tags)

    def move(self, ids: Sequence[str], folder: str) -> int:
        return self._pages.move(ids, folder)

    def delete(self, ids: Iterable[str]) -> int:
        return self._pages.delete(ids)

    def restore(self, ids: Sequence[str]) -> tuple[list[Asset], list[tuple[str, str]]]:
        return self._pages.restore(ids)

    def add_sample_library(self, *, progress: Progress | None = None, sample: Path = SAMPLE_DIR) -> IngestReport:
        return self._pages.add_sample_library(progress=progress, sample=sample)

    def duplicate_reasons(self, report: IngestReport) -> list[tuple[str, str]]:
        return self._pages.duplicate_reasons(report)

    def placeholder(self) -> Path:
        return self._pages.placeholder()

    # -- backups, export, re-index (rag/studio/maintenance.py) ------------------------------
    def reindex(self, *, re_embed: bool = False, batch: int = 256, drop_missing: bool = False,
                progress: Callable[[int, int], None] | None = None) -> ReindexReport:
        return self._maintenance.reindex(re_embed=re_embed, batch=batch, drop_missing=drop_missing, progress=progress)

    def remove_orphans(self) -> list[Path]:
        return self._maintenance.remove_orphans()

    def export(self, path: str | Path, *, batch: int = QUERY_PAGE, progress: Callable[[int], None] | None = None) -> int:
        return self._maintenance.export(path, batch=batch, progress=progress)

    def import_(self, path: str | Path, *, batch: int = QUERY_PAGE, force: bool = False,
                rebase: tuple[str, str] | None = None, progress: Callable[[int], None] | None = None) -> int:
        return self._maintenance.import_(path, batch=batch, force=force, rebase=rebase, progress=progress)

    def backup(self) -> Path:
        return self._maintenance.backup()

    def restore_backup(self, backup: str | Path | None = None, *, progress: Callable[[int], None] | None = None) -> tuple[Path | None, int]:
        return self._maintenance.restore_backup(backup, progress=progress)

    # -- generation, models and sessions (rag/studio/sessions.py) ---------------------------
    def references(self, ids: Sequence[str] = (), files: Sequence[str | Path] = ()) -> list[Asset]:
        return self._generation.references(ids, files)

    def find_references(self, prompt: str, n: int = 0, *, model: str = "", keep: Sequence[str] = (),
                        query: Query | None = None) -> list[Asset]:
        return self._generation.find_references(prompt, n, model=model, keep=keep, query=query)

    def generate(self, prompt: str, *, reference_ids: Sequence[str] = (), reference_files: Sequence[str | Path] = (),
                 aspect_ratio: str = "1:1", n: int = 1, model: str = "", image_size: str = "", session_id: str = "",
                 user: str = "", notify: gen.Notify | None = None, auto_refs: int = 0,
                 found: dict[str, Any] | None = None) -> gen.Generation:
        return self._generation.generate(
            prompt, reference_ids=reference_ids, reference_files=reference_files, aspect_ratio=aspect_ratio, n=n,
            model=model, image_size=image_size, session_id=session_id, user=user, notify=notify, auto_refs=auto_refs,
            found=found)

    def refine(self, session_id: str, instruction: str, *, from_version: str = "", aspect_ratio: str = "",
               image_size: str = "", n: int = 1, model: str = "", continue_on: str = "", user: str = "",
               notify: gen.Notify | None = None) -> gen.Generation:
        return self._generation.refine(
            session_id, instruction, from_version=from_version, aspect_ratio=aspect_ratio, image_size=image_size, n=n,
            model=model, continue_on=continue_on, user=user, notify=notify)

    def save_generated(self, paths: Sequence[str | Path], *, progress: Progress | None = None) -> IngestReport:
        return self._generation.save_generated(paths, progress=progress)

    def models(self) -> list[gen.ModelInfo]:
        return self._generation.models()

    def model_choice(self) -> gen.Choice:
        return self._generation.model_choice()

    def model_offers(self) -> list[dict[str, Any]]:
        return self._generation.model_offers()

    @property
    def max_references(self) -> int:
        return self._generation.max_references

    def generation_status(self) -> tuple[bool, str]:
        return self._generation.generation_status()

    def replacement_for(self, model: str) -> gen.ModelInfo | None:
        return self._generation.replacement_for(model)

    def start_session(self, *, base_asset_id: str, user: str = "") -> gen.Session:
        return self._generation.start_session(base_asset_id=base_asset_id, user=user)

    def open_session(self, session_id: str, *, user: str = "") -> tuple[gen.Session, list[gen.Version]]:
        return self._generation.open_session(session_id, user=user)

    def version(self, version_id: str, *, user: str = "") -> gen.Version:
        return self._generation.version(version_id, user=user)

    def versions_at(self, paths: Sequence[str | Path], *, user: str = "") -> list[gen.Version]:
        return self._generation.versions_at(paths, user=user)

    def recent_sessions(self, limit: int = 20, *, user: str | None = None) -> list[gen.Session]:
        return self._generation.recent_sessions(limit, user=user)

    def history(self, limit: int = 200, *, user: str | None = None, day: str | None = None) -> list[gen.Attempt]:
        return self._generation.history(limit, user=user, day=day)

    def spend(self, days: int = 30, *, user: str | None = None) -> dict[str, Any]:
        return self._generation.spend(days, user=user)

    def save_versions(self, version_ids: Sequence[str], *, user: str = "", progress: Progress | None = None) -> IngestReport:
        return self._generation.save_versions(version_ids, user=user, progress=progress)

    def version_preview(self, version: gen.Version) -> Path | None:
        return self._generation.version_preview(version)

    # -- campaigns (rag/studio/campaigns.py) ------------------------------------------------
    def campaign_assets(self, *, folder: str = "", query: str = "", tag: str = "", ids: Sequence[str] = (),
                        limit: int = 50) -> tuple[list[Asset], str]:
        return self._campaigns.campaign_assets(folder=folder, query=query, tag=tag, ids=ids, limit=limit)

    def plan_campaign(self, template: str, *, folder: str = "", query: str = "", tag: str = "", ids: Sequence[str] = (),
                      refs: Sequence[str] = (), name: str = "", model: str = "", aspect_ratios: Sequence[str] = ("1:1",),
                      per_item: int = 1, image_size: str = "", batch: bool = False, user: str = "",
                      limit: int = 50) -> Plan:
        return self._campaigns.plan_campaign(
            template, folder=folder, query=query, tag=tag, ids=ids, refs=refs, name=name, model=model,
            aspect_ratios=aspect_ratios, per_item=per_item, image_size=image_size, batch=batch, user=user, limit=limit)

    def start_campaign(self, plan: Plan) -> Campaign:
        return self._campaigns.start_campaign(plan)

    def run_campaign(self, campaign_id: str, *, user: str | None = None, progress: Progress | None = None,
                     cancel: threading.Event | None = None) -> Campaign:
        return self._campaigns.run_campaign(campaign_id, user=user, progress=progress, cancel=cancel)

    def resume_campaign(self, campaign_id: str, *, user: str | None = None, progress: Progress | None = None) -> Campaign:
        return self._campaigns.resume_campaign(campaign_id, user=user, progress=progress)

    def cancel_campaign(self, campaign_id: str, *, user: str | None = None) -> bool:
        return self._campaigns.cancel_campaign(campaign_id, user=user)

    def regenerate_item(self, campaign_id: str, seq: int, *, user: str | None = None) -> Item:
        return self._campaigns.regenerate_item(campaign_id, seq, user=user)

    def regenerate_rejected(self, campaign_id: str, *, user: str | None = None,
                            progress: Callable[[int, int, Item], None] | None = None, which: str = "rejected") -> list[Item]:
        return self._campaigns.regenerate_rejected(campaign_id, user=user, progress=progress, which=which)

    def campaigns(self, limit: int = 50, *, user: str | None = None) -> list[Campaign]:
        return self._campaigns.campaigns(limit, user=user)

    def campaign_review(self, campaign_id: str, *, user: str | None = None) -> CampaignReview:
        return self._campaigns.campaign_review(campaign_id, user=user)

    def open_campaign(self, campaign_id: str, *, user: str | None = None) -> tuple[Campaign, list[Item]]:
        return self._campaigns.open_campaign(campaign_id, user=user)

    def review_campaign(self, campaign_id: str, version_ids: Sequence[str], verdict: str, *,
                        user: str | None = None, only_waiting: bool = False) -> list[str]:
        return self._campaigns.review_campaign(campaign_id, version_ids, verdict, user=user, only_waiting=only_waiting)

    def save_approved(self, campaign_id: str, *, user: str | None = None) -> IngestReport:
        return self._campaigns.save_approved(campaign_id, user=user)

    def submit_campaign_batch(self, campaign_id: str, *, user: str | None = None) -> Campaign:
        return self._campaigns.submit_campaign_batch(campaign_id, user=user)

    def poll_campaign_batch(self, campaign_id: str, *, user: str | None = None) -> Campaign:
        return self._campaigns.poll_campaign_batch(campaign_id, user=user)

    def poll_batches(self) -> list[Campaign]:
        return self._campaigns.poll_batches()

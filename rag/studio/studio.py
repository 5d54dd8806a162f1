"""One object that wires settings, model, store and generator together.

The UI and the CLI both build a :class:`Studio` and call it; they hold no logic of their own.
Heavy pieces (the CLIP model, the Milvus connection) are created on first use.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from rag.clip import ClipEmbedder, Embedder
from rag.core import Asset, BananaError, GenerationDisabled, Hit, Settings
from rag.generation import ImageGenerator, ModelList, SessionStore, make_generator
from rag.library import (
    Ingestor,
    IngestReport,
    LibraryFilter,
    LibraryIndex,
    Progress,
    ReindexReport,
    Trash,
    captions,
    reindex,
)
from rag.library import assets as asset_pages
from rag.library import grid as lib
from rag.media import LARGE_SIZE, THUMB_SIZE, cached_thumbnail, collect_files, expand_uploads, thumbnail
from rag.search import Query, SearchResults, search_results
from rag.store import (
    QUERY_PAGE,
    MilvusStore,
    VectorStore,
    backups,
    export_parquet,
    import_parquet,
    read_header,
    write_backup,
)
from rag.studio.assets import AssetPagesMixin
from rag.studio.campaigns import CampaignsMixin
from rag.studio.sessions import SessionsMixin

log = logging.getLogger(__name__)


class Studio(SessionsMixin, CampaignsMixin, AssetPagesMixin):
    """The one object the UI and the CLI call: ingest, search, library, generation; sessions and
    asset pages and campaigns come from the mixins beside this module."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        generator: ImageGenerator | None = None,
    ) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or ClipEmbedder(settings)
        self._store = store
        self._generator = generator
        self._store_lock = threading.Lock()
        self._warm = False
        self._library: LibraryIndex | None = None
        self._library_lock = threading.Lock()
        self.trash = Trash(settings.trash_dir, self._owns)  # .entries() and .empty() for the Trash view
        # Embedding saturates the CPU; one ingest at a time keeps searches responsive.
        self._ingest_lock = threading.Lock()
        self._sessions: SessionStore | None = None
        self._campaigns = None  # opened with the sessions database (rag/studio/campaigns.py)
        self._running: dict[str, threading.Event] = {}  # campaigns running in this process, by id
        self.model_list = ModelList(lambda: self.generator.models(), settings.gemini_model,
                                    caption=settings.caption_model)

    @classmethod
    def from_env(cls) -> Studio:
        return cls(Settings.from_env())

    def warm_up(self) -> None:
        """Load the model and, on Milvus Lite, the library's vectors ahead of the first search (the
        app runs this in the background at start); never raises."""
        self.embedder.warm_up()
        try:
            self.store.warm_up()
        except BananaError as exc:
            log.error("%s", exc)
        self._warm = True  # a store opened again later (after a restore or a re-index) is warmed too

    def close(self) -> None:
        """Release the database (Milvus Lite lets one process hold it at a time)."""
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._sessions is not None:
                self._sessions.close()
                self._sessions, self._campaigns = None, None

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = MilvusStore(self.settings, self.embedder.dim, self.embedder.name)
                    if self._warm:
                        threading.Thread(target=self._store.warm_up, name="lite-vectors", daemon=True).start()
        return self._store

    # -- ingest -----------------------------------------------------------------------------
    def ingest_folder(self, root: str | Path, *, progress: Progress | None = None) -> IngestReport:
        """Index every image under ``root`` in place (files are not copied)."""
        root = Path(root)
        if not root.is_dir():
            raise BananaError(f"{root} is not a folder.")
        files, ignored, refused = collect_files(root)
        report = IngestReport(ignored=ignored, failed=list(refused))
        with self._ingest_lock:
            return Ingestor(self.settings, self.embedder, self.store).run(
                files, source="folder", copy=False, progress=progress, report=report
            )

    def ingest_allowed_folder(self, path: str | Path, *, progress: Progress | None = None) -> IngestReport:
        """What the app's folder box does: index a server-side folder in place, only under LIBRARY_ROOTS,
        so nobody can read the whole disk through the web page."""
        roots = [Path(r).expanduser().resolve() for r in self.settings.library_roots]
        if not roots:
            raise BananaError(
                "Adding a folder from the app is off. Set LIBRARY_ROOTS to the folders it may index "
                "(for example LIBRARY_ROOTS=/srv/images) and restart, or run `python -m rag ingest FOLDER`."
            )
        text = str(path).strip()
        target = Path(text).expanduser().resolve() if text else None
        if target is None or not any(target.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(r) for r in roots)
            raise BananaError(f"Only folders under {allowed} can be added from the app (LIBRARY_ROOTS); {text or 'nothing'} is not.")
        return self.ingest_folder(target, progress=progress)

    def ingest_files(
        self,
        paths: Sequence[str | Path],
        *,
        source: str = "upload",
        folder: str = "uploads",
        names: dict[Path, str] | None = None,
        folders: dict[Path, str] | None = None,
        meta: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Copy files into the library folder (content-addressed) and index them (``folders``: per file)."""
        folders = folders or {}
        files = [(Path(p), folders.get(Path(p)) or folder.strip() or "uploads") for p in paths]
        with self._ingest_lock:
            return Ingestor(self.settings, self.embedder, self.store).run(
                files, source=source, copy=True, meta=meta, names=names, progress=progress
            )

    def ingest_uploads(
        self, paths: Sequence[str | Path], *, folder: str = "uploads", tags: str | Sequence[str] = "",
        progress: Progress | None = None,
    ) -> IngestReport:
        """What the upload box hands over: images and .zip archives, checked against the upload limits.

        A .zip's subfolders become folders under ``folder``; ``tags`` go on every file (on the
        library's copy of a duplicate too)."""
        if not paths:
            raise BananaError("Choose one or more images (or a .zip of images) to add.")
        base, tags = asset_pages.clean_folder(folder or "uploads"), asset_pages.clean_tags(tags)
        with tempfile.TemporaryDirectory(prefix="banana-upload-") as workdir:
            expanded = expand_uploads(paths, self.settings, Path(workdir))
            folders = {p: "/".join(x for x in (base, sub) if x) for p, sub in expanded.subfolders.items()}
            report = (
                self.ingest_files(expanded.files, folder=base, names=expanded.names, folders=folders,
                                  meta={"tags": tags} if tags else None, progress=progress)
                if expanded.files
                else IngestReport()
            )
        if tags and report.duplicates:
            self.add_tags([i for _, i in report.duplicates], tags)
        report.failed = expanded.refused + [(expanded.names.get(Path(p), p), r) for p, r in report.failed]
        report.duplicates = [(expanded.names.get(Path(p), p), i) for p, i in report.duplicates]
        return report

    def preview(self, asset: Asset, *, large: bool = False, make: bool = True) -> Path | None:
        """A cached preview of an asset for galleries (``large``: for its page). Without ``make``
        only one made already is returned: a grid page never waits for previews."""
        if not make:
            return cached_thumbnail(asset, self.settings.thumbs_dir)
        return thumbnail(asset, self.settings.thumbs_dir, self.settings.max_image_pixels, size=LARGE_SIZE if large else THUMB_SIZE)

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

    def reindex(self, *, re_embed: bool = False, batch: int = 256, drop_missing: bool = False,
                progress: Callable[[int, int], None] | None = None) -> ReindexReport:
        """Rebuild the collection (word search, a new CLIP model) beside the old one, then swap."""
        with self._ingest_lock:
            self.close()  # Milvus Lite lets one client hold the database
            return reindex(self.settings, self.embedder, re_embed=re_embed, batch=batch, drop_missing=drop_missing,
                           progress=progress)

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
        store = self.store
        return {
            "count": store.count(),
            "by_folder": store.facet("folder"),
            "by_source": store.facet("source"),
            "milvus_uri": self.settings.milvus_uri if not self.settings.is_server else self.settings.milvus_uri.split("@")[-1],
            "collection": self.settings.collection,
            "model": self.embedder.name,
            "precision": store.precision or self.embedder.precision,  # recorded with the vectors, else the model's
            "word_search": not store.words_notice,
            "words_notice": store.words_notice,
            "generation": self.generation_status()[1],  # which image model, and why
        }

    def table(self, *, folders: Sequence[str] = (), sources: Sequence[str] = (), limit: int = 1000, offset: int = 0,
              chosen: LibraryFilter | None = None) -> pd.DataFrame:
        """The library as a table, newest first (one page of at most ``limit`` rows), for bulk work."""
        chosen = chosen or LibraryFilter(folders=tuple(folders), sources=tuple(sources))
        return lib.table_frame(self.library_page(chosen, offset=offset, limit=limit).assets)

    def delete(self, ids: Iterable[str]) -> int:
        """Move assets to the Trash: their records (with vectors) are kept there, and the files the
        app owns move with them, so :meth:`restore` brings them back as they were."""
        ids = list(dict.fromkeys(ids))
        assets = self.store.get(ids)
        moves = self.trash.put(assets, self.store.vectors([a.id for a in assets]))
        try:
            return self.store.delete(ids)
        except BananaError:
            self.trash.undo(moves, [a.id for a in assets])
            raise

    def _owns(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(Path(d).resolve()) for d in (self.settings.library_dir, self.settings.outputs_dir))

    def remove_orphans(self) -> list[Path]:
        """Files in the library folder without a record (left by an interrupted ingest)."""
        library = Path(self.settings.library_dir)
        if not library.is_dir():
            return []
        files = [p for p in library.rglob("*") if p.is_file()]
        removed = [p for p in files if p.name.startswith(".part-")]
        candidates = {p.stem: p for p in files if not p.name.startswith(".part-")}
        known = self.trash.ids()  # a file whose record is in the Trash is not an orphan
        ids = list(candidates)
        for start in range(0, len(ids), 500):
            known |= self.store.existing_ids(ids[start : start + 500])
        removed += [p for stem, p in candidates.items() if stem not in known]
        for p in removed:
            p.unlink(missing_ok=True)
        return removed

    def export(self, path: str | Path, *, batch: int = QUERY_PAGE, progress: Callable[[int], None] | None = None) -> int:
        """Every record, vectors included, into one Parquet file (a backup, or a move to a server)."""
        return export_parquet(self.store, Path(path), model=self.store.model or self.embedder.name, batch=batch, progress=progress)

    def import_(
        self,
        path: str | Path,
        *,
        batch: int = QUERY_PAGE,
        force: bool = False,
        rebase: tuple[str, str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Upsert the records of an exported file; refuses another model's vectors unless ``force``."""
        return import_parquet(
            self.store, Path(path), batch=batch, model=self.embedder.name, force=force, rebase=rebase, progress=progress
        )

    def backup(self) -> Path:
        """A dated export into the backups folder (the newest few are kept)."""
        return write_backup(self.settings, self.export)

    def restore_backup(self, backup: str | Path | None = None, *, progress: Callable[[int], None] | None = None) -> tuple[Path | None, int]:
        """Replace a (damaged) Lite database by a backup: the old one is moved aside, never deleted.

        Returns where the old database went and how many records the backup brought back.
        """
        if self.settings.is_server:
            raise BananaError("restore replaces a Milvus Lite library; on a server, use `python -m rag import FILE`.")
        source = Path(backup) if backup else next(iter(backups(self.settings)), None)
        if source is None:
            raise BananaError(f"No backup was found in {self.settings.backups_dir}; name the file: python -m rag restore FILE.")
        read_header(source)  # refuse an unreadable file before anything is moved
        self.close()
        db = Path(self.settings.milvus_uri)
        moved = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}") if db.exists() else None
        if moved is not None:
            db.rename(moved)
        return moved, self.import_(source, progress=progress)

    # -- generation (the rest is rag/studio/sessions.py) ----------------------------------------
    @property
    def generator(self) -> ImageGenerator:
        if self._generator is None:
            if not self.settings.gemini_api_key:
                raise GenerationDisabled(self.generation_status()[1])
            self._generator = make_generator(self.settings)
        return self._generator

    def lineage(self, asset_id: str) -> list[Asset]:
        """The library assets a generated image was made from ("what was this made from?")."""
        (asset,) = self.store.get([asset_id]) or [None]
        if asset is None:
            raise BananaError(f"No asset with id {asset_id} is in the library.")
        return self.store.get(asset.meta.get("parents", []))

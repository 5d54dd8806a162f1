"""The asset-pages half of :class:`rag.studio.studio.Studio`: the grid, an asset's page, tags, moves, the Trash.

A mixin so that Studio stays the one object the UI and CLI call while each module reads in one
sitting; the work itself is in :mod:`rag.library.grid`, :mod:`rag.library.assets` and :mod:`rag.library.trash`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.core import Asset, BananaError
from rag.library import IngestReport, LibraryFilter, LibraryIndex, LibraryPage, Progress
from rag.library import assets as asset_pages
from rag.library import grid as lib
from rag.media import collect_files, placeholder

if TYPE_CHECKING:
    from rag.core import Settings
    from rag.library import Trash
    from rag.store import VectorStore


class AssetPagesMixin:
    settings: Settings
    trash: Trash
    _library: LibraryIndex | None
    _library_lock: threading.Lock

    if TYPE_CHECKING:
        @property
        def store(self) -> VectorStore: ...
        def ingest_files(self, paths: Sequence[str | Path], **kwargs: object) -> IngestReport: ...

    # -- asset pages ------------------------------------------------------------------------
    @property
    def library(self) -> LibraryIndex:
        """The grid's newest-first index of the library (see :mod:`rag.library.grid`)."""
        store = self.store
        with self._library_lock:
            if self._library is None or self._library.store is not store:
                self._library = LibraryIndex(store, max_age_s=lib.SERVER_MAX_AGE_S if self.settings.is_server else None)
            return self._library

    def library_page(self, chosen: LibraryFilter | None = None, *, offset: int = 0, limit: int = lib.PAGE_SIZE) -> LibraryPage:
        """One page of the grid, newest first, with the counts of each facet value."""
        return lib.library_page(self.library, self.store, chosen or LibraryFilter(), offset, limit)

    def asset(self, asset_id: str) -> asset_pages.AssetDetails:
        """Everything an asset's page shows: record, provenance, parents and children."""
        return asset_pages.details(self.store, asset_id)

    def set_tags(self, asset_id: str, tags: str | Sequence[str]) -> Asset:
        """Replace an asset's tags (a comma-separated text or a list)."""
        (changed,) = asset_pages.retag(self.store, [asset_id], tags, keep=False) or [None]
        if changed is None:
            raise BananaError("That image is no longer in the library, so its tags were not changed.")
        return changed

    def add_tags(self, ids: Sequence[str], tags: str | Sequence[str]) -> int:
        """Add tags to several assets, keeping the ones they have."""
        return len(asset_pages.retag(self.store, ids, tags, keep=True))

    def move(self, ids: Sequence[str], folder: str) -> int:
        """Give assets another folder label; their files stay where they are."""
        return len(asset_pages.move(self.store, ids, folder))

    def restore(self, ids: Sequence[str]) -> tuple[list[Asset], list[tuple[str, str]]]:
        """Bring assets back from the Trash with their folder, tags and provenance; and what could not come back."""
        return self.trash.restore(self.store, ids)

    def add_sample_library(self, *, progress: Progress | None = None) -> IngestReport:
        """The bundled sample images (assets/sample), copied in under sample/<topic>, for a first run."""
        files, _, _ = collect_files(lib.SAMPLE_DIR)
        folders = {path: f"sample/{topic}" for path, topic in files}
        return self.ingest_files([p for p, _ in files], folder="sample", folders=folders, progress=progress)

    def duplicate_reasons(self, report: IngestReport) -> list[tuple[str, str]]:
        """Each duplicate of an upload with the library asset it matches, as (file, reason) rows."""
        return lib.duplicate_reasons(self.store, report.duplicates)

    def placeholder(self) -> Path:
        """The tile a grid shows until an asset's preview is made."""
        return placeholder(self.settings.thumbs_dir)

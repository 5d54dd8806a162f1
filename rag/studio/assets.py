"""The asset pages: the grid and table, previews, an asset's page, tags, moves, the Trash.

:class:`AssetPages` is what :class:`rag.studio.Studio` delegates these to; the work itself is in
:mod:`rag.library.grid`, :mod:`rag.library.assets` and :mod:`rag.library.trash`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from rag.core import SAMPLE_DIR, Asset, BananaError, Settings
from rag.library import IngestReport, LibraryFilter, LibraryIndex, LibraryPage, Progress, Trash
from rag.library import assets as asset_pages
from rag.library import grid as lib
from rag.media import LARGE_SIZE, THUMB_SIZE, cached_thumbnail, collect_files, placeholder, thumbnail
from rag.store import VectorStore


class AssetPages:
    """What the Library tab and an image's page do to assets already in the library.

    ``settings`` and ``store`` are getters (Studio's settings can be replaced; the store opens on first use
    and reopens after a restore); ``ingest`` adds files (:meth:`rag.studio.ingest.IngestService.ingest_files`),
    for the sample library.
    The grid's index is kept here, rebuilt when the store it was made for has been replaced.
    """

    def __init__(self, settings: Callable[[], Settings], store: Callable[[], VectorStore], trash: Trash,
                 ingest: Callable[..., IngestReport]) -> None:
        self._settings = settings
        self._store = store
        self._trash = trash
        self._ingest = ingest
        self._library: LibraryIndex | None = None
        self._library_lock = threading.Lock()

    @property
    def library(self) -> LibraryIndex:
        """The grid's newest-first index of the library (see :mod:`rag.library.grid`)."""
        store = self._store()
        with self._library_lock:
            if self._library is None or self._library.store is not store:
                self._library = LibraryIndex(store, max_age_s=lib.SERVER_MAX_AGE_S if self._settings().is_server else None)
            return self._library

    def library_page(self, chosen: LibraryFilter | None = None, *, offset: int = 0, limit: int = lib.PAGE_SIZE) -> LibraryPage:
        """One page of the grid, newest first, with the counts of each facet value."""
        return lib.library_page(self.library, self._store(), chosen or LibraryFilter(), offset, limit)

    def asset(self, asset_id: str) -> asset_pages.AssetDetails:
        """Everything an asset's page shows: record, provenance, parents and children."""
        return asset_pages.details(self._store(), asset_id)

    def set_tags(self, asset_id: str, tags: str | Sequence[str]) -> Asset:
        """Replace an asset's tags (a comma-separated text or a list)."""
        (changed,) = asset_pages.retag(self._store(), [asset_id], tags, keep=False) or [None]
        if changed is None:
            raise BananaError("That image is no longer in the library, so its tags were not changed.")
        return changed

    def add_tags(self, ids: Sequence[str], tags: str | Sequence[str]) -> int:
        """Add tags to several assets, keeping the ones they have."""
        return len(asset_pages.retag(self._store(), ids, tags, keep=True))

    def move(self, ids: Sequence[str], folder: str) -> int:
        """Give assets another folder label; their files stay where they are."""
        return len(asset_pages.move(self._store(), ids, folder))

    def delete(self, ids: Iterable[str]) -> int:
        """Move assets to the Trash: their records (with vectors) are kept there, and the files the
        app owns move with them, so :meth:`restore` brings them back as they were."""
        ids = list(dict.fromkeys(ids))
        store = self._store()
        assets = store.get(ids)
        moves = self._trash.put(assets, store.vectors([a.id for a in assets]))
        try:
            return store.delete(ids)
        except BananaError:
            self._trash.undo(moves, [a.id for a in assets])
            raise

    def restore(self, ids: Sequence[str]) -> tuple[list[Asset], list[tuple[str, str]]]:
        """Bring assets back from the Trash with their folder, tags and provenance; and what could not come back."""
        return self._trash.restore(self._store(), ids)

    def add_sample_library(self, *, progress: Progress | None = None, sample: Path = SAMPLE_DIR) -> IngestReport:
        """The bundled sample images (assets/sample), copied in under sample/<topic>, for a first run;
        ``sample`` is another folder laid out the same way (tests use a few of them)."""
        files, _, _ = collect_files(sample)
        folders = {path: f"sample/{topic}" for path, topic in files}
        return self._ingest([p for p, _ in files], folder="sample", folders=folders, progress=progress)

    def preview(self, asset: Asset, *, large: bool = False, make: bool = True) -> Path | None:
        """A cached preview of an asset for galleries (``large``: for its page). Without ``make``
        only one made already is returned: a grid page never waits for previews."""
        settings = self._settings()
        if not make:
            return cached_thumbnail(asset, settings.thumbs_dir)
        return thumbnail(asset, settings.thumbs_dir, settings.max_image_pixels, size=LARGE_SIZE if large else THUMB_SIZE)

    def table(self, *, folders: Sequence[str] = (), sources: Sequence[str] = (), limit: int = 1000, offset: int = 0,
              chosen: LibraryFilter | None = None) -> pd.DataFrame:
        """The library as a table, newest first (one page of at most ``limit`` rows), for bulk work."""
        chosen = chosen or LibraryFilter(folders=tuple(folders), sources=tuple(sources))
        return lib.table_frame(self.library_page(chosen, offset=offset, limit=limit).assets)

    def duplicate_reasons(self, report: IngestReport) -> list[tuple[str, str]]:
        """Each duplicate of an upload with the library asset it matches, as (file, reason) rows."""
        return lib.duplicate_reasons(self._store(), report.duplicates)

    def placeholder(self) -> Path:
        """The tile a grid shows until an asset's preview is made."""
        return placeholder(self._settings().thumbs_dir)

"""Looking after the library as a whole: its figures, backups, export and import, restore, re-indexing, stray files.

:class:`LibraryMaintenance` is what :class:`rag.studio.Studio` delegates these to; the work itself is in
:mod:`rag.store` (Parquet files, backups) and :mod:`rag.library.reindex`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.clip import Embedder
from rag.core import BananaError, Settings
from rag.library import ReindexReport, Trash, reindex
from rag.store import QUERY_PAGE, VectorStore, backups, export_parquet, import_parquet, read_header, write_backup


def app_owns(settings: Settings, path: Path) -> bool:
    """Whether a file is the app's own copy (library or outputs folder), which the Trash may move; files
    indexed in place elsewhere are the user's and stay where they are."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(d).resolve()) for d in (settings.library_dir, settings.outputs_dir))


class LibraryMaintenance:
    """Whole-library work that reopens or rebuilds the database.

    ``settings`` and ``store`` are getters (Studio's settings can be replaced; the store reopens after a
    restore or a re-index). ``close`` releases Studio's database handles, since Milvus Lite lets one client
    hold the file; ``lock`` is the ingest lock, so a rebuild never races an ingest.
    """

    def __init__(self, settings: Callable[[], Settings], embedder: Embedder, store: Callable[[], VectorStore],
                 trash: Trash, close: Callable[[], None], lock: threading.Lock) -> None:
        self._settings = settings
        self._embedder = embedder
        self._store = store
        self._trash = trash
        self._close = close
        self._lock = lock

    def stats(self) -> dict[str, Any]:
        """What ``python -m rag stats`` and the app's /stats API show: size, folders, sources, where, which model."""
        settings, store = self._settings(), self._store()
        return {
            "count": store.count(),
            "by_folder": store.facet("folder"),
            "by_source": store.facet("source"),
            "milvus_uri": settings.milvus_uri if not settings.is_server else settings.milvus_uri.split("@")[-1],
            "collection": settings.collection,
            "model": self._embedder.name,
            "precision": store.precision or self._embedder.precision,  # recorded with the vectors, else the model's
            "word_search": not store.words_notice,
            "words_notice": store.words_notice,
        }

    def reindex(self, *, re_embed: bool = False, batch: int = 256, drop_missing: bool = False,
                progress: Callable[[int, int], None] | None = None) -> ReindexReport:
        """Rebuild the collection (word search, a new CLIP model) beside the old one, then swap."""
        with self._lock:
            self._close()  # Milvus Lite lets one client hold the database
            return reindex(self._settings(), self._embedder, re_embed=re_embed, batch=batch, drop_missing=drop_missing,
                           progress=progress)

    def remove_orphans(self) -> list[Path]:
        """Files in the library folder without a record (left by an interrupted ingest)."""
        library = Path(self._settings().library_dir)
        if not library.is_dir():
            return []
        files = [p for p in library.rglob("*") if p.is_file()]
        removed = [p for p in files if p.name.startswith(".part-")]
        candidates = {p.stem: p for p in files if not p.name.startswith(".part-")}
        known = self._trash.ids()  # a file whose record is in the Trash is not an orphan
        ids = list(candidates)
        store = self._store()
        for start in range(0, len(ids), 500):
            known |= store.existing_ids(ids[start : start + 500])
        removed += [p for stem, p in candidates.items() if stem not in known]
        for p in removed:
            p.unlink(missing_ok=True)
        return removed

    def export(self, path: str | Path, *, batch: int = QUERY_PAGE, progress: Callable[[int], None] | None = None) -> int:
        """Every record, vectors included, into one Parquet file (a backup, or a move to a server)."""
        store = self._store()
        return export_parquet(store, Path(path), model=store.model or self._embedder.name, batch=batch, progress=progress)

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
            self._store(), Path(path), batch=batch, model=self._embedder.name, force=force, rebase=rebase, progress=progress
        )

    def backup(self) -> Path:
        """A dated export into the backups folder (the newest few are kept)."""
        return write_backup(self._settings(), self.export)

    def restore_backup(self, backup: str | Path | None = None, *, progress: Callable[[int], None] | None = None) -> tuple[Path | None, int]:
        """Replace a (damaged) Lite database by a backup: the old one is moved aside, never deleted.

        Returns where the old database went and how many records the backup brought back.
        """
        settings = self._settings()
        if settings.is_server:
            raise BananaError("restore replaces a Milvus Lite library; on a server, use `python -m rag import FILE`.")
        source = Path(backup) if backup else next(iter(backups(settings)), None)
        if source is None:
            raise BananaError(f"No backup was found in {settings.backups_dir}; name the file: python -m rag restore FILE.")
        read_header(source)  # refuse an unreadable file before anything is moved
        self._close()
        db = Path(settings.milvus_uri)
        moved = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}") if db.exists() else None
        if moved is not None:
            db.rename(moved)
        return moved, self.import_(source, progress=progress)

"""Adding images to the library: a server folder in place, uploads and archives copied in.

:class:`IngestService` is what :class:`rag.studio.Studio` delegates its ``ingest_*`` methods to; the work
itself is in :mod:`rag.library.ingest` (:class:`rag.library.Ingestor`) and :mod:`rag.media`.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.clip import Embedder
from rag.core import BananaError, Settings
from rag.library import Ingestor, IngestReport, Progress
from rag.library import assets as asset_pages
from rag.media import collect_files, expand_uploads
from rag.store import VectorStore


class IngestService:
    """Index files into the store, one run at a time.

    ``settings`` and ``store`` are getters: Studio's settings can be replaced after it is built (the CLI's
    ``--out``, tests) and the store opens on first use and again after a restore, so neither is read early.
    ``lock`` is shared with re-indexing: embedding saturates the CPU, and a rebuild must not race an ingest.
    """

    def __init__(self, settings: Callable[[], Settings], embedder: Embedder, store: Callable[[], VectorStore],
                 lock: threading.Lock, after: Callable[[IngestReport], None] | None = None) -> None:
        self._settings = settings
        self._embedder = embedder
        self._store = store
        self._lock = lock
        self._after = after  # what follows a stored batch without holding it up (the background text reading)

    def ingest_folder(self, root: str | Path, *, progress: Progress | None = None) -> IngestReport:
        """Index every image under ``root`` in place (files are not copied)."""
        root = Path(root)
        if not root.is_dir():
            raise BananaError(f"{root} is not a folder.")
        files, ignored, refused = collect_files(root)
        report = IngestReport(ignored=ignored, failed=list(refused))
        with self._lock:
            report = Ingestor(self._settings(), self._embedder, self._store()).run(
                files, source="folder", copy=False, progress=progress, report=report
            )
        return self._then(report)

    def ingest_allowed_folder(self, path: str | Path, *, progress: Progress | None = None) -> IngestReport:
        """What the app's folder box does: index a server-side folder in place, only under LIBRARY_ROOTS,
        so nobody can read the whole disk through the web page."""
        roots = [Path(r).expanduser().resolve() for r in self._settings().library_roots]
        if not roots:
            raise BananaError(
                "Adding a folder from the app is off: no folders on this server are open to it. Whoever runs the "
                "app names them and restarts it, or runs `python -m rag ingest FOLDER`.", setting="LIBRARY_ROOTS")
        text = str(path).strip()
        target = Path(text).expanduser().resolve() if text else None
        if target is None or not any(target.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(r) for r in roots)
            raise BananaError(f"Only folders under {allowed} can be added from the app; {text or 'nothing'} is not.",
                              setting="LIBRARY_ROOTS")
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
        with self._lock:
            report = Ingestor(self._settings(), self._embedder, self._store()).run(
                files, source=source, copy=True, meta=meta, names=names, progress=progress
            )
        return self._then(report)

    def _then(self, report: IngestReport) -> IngestReport:
        if self._after is not None and report.added:
            self._after(report)
        return report

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
            expanded = expand_uploads(paths, self._settings(), Path(workdir))
            folders = {p: "/".join(x for x in (base, sub) if x) for p, sub in expanded.subfolders.items()}
            report = (
                self.ingest_files(expanded.files, folder=base, names=expanded.names, folders=folders,
                                  meta={"tags": tags} if tags else None, progress=progress)
                if expanded.files
                else IngestReport()
            )
        added = {a.id for a in report.added}
        existing = [i for _, i in report.duplicates if i not in added]  # a copy within this upload has its tags
        if tags and existing:  # said in the report: a user who typed tags sees where they went
            report.tagged = [a.id for a in asset_pages.retag(self._store(), existing, tags, keep=True)]
        report.failed = expanded.refused + [(expanded.labels.get(Path(p), p), r) for p, r in report.failed]
        report.duplicates = [(expanded.labels.get(Path(p), p), i) for p, i in report.duplicates]
        return report

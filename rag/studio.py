"""One object that wires settings, model, store and generator together.

The UI and the CLI both build a :class:`Studio` and call it; they hold no logic of their own.
Heavy pieces (the CLIP model, the Milvus connection) are created on first use.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .backup import backups, write_backup
from .config import Settings
from .embedder import ClipEmbedder, Embedder
from .errors import BananaError, GenerationDisabled
from .files import sha256_file
from .filters import build_filter
from .generate import GenerationResult, ImageGenerator, make_generator
from .ingest import Ingestor, IngestReport, Progress, collect_files
from .models import max_references_for
from .provenance import read_provenance, save_result
from .query import Query
from .search import search
from .store import QUERY_PAGE, MilvusStore, VectorStore
from .thumbs import thumbnail
from .transfer import export_parquet, import_parquet, read_header
from .types import Asset, Hit
from .uploads import expand_uploads

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Generation:
    """A generation run: what the model returned and where its images were saved."""

    result: GenerationResult
    paths: list[Path]


TABLE_COLUMNS = ["filename", "folder", "source", "width", "height", "format", "bytes", "added", "id", "path"]


class Studio:
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
        # Embedding saturates the CPU; one ingest at a time keeps searches responsive.
        self._ingest_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Studio:
        return cls(Settings.from_env())

    def close(self) -> None:
        """Release the database (Milvus Lite lets one process hold it at a time)."""
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = MilvusStore(self.settings, self.embedder.dim, self.embedder.name)
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

    def ingest_files(
        self,
        paths: Sequence[str | Path],
        *,
        source: str = "upload",
        folder: str = "uploads",
        names: dict[Path, str] | None = None,
        meta: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Copy files into the library folder (content-addressed) and index them."""
        files = [(Path(p), folder.strip() or "uploads") for p in paths]
        with self._ingest_lock:
            return Ingestor(self.settings, self.embedder, self.store).run(
                files, source=source, copy=True, meta=meta, names=names, progress=progress
            )

    def ingest_uploads(
        self, paths: Sequence[str | Path], *, folder: str = "uploads", progress: Progress | None = None
    ) -> IngestReport:
        """What the upload box hands over: images and .zip archives, checked against the upload limits."""
        if not paths:
            raise BananaError("Choose one or more images (or a .zip of images) to add.")
        with tempfile.TemporaryDirectory(prefix="banana-upload-") as workdir:
            expanded = expand_uploads(paths, self.settings, Path(workdir))
            report = (
                self.ingest_files(expanded.files, folder=folder, names=expanded.names, progress=progress)
                if expanded.files
                else IngestReport()
            )
        report.failed = expanded.refused + [(expanded.names.get(Path(p), p), r) for p, r in report.failed]
        report.duplicates = [(expanded.names.get(Path(p), p), i) for p, i in report.duplicates]
        return report

    def preview(self, asset: Asset) -> Path | None:
        """A small cached preview of an asset for galleries."""
        return thumbnail(asset, self.settings.thumbs_dir, self.settings.max_image_pixels)

    # -- search -----------------------------------------------------------------------------
    def search(self, query: Query | str = "", /, **options: Any) -> list[Hit]:
        """Search the library with a :class:`Query`, or with text and the query's options as keywords."""
        if not isinstance(query, Query):
            query = Query.of({"text": query, **options})
        elif options:
            query = replace(query, **options)
        return search(self.embedder, self.store, query)

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
        }

    def table(self, *, folders: Sequence[str] = (), sources: Sequence[str] = (), limit: int = 1000, offset: int = 0) -> pd.DataFrame:
        """The library as a table, newest first (one page of at most ``limit`` rows)."""
        assets = self.store.page(offset, limit, build_filter(folders, sources))
        rows = [
            {**{k: getattr(a, k) for k in TABLE_COLUMNS if k != "added"}, "added": time.strftime("%Y-%m-%d %H:%M", time.localtime(a.created))}
            for a in sorted(assets, key=lambda a: a.created, reverse=True)
        ]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove records; files the app owns move to a trash folder so a mistake can be undone."""
        ids = list(dict.fromkeys(ids))
        assets = self.store.get(ids)
        removed = self.store.delete(ids)
        trash = self.settings.trash_dir
        for asset in assets:
            path = Path(asset.path)
            if self._owns(path) and path.exists():
                trash.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), trash / path.name)
        return removed

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
        known = set()
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

    def restore(self, backup: str | Path | None = None, *, progress: Callable[[int], None] | None = None) -> tuple[Path | None, int]:
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

    # -- generation -------------------------------------------------------------------------
    def generation_status(self) -> tuple[bool, str]:
        """Whether generation is on, and a sentence saying why (or why not)."""
        if self._generator is not None or self.settings.gemini_api_key:
            model = self._generator.model if self._generator else self.settings.gemini_model
            return True, f"Generation is on ({model}, up to {self.max_references} reference images)."
        return False, (
            "Generation is off: no Gemini API key is set. Set GEMINI_API_KEY (from "
            "https://aistudio.google.com/apikey) and restart the app. Search works without it."
        )

    @property
    def max_references(self) -> int:
        return self._generator.max_references if self._generator else max_references_for(self.settings.gemini_model)

    @property
    def generator(self) -> ImageGenerator:
        if self._generator is None:
            enabled, why = self.generation_status()
            if not enabled:
                raise GenerationDisabled(why)
            self._generator = make_generator(self.settings)
        return self._generator

    def references(self, ids: Sequence[str] = (), files: Sequence[str | Path] = ()) -> list[Asset]:
        """Library assets by id plus ad-hoc files (not added to the library) as reference records."""
        found = self.store.get(ids) if ids else []
        missing = set(ids) - {a.id for a in found}
        if missing:
            raise BananaError(f"{len(missing)} selected reference(s) are no longer in the library; reselect them.")
        for f in files:
            path = Path(f)
            if not path.is_file():
                raise BananaError(f"Reference {path.name} is not a readable file.")
            found.append(
                Asset(id=sha256_file(path), path=str(path), filename=path.name, folder="reference", width=0,
                      height=0, format="", bytes=path.stat().st_size, created=time.time(), source="upload")
            )
        return found

    def generate(
        self,
        prompt: str,
        *,
        reference_ids: Sequence[str] = (),
        reference_files: Sequence[str | Path] = (),
        aspect_ratio: str = "1:1",
        n: int = 1,
    ) -> Generation:
        """Generate from a prompt and references; images land in the outputs folder, never the library."""
        refs = self.references(reference_ids, reference_files)
        result = self.generator.generate(prompt, refs, aspect_ratio=aspect_ratio, n=n)
        return Generation(result=result, paths=save_result(result, self.settings.outputs_dir, max_pixels=self.settings.max_image_pixels))

    def save_generated(self, paths: Sequence[str | Path], *, progress: Progress | None = None) -> IngestReport:
        """Add generated images to the library, keeping their provenance and parent ids searchable."""
        report = IngestReport()
        for path in paths:
            provenance = read_provenance(path) or {}
            parents = [r["id"] for r in provenance.get("references", [])]
            meta = {"prompt": provenance.get("prompt", ""), "model": provenance.get("model", ""), "parents": parents,
                    "provenance": provenance}
            one = self.ingest_files([path], source="generated", folder="generated", meta=meta, progress=progress)
            report.added += one.added
            report.duplicates += one.duplicates
            report.failed += one.failed
            report.seconds += one.seconds
        return report

    def lineage(self, asset_id: str) -> list[Asset]:
        """The library assets a generated image was made from ("what was this made from?")."""
        (asset,) = self.store.get([asset_id]) or [None]
        if asset is None:
            raise BananaError(f"No asset with id {asset_id} is in the library.")
        return self.store.get(asset.meta.get("parents", []))

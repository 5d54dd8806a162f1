"""Turning files into searchable assets: hash, skip what is known, decode, embed, store.

One bad file never aborts a batch: it is reported with a reason. Records are written only after
their file is in place, so an interrupted ingest leaves at worst a file without a record, which
the next run (or :func:`rag.studio.Studio.remove_orphans`) takes care of.
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.clip import Embedder
from rag.core import (
    Asset,
    BananaError,
    ImageError,
    Settings,
    atomic_write,
    chunked,
    os_error_text,
    prefetch_map,
    sha256_bytes,
    sha256_file,
)
from rag.library.writes import BatchedWrites
from rag.media import MAX_FOLDER_BYTES, MAX_PATH_BYTES, credentials, display_name, is_utf8, shown_path
from rag.store import VectorStore

Progress = Callable[[int, int, str], None]
CHECK_CHUNK = 256
FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "MPO": ".jpg"}


@dataclass
class IngestReport:
    """What an ingest did. ``added + duplicates + failed`` accounts for every file it was given."""

    added: list[Asset] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, id of the stored copy)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # non-image files met while walking a folder
    tagged: list[str] = field(default_factory=list)  # ids of library images an upload's tags were added to
    seconds: float = 0.0

    @property
    def seen(self) -> int:
        return len(self.added) + len(self.duplicates) + len(self.failed)

    def summary(self) -> str:
        kept = f" (your tags added to {len(self.tagged)} of them)" if self.tagged else ""
        text = f"{len(self.added)} added, {len(self.duplicates)} already in the library{kept}, {len(self.failed)} failed"
        if self.ignored:
            text += f", {len(self.ignored)} non-image files ignored"
        return text + f" ({self.seconds:.1f} s)."

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [a.to_dict() for a in self.added],
            "duplicates": [{"path": p, "id": i} for p, i in self.duplicates],
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "ignored": self.ignored,
            "tagged": self.tagged,
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
        }


@dataclass
class _Item:
    path: Path
    folder: str
    id: str = ""
    error: str = ""
    duplicate: bool = False
    data: bytes | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    size: int = 0
    pixels: Any = None
    text: str = ""  # words embedded in the file (XMP, IPTC, PNG text)
    stamp: tuple[int, int, int] = (0, 0, 0)  # size, mtime_ns and inode when hashed
    ai: bool = False  # its content credentials say it is AI-made


def library_path(library_dir: Path, asset_id: str, fmt: str) -> Path:
    """Content-addressed home of an uploaded file: stable, and the same bytes land in one place."""
    return Path(library_dir) / asset_id[:2] / f"{asset_id}{FORMAT_EXT.get(fmt, '.img')}"


class Ingestor:
    """Runs one ingest as a pipeline of stages: hash → skip known → decode → embed and write.

    The stages overlap (threads), so the model does not wait on file reading or decoding.
    """

    def __init__(self, settings: Settings, embedder: Embedder, store: VectorStore) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store

    def run(
        self,
        files: Sequence[tuple[Path, str]],
        *,
        source: str,
        copy: bool,
        meta: dict[str, Any] | None = None,
        names: dict[Path, str] | None = None,
        progress: Progress | None = None,
        report: IngestReport | None = None,
    ) -> IngestReport:
        """Ingest ``(path, folder)`` pairs. ``copy`` puts each file into the library folder first."""
        stored = self.store.model
        if stored and stored != self.embedder.name:
            raise BananaError(f"This library was embedded with {stored} and the app now uses {self.embedder.name}; "
                              "vectors of two models must not mix. Run `python -m rag reindex` to re-embed it.")
        report = report or IngestReport()
        start = time.perf_counter()
        writer = _Writer(self, report, source=source, copy=copy, meta=meta or {}, names=names or {}, progress=progress, total=len(files))
        items = (_Item(path=Path(p), folder=f) for p, f in files)
        for item in self._decoded(self._known(self._hashed(items)), keep_bytes=copy):
            writer.take(item)
        writer.close()
        report.seconds = time.perf_counter() - start
        if progress:
            progress(len(files), len(files), report.summary())
        return report

    # -- stage 1: hash (threads) ------------------------------------------------------------
    def _hashed(self, items: Iterable[_Item]) -> Iterator[_Item]:
        s = self.settings
        hash_one = functools.partial(_hash, max_mb=s.max_file_mb)
        workers = self.embedder.workers_for(s.workers)  # a GPU's ingest reads and hashes as fast as it decodes
        return prefetch_map(hash_one, items, workers=workers, window=workers * 8)

    # -- stage 2: skip what the store already holds -----------------------------------------
    def _known(self, items: Iterable[_Item]) -> Iterator[_Item]:
        """Ask the store in chunks which contents it already holds.

        Copies of the same content within one run are settled by the writer: only when a batch is
        stored is it known whether the first copy was stored or failed.
        """
        for chunk in chunked(items, CHECK_CHUNK):
            known = self.store.existing_ids([i.id for i in chunk if i.id])
            for item in chunk:
                item.duplicate = bool(item.id) and item.id in known
                yield item

    # -- stage 3: decode and preprocess (threads) -------------------------------------------
    def _decoded(self, items: Iterable[_Item], *, keep_bytes: bool) -> Iterator[_Item]:
        s = self.settings
        window = self.embedder.batch_for(s.batch_size) * 2
        workers = self.embedder.workers_for(s.workers)
        return prefetch_map(lambda it: self._decode(it, keep_bytes), items, workers=workers, window=window)

    def _decode(self, item: _Item, keep_bytes: bool) -> _Item:
        if item.error or item.duplicate:
            return item
        try:
            data = _unchanged(item)
            if data is None:
                item.error = "the file changed while it was being indexed"
                return item
            decoded, item.pixels = self.embedder.prepare_file(data)  # a JPEG may decode on the GPU (rag/clip/jpeg.py)
        except FileNotFoundError:
            item.error = "the file no longer exists"
            return item
        except ImageError as exc:
            item.error = str(exc)
            return item
        except OSError as exc:
            item.error = f"the file cannot be read ({os_error_text(exc)})"
            return item
        item.width, item.height, item.format, item.size = decoded.width, decoded.height, decoded.format, len(data)
        found = credentials.read(data)  # content credentials: their facts are words, an AI-made image gets a tag
        item.text = " ".join(t for t in (decoded.text, found.words() if found else "") if t)
        item.ai = bool(found and found.ai_generated)
        item.data = data if keep_bytes else None
        return item


def _hash(item: _Item, max_mb: float) -> _Item:
    """The content id, read in blocks; files over ``max_mb`` are refused before a byte is read."""
    try:
        info = item.path.stat()
        if not stat.S_ISREG(info.st_mode):
            item.error = "not a regular file (a folder, pipe or device)"
        elif info.st_size == 0:
            item.error = "the file is empty (0 bytes)"
        elif info.st_size > max_mb * 1024 * 1024:
            item.error = f"the file is {info.st_size / 2**20:.0f} MB, over the {max_mb:g} MB limit set for this app"
        else:
            item.id = sha256_file(item.path)
            item.stamp = (info.st_size, info.st_mtime_ns, info.st_ino)
    except FileNotFoundError:
        item.error = "the file no longer exists"
    except OSError as exc:
        item.error = f"the file cannot be read ({os_error_text(exc)})"
    return item


def _unchanged(item: _Item) -> bytes | None:
    """The file's bytes when it is still what was hashed: the same size, time and inode as then (what rsync and
    git trust) spares hashing a 12 MP photo twice (2 ms); a file that changed is hashed again to be sure."""
    with open(item.path, "rb") as fh:
        info = os.fstat(fh.fileno())
        data = fh.read()
    if (info.st_size, info.st_mtime_ns, info.st_ino) == item.stamp and len(data) == info.st_size:
        return data
    return data if sha256_bytes(data) == item.id else None


class _Writer:
    """Stage 4: batches decoded items, places their files, embeds them and writes their records.

    Every item ends up in the report: added, a duplicate (of the store or of this run), or failed.
    """

    def __init__(self, ingestor: Ingestor, report: IngestReport, *, source: str, copy: bool, meta: dict[str, Any],
                 names: dict[Path, str], progress: Progress | None, total: int) -> None:
        self.settings, self.embedder, self.store = ingestor.settings, ingestor.embedder, ingestor.store
        self.report, self.source, self.copy, self.meta, self.names = report, source, copy, meta, names
        self.progress, self.total = progress, total
        self.batch: list[_Item] = []
        self.stored: set[str] = set()  # ids stored by this run
        self.done = 0
        # on a GPU, writes gather into large ones sent by a thread of their own (rag/library/writes.py)
        self.writes = BatchedWrites(self.store, self.written, background=self.embedder.device.startswith("cuda"))

    def take(self, item: _Item) -> None:
        if item.error or item.duplicate:
            if item.error:
                self.report.failed.append((shown_path(item.path), item.error))
            else:
                self.report.duplicates.append((shown_path(item.path), item.id))
            self.done += 1
            self.tick()
        else:
            self.batch.append(item)
            if len(self.batch) >= self.embedder.batch_for(self.settings.batch_size):
                self.write_batch()

    def close(self) -> None:
        if self.batch:
            self.write_batch()
        self.writes.wait()
        if self.report.added:
            self.store.flush()

    def write_batch(self) -> None:
        ready: list[tuple[_Item, Path]] = []
        for it in self.batch:
            if it.id in self.stored:  # a second copy of content this run has stored
                self.report.duplicates.append((shown_path(it.path), it.id))
                continue
            path, problem = self.place(it)
            if path is None:
                self.report.failed.append((shown_path(it.path), problem))
            else:
                ready.append((it, path))
                self.stored.add(it.id)
        if ready:
            vectors = self.embedder.encode_prepared([it.pixels for it, _ in ready])
            self.writes.put([self.asset(it, path) for it, path in ready], vectors)
        self.done += len(self.batch)
        self.batch.clear()
        self.tick()

    def written(self, assets: list[Asset]) -> None:
        """The store holds ``assets`` now."""
        self.store.record_precision(self.embedder.precision)
        self.report.added.extend(assets)

    def tick(self) -> None:
        """Tell the caller how far the run is, counting every file settled so far."""
        if self.progress:
            r = self.report
            self.progress(self.done, self.total, f"{self.done} of {self.total} files: {len(r.added)} added, "
                          f"{len(r.duplicates)} already in the library, {len(r.failed)} failed")

    def asset(self, it: _Item, path: Path) -> Asset:
        return Asset(
            id=it.id, path=str(path), filename=display_name(self.names.get(it.path, it.path.name)), folder=it.folder,
            width=it.width, height=it.height, format=it.format, bytes=it.size, created=time.time(),
            source=self.source, meta=credentials.tagged({**self.meta, **({"embedded": it.text} if it.text else {})}, it.ai),
        )

    def place(self, it: _Item) -> tuple[Path | None, str]:
        """Where the record will point, once its file is in place; or why it cannot be stored."""
        if len(it.folder.encode("utf-8", "surrogatepass")) > MAX_FOLDER_BYTES or not is_utf8(it.folder):
            return None, f"the folder name is too long or not valid UTF-8 text (at most {MAX_FOLDER_BYTES} bytes)"
        if not self.copy:
            path = it.path.resolve()
            if not is_utf8(str(path)) or len(str(path).encode("utf-8")) > MAX_PATH_BYTES:
                return None, f"the file's path is too long or not valid UTF-8 text (at most {MAX_PATH_BYTES} bytes)"
            if not path.is_file():  # deleted since it was read: a record must not point at nothing
                return None, "the file no longer exists"
            return path, ""
        path = library_path(self.settings.library_dir, it.id, it.format).resolve()
        try:
            if not path.exists():
                atomic_write(path, it.data or b"")
        except OSError as exc:
            return None, f"the file could not be copied into the library ({os_error_text(exc)})"
        return path, ""

"""Turning files into searchable assets: hash, skip what is known, decode, embed, store.

One bad file never aborts a batch: it is reported with a reason. Records are written only after
their file is in place, so an interrupted ingest leaves at worst a file without a record, which
the next run (or :func:`rag.studio.Studio.remove_orphans`) takes care of.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .config import Settings
from .embedder import Embedder
from .errors import ImageError
from .images import decode, is_image_name, sha256_bytes, sha256_file
from .pipeline import chunked, prefetch_map
from .store import VectorStore
from .types import Asset

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
    seconds: float = 0.0

    @property
    def seen(self) -> int:
        return len(self.added) + len(self.duplicates) + len(self.failed)

    def summary(self) -> str:
        text = f"{len(self.added)} added, {len(self.duplicates)} already in the library, {len(self.failed)} failed"
        if self.ignored:
            text += f", {len(self.ignored)} non-image files ignored"
        return text + f" ({self.seconds:.1f} s)."

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [a.to_dict() for a in self.added],
            "duplicates": [{"path": p, "id": i} for p, i in self.duplicates],
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "ignored": self.ignored,
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


def collect_files(root: Path, *, follow_outside: bool = False) -> tuple[list[tuple[Path, str]], list[str], list[tuple[str, str]]]:
    """Image files under ``root`` with their folder tag; also non-images and refused links.

    A symbolic link that leads outside ``root`` is refused: indexing a shared folder must not
    pull in files from elsewhere on the machine.
    """
    root = Path(root)
    base = root.resolve()
    images: list[tuple[Path, str]] = []
    ignored: list[str] = []
    refused: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not is_image_name(name):
                ignored.append(str(path))
                continue
            if path.is_symlink() and not follow_outside:
                target = path.resolve()
                if not target.is_relative_to(base):
                    refused.append((str(path), "a symbolic link to a file outside the folder"))
                    continue
            rel_parent = path.parent.relative_to(root).as_posix()
            images.append((path, root.resolve().name if rel_parent == "." else rel_parent))
    return images, ignored, refused


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def library_path(library_dir: Path, asset_id: str, fmt: str) -> Path:
    """Content-addressed home of an uploaded file: stable, and the same bytes land in one place."""
    return Path(library_dir) / asset_id[:2] / f"{asset_id}{FORMAT_EXT.get(fmt, '.img')}"


class Ingestor:
    """Runs one ingest; the stages overlap so the model does not wait on file reading or decoding."""

    def __init__(self, settings: Settings, embedder: Embedder, store: VectorStore) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store

    def _hash(self, item: _Item) -> _Item:
        try:
            if item.path.stat().st_size == 0:
                item.error = "the file is empty (0 bytes)"
            else:
                item.id = sha256_file(item.path)
        except FileNotFoundError:
            item.error = "the file no longer exists"
        except OSError as exc:
            item.error = f"the file cannot be read ({exc.strerror or exc})"
        return item

    def _checked(self, items: Iterable[_Item]) -> Iterator[_Item]:
        """Hash in threads, then ask the store in chunks which contents it already holds."""
        seen: set[str] = set()
        s = self.settings
        hashed = prefetch_map(self._hash, items, workers=s.workers, window=s.workers * 8)
        for chunk in chunked(hashed, CHECK_CHUNK):
            known = self.store.existing_ids([i.id for i in chunk if i.id])
            for item in chunk:
                if item.id and (item.id in known or item.id in seen):
                    item.duplicate = True
                seen.add(item.id)
                yield item

    def _prepare(self, item: _Item, keep_bytes: bool) -> _Item:
        if item.error or item.duplicate:
            return item
        s = self.settings
        try:
            data = item.path.read_bytes()
            if sha256_bytes(data) != item.id:
                item.error = "the file changed while it was being indexed"
                return item
            decoded = decode(data, background=s.background, max_pixels=s.max_image_pixels)
            item.pixels = self.embedder.prepare(decoded.image)
        except FileNotFoundError:
            item.error = "the file no longer exists"
            return item
        except ImageError as exc:
            item.error = str(exc)
            return item
        except OSError as exc:
            item.error = f"the file cannot be read ({exc.strerror or exc})"
            return item
        item.width, item.height, item.format, item.size = decoded.width, decoded.height, decoded.format, len(data)
        item.data = data if keep_bytes else None
        return item

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
        report = report or IngestReport()
        start = time.perf_counter()
        s = self.settings
        total = len(files)
        done = 0
        items = (_Item(path=Path(p), folder=f) for p, f in files)
        prepared = prefetch_map(
            lambda it: self._prepare(it, copy), self._checked(items), workers=s.workers, window=s.batch_size * 2
        )
        batch: list[_Item] = []

        def flush_batch() -> None:
            nonlocal done
            vectors = self.embedder.encode_prepared([it.pixels for it in batch])
            assets = []
            for it in batch:
                path = it.path.resolve()
                if copy:
                    path = library_path(s.library_dir, it.id, it.format).resolve()
                    if not path.exists():
                        _atomic_write(path, it.data or b"")
                assets.append(
                    Asset(
                        id=it.id,
                        path=str(path),
                        filename=(names or {}).get(it.path, it.path.name),
                        folder=it.folder,
                        width=it.width,
                        height=it.height,
                        format=it.format,
                        bytes=it.size,
                        created=time.time(),
                        source=source,
                        meta=dict(meta or {}),
                    )
                )
            self.store.upsert(assets, vectors)
            report.added.extend(assets)
            done += len(batch)
            batch.clear()
            if progress:
                progress(done, total, f"embedded {len(report.added)} of {total}")

        for item in prepared:
            if item.error:
                report.failed.append((str(item.path), item.error))
                done += 1
            elif item.duplicate:
                report.duplicates.append((str(item.path), item.id))
                done += 1
            else:
                batch.append(item)
                if len(batch) >= s.batch_size:
                    flush_batch()
        if batch:
            flush_batch()
        if report.added:
            self.store.flush()
        report.seconds = time.perf_counter() - start
        if progress:
            progress(total, total, report.summary())
        return report

"""Deleted images, kept so that a delete can be undone from the app.

For each deleted asset the trash keeps ``<id>.json`` (the record as it was, its vector, when it
was deleted) and, for files the app stored (uploads, generated images), the file itself as
``<id><ext>``; files indexed in place from the user's folders are never moved. Restoring puts the
file back where it was and upserts the record with its vector, so folder, tags and provenance
come back exactly, without re-embedding. Emptying the trash deletes both for good.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.core import Asset, atomic_write
from rag.store import VectorStore

RECORD = ".json"
_ASSET_ID = re.compile(r"^[0-9a-f]{64}$")  # a content id (sha256): never a path, so a record is always in the Trash


@dataclass(frozen=True)
class TrashEntry:
    """One deleted asset: its record as it was, when it was deleted, and the kept file (if the app owned it)."""

    asset: Asset
    deleted: float
    file: Path | None

    @property
    def shown(self) -> Asset:
        """The asset pointing at wherever its pixels are now (for previews)."""
        return Asset(**{**self.asset.to_dict(), "path": str(self.file or self.asset.path)})


class Trash:
    def __init__(self, folder: Path, owns: Callable[[Path], bool]) -> None:
        self.folder = Path(folder)
        self.owns = owns

    def _record(self, asset_id: str) -> Path:
        if not _ASSET_ID.match(asset_id):
            raise ValueError(f"not an asset id: {asset_id[:80]!r}")
        return self.folder / f"{asset_id}{RECORD}"

    def put(self, assets: Sequence[Asset], vectors: dict[str, np.ndarray]) -> list[tuple[Path, Path]]:
        """Keep each asset's record (first) and move owned files in; returns the moves made, to undo them."""
        moved: list[tuple[Path, Path]] = []
        now = time.time()
        for asset in assets:
            if asset.id not in vectors:
                continue
            path = Path(asset.path)
            keep = self.folder / f"{asset.id}{path.suffix.lower()}"
            owned = self.owns(path) and path.is_file()
            entry = {"asset": asset.to_dict(), "vector": vectors[asset.id].astype(float).tolist(), "deleted": now,
                     "file": keep.name if owned else None}
            atomic_write(self._record(asset.id), json.dumps(entry, ensure_ascii=False).encode("utf-8"))
            if owned:
                shutil.move(str(path), keep)
                moved.append((keep, path))
        return moved

    def undo(self, moves: Sequence[tuple[Path, Path]], ids: Sequence[str]) -> None:
        """Put files back and forget records after the store refused the delete."""
        for kept, original in moves:
            shutil.move(str(kept), original)
        for asset_id in ids:
            self._record(asset_id).unlink(missing_ok=True)

    def _read(self, record: Path) -> tuple[TrashEntry, np.ndarray] | None:
        try:
            data = json.loads(record.read_text("utf-8"))
            kept = data.get("file")
            if kept and (Path(kept).name != kept or kept.startswith(".")):
                return None  # a kept file is a plain name inside the Trash folder, nothing else
            entry = TrashEntry(asset=Asset(**data["asset"]), deleted=float(data["deleted"]),
                               file=self.folder / kept if kept else None)
            return entry, np.asarray(data["vector"], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # half-written by a crash, or not ours: left for "empty"

    def entries(self, limit: int = 500) -> list[TrashEntry]:
        """The most recently deleted first."""
        if not self.folder.is_dir():
            return []
        records = sorted(self.folder.glob(f"*{RECORD}"), key=lambda p: p.stat().st_mtime, reverse=True)
        found = (self._read(p) for p in records[: max(0, limit)])
        return [pair[0] for pair in found if pair is not None]

    def ids(self) -> set[str]:
        return {p.name.removesuffix(RECORD) for p in self.folder.glob(f"*{RECORD}")} if self.folder.is_dir() else set()

    def restore(self, store: VectorStore, ids: Sequence[str]) -> tuple[list[Asset], list[tuple[str, str]]]:
        """Put files back and records into the store; returns what came back and what could not, with why."""
        restored: list[tuple[Asset, np.ndarray]] = []
        problems: list[tuple[str, str]] = []
        for asset_id in dict.fromkeys(ids):
            pair = self._read(self._record(asset_id)) if _ASSET_ID.match(asset_id) else None
            if pair is None:
                problems.append((asset_id[:80], "it is not in the Trash (emptied, or already restored)"))
                continue
            entry, vector = pair
            original = Path(entry.asset.path)
            if entry.file is not None and not self.owns(original):
                problems.append((entry.asset.filename, "it would go back outside the app's own folders"))
                continue
            if entry.file is not None and entry.file.is_file():
                original.parent.mkdir(parents=True, exist_ok=True)
                if original.exists():  # the same content came back meanwhile (same id, same bytes)
                    entry.file.unlink()
                else:
                    shutil.move(str(entry.file), original)
            if not original.is_file():
                problems.append((entry.asset.filename, f"its file is gone from {original}"))
                continue
            restored.append((entry.asset, vector))
        if restored:
            store.upsert([a for a, _ in restored], np.stack([v for _, v in restored]))
            store.flush()
            for asset, _ in restored:
                self._record(asset.id).unlink(missing_ok=True)
        return [a for a, _ in restored], problems

    def empty(self) -> int:
        """Delete everything in the trash for good; returns how many images went."""
        if not self.folder.is_dir():
            return 0
        files = [p for p in self.folder.iterdir() if p.is_file()]
        records = {p.name.removesuffix(RECORD) for p in files if p.suffix == RECORD}
        loose = [p for p in files if p.suffix != RECORD and p.stem not in records]  # trashed before records were kept
        for p in files:
            p.unlink(missing_ok=True)
        return len(records) + len(loose)


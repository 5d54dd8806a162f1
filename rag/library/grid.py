"""The library as a grid: newest first, filtered, paged, with counts per facet.

Neither Milvus Lite nor a Milvus server sorts a query by a field (``order_by`` is ignored by
both; checked with pymilvus 3.0.2, Lite 3.2.2, server 2.3.5), and Lite needs ~0.55 s to return the
(id, created) of 10k records. So the grid reads from :class:`LibraryIndex`, a small in-memory copy
of each record's light fields (id, date added, folder, source, model, tags) kept newest first:
built with one scan, then kept current by the store's write notifications. On Milvus Lite one
process holds the database, so nothing else can change it behind the index's back; on a server
(where other app replicas or the CLI may write) the index is rebuilt when older than
``SERVER_MAX_AGE_S``. Full records for the page's 60 ids come from one ``get``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rag.core import Asset, BananaError
from rag.store import VectorStore, build_filter, folder_names, within

PAGE_SIZE = 60
TABLE_COLUMNS = ["filename", "folder", "source", "tags", "width", "height", "format", "bytes", "added", "id", "path"]
SERVER_MAX_AGE_S = 15.0
DAY = 86_400.0
# "Date added" choices: a label and how far back it reaches (None: older than a month).
ADDED: dict[str, float | None] = {"past day": DAY, "past week": 7 * DAY, "past month": 30 * DAY, "older": None}
FACETS = ("folder", "source", "model", "tags", "added")


@dataclass(frozen=True)
class Row:
    """What the grid needs of one record to filter and order it."""

    id: str
    created: float
    folder: str
    source: str
    model: str = ""
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: dict[str, Any] | Asset) -> Row:
        data = record.to_dict() if isinstance(record, Asset) else record
        meta = data.get("meta") or {}
        tags = meta.get("tags") or []
        return cls(
            id=str(data["id"]), created=float(data["created"]), folder=str(data["folder"]), source=str(data["source"]),
            model=str(meta.get("model") or "") if isinstance(meta, dict) else "",
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        )


@dataclass(frozen=True)
class LibraryFilter:
    """The grid's filters. Several values of one kind match any of them; kinds combine with AND; a
    folder includes its subfolders."""

    folders: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    added: str = ""  # a key of ADDED, or "" for any time

    def __post_init__(self) -> None:
        for name in ("folders", "sources", "models", "tags"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        object.__setattr__(self, "folders", tuple(folder_names(self.folders)))  # as stored: "a/b", not "a/b/"
        if self.added not in ("", *ADDED):
            raise BananaError(f"Date added must be one of {', '.join(ADDED)} (or empty), not {self.added[:40]!r}.")

    def window(self, now: float) -> tuple[float | None, float | None]:
        """The ``created`` range of the "date added" choice: (at or after, before)."""
        if not self.added:
            return None, None
        reach = ADDED[self.added]
        return (None, now - ADDED["past month"]) if reach is None else (now - reach, None)

    def expression(self, now: float | None = None) -> str:
        """The same filter as a Milvus expression (the table view and tests use it)."""
        after, before = self.window(time.time() if now is None else now)
        return build_filter(self.folders, self.sources, tags=self.tags, models=self.models,
                            added_after=after, added_before=before)

    def matches(self, row: Row, now: float, skip: str = "") -> bool:
        """Whether ``row`` passes every filter except the facet named ``skip``."""
        after, before = self.window(now)
        return not (
            (skip != "folder" and self.folders and not within(row.folder, self.folders))
            or (skip != "source" and self.sources and row.source not in self.sources)
            or (skip != "model" and self.models and row.model not in self.models)
            or (skip != "tags" and self.tags and not set(self.tags) & set(row.tags))
            or (skip != "added" and ((after is not None and row.created < after) or (before is not None and row.created >= before)))
        )


@dataclass
class LibraryPage:
    """One page of the grid, the number of matches and the counts per facet value."""

    assets: list[Asset]
    total: int
    offset: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def more(self) -> bool:
        return self.offset + len(self.assets) < self.total

    def to_dict(self) -> dict[str, Any]:
        return {"assets": [a.to_dict() for a in self.assets], "total": self.total, "offset": self.offset,
                "more": self.more, "facets": self.facets}


def facet_counts(rows: Iterable[Row], chosen: LibraryFilter, now: float) -> dict[str, dict[str, int]]:
    """For each facet, how many records each value would show, given the other facets' choices. A
    folder counts its subfolders' images too, and a folder that holds only subfolders is listed: the
    folder pickers offer every level ("spring launch (38)", "spring launch/food (20)")."""
    counts: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    counts["added"] = dict.fromkeys(ADDED, 0)
    for row in rows:
        for name in FACETS:
            if not chosen.matches(row, now, skip=name):
                continue
            bucket = counts[name]
            if name == "tags":
                for tag in row.tags:
                    bucket[tag] = bucket.get(tag, 0) + 1
            elif name == "added":
                age = now - row.created
                for label, reach in ADDED.items():
                    bucket[label] += age >= ADDED["past month"] if reach is None else age < reach
            elif name == "folder":
                for folder in folder_levels(row.folder):
                    bucket[folder] = bucket.get(folder, 0) + 1
            elif name != "model" or row.model:
                value = getattr(row, name)
                bucket[value] = bucket.get(value, 0) + 1
    return {k: v if k == "added" else dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) for k, v in counts.items()}


def folder_levels(folder: str) -> list[str]:
    """A folder and every folder above it: "a/b/c" -> ["a", "a/b", "a/b/c"]."""
    parts = folder.split("/")
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


class LibraryIndex:
    """The light fields of every record, newest first (see the module's docstring for why)."""

    def __init__(self, store: VectorStore, *, max_age_s: float | None = None) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self._rows: dict[str, Row] = {}
        self._ordered: list[Row] | None = None
        self._built = 0.0
        self._fresh = False
        self._lock = threading.RLock()
        store.subscribe(self._changed)

    def stop_listening(self) -> None:
        """Hear no more of this process's writes: what an index in another process knows of them (nothing)."""
        self.store.unsubscribe(self._changed)

    def _changed(self, stored: Sequence[Asset], deleted: Sequence[str]) -> None:
        with self._lock:
            for asset in stored:
                self._rows[asset.id] = Row.of(asset)
            for asset_id in deleted:
                self._rows.pop(asset_id, None)
            self._ordered = None

    def rows(self) -> list[Row]:
        """Every row, newest first (ties by id, so pages are stable)."""
        with self._lock:
            stale = self.max_age_s is not None and time.monotonic() - self._built > self.max_age_s
            if not self._fresh or stale:
                self._rebuild()
            if self._ordered is None:
                self._ordered = sorted(self._rows.values(), key=lambda r: (-r.created, r.id))
            return self._ordered

    def _rebuild(self) -> None:
        rows: dict[str, Row] = {}
        for batch in self.store.iter_records(fields=["created", "folder", "source", "meta"]):
            rows.update((str(r["id"]), Row.of(r)) for r in batch)
        self._rows, self._ordered = rows, None
        self._built, self._fresh = time.monotonic(), True

    def page(self, chosen: LibraryFilter, offset: int = 0, limit: int = PAGE_SIZE) -> tuple[list[str], int, dict[str, dict[str, int]]]:
        """The ids of one page, how many match, and the facet counts."""
        now = time.time()
        rows = self.rows()
        matching = [r.id for r in rows if chosen.matches(r, now)]
        offset, limit = max(0, int(offset)), max(0, int(limit))
        return matching[offset : offset + limit], len(matching), facet_counts(rows, chosen, now)


def library_page(index: LibraryIndex, store: VectorStore, chosen: LibraryFilter, offset: int = 0,
                 limit: int = PAGE_SIZE) -> LibraryPage:
    """One grid page with full records, in the index's order."""
    ids, total, facets = index.page(chosen, offset, limit)
    return LibraryPage(assets=store.get(ids), total=total, offset=max(0, int(offset)), facets=facets)


def table_frame(assets: Sequence[Asset]) -> pd.DataFrame:
    """Records as the table view's rows (the order is kept)."""
    rows = [
        {**{k: getattr(a, k) for k in TABLE_COLUMNS if k not in ("added", "tags")},
         "tags": ", ".join(t for t in a.meta.get("tags") or [] if isinstance(t, str)),
         "added": time.strftime("%Y-%m-%d %H:%M", time.localtime(a.created))}
        for a in assets
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def duplicate_reasons(store: VectorStore, duplicates: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(file, "already in the library as NAME in FOLDER") for each duplicate of an ingest."""
    found = {a.id: a for a in store.get([i for _, i in duplicates])}
    rows = []
    for path, asset_id in duplicates:
        match = found.get(asset_id)
        where = f"{match.filename} in {match.folder}" if match else f"asset {asset_id[:12]}"
        rows.append((path, f"already in the library as {where}"))
    return rows

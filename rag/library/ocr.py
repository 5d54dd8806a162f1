"""Reading the text printed in the library's pictures, after they are embedded and stored.

Each record keeps what was read in its ``meta``: ``ocr`` (the lines, one per line of text; "" when the
picture holds none), ``ocr_state`` (``read``, or ``failed`` with ``ocr_error`` saying why) and
``ocr_engine``. Word search reads ``meta["ocr"]`` with the rest of the record's words
(:func:`rag.store.words.asset_text`), so BM25 and hybrid search find a picture by the words printed in it
with no search code of their own. The mark on each record is the cursor: a run that stops (killed, the
app closed) resumes with the records not marked yet, and export, import and backups carry it along.

Nothing here decides when to run: :class:`rag.studio.OcrService` runs it in the background after an
ingest, and ``python -m rag ocr`` back-fills a library. A record is rewritten with its stored vector
under the ingest lock, re-read just before, so a tag edited meanwhile is kept.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from rag.core import Asset, ImageError
from rag.library.assets import rewrite
from rag.media import TextReader
from rag.store import VectorStore

log = logging.getLogger(__name__)

TEXT, STATE, ERROR, ENGINE = "ocr", "ocr_state", "ocr_error", "ocr_engine"
READ, FAILED = "read", "failed"
BATCH = 8  # pictures read between two writes: a stop or a newer ingest waits at most one batch
Progress = Callable[[int, int, str], None]


@dataclass
class OcrReport:
    """What a run read: how many pictures, how many held text, which failed and why."""

    read: int = 0
    with_text: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    seconds: float = 0.0
    total: int = 0

    def summary(self) -> str:
        failed = f", {len(self.failed)} could not be read" if self.failed else ""
        return f"{self.read} of {self.total} images read, {self.with_text} with text{failed} ({self.seconds:.1f} s)."

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "with_text": self.with_text, "total": self.total, "seconds": round(self.seconds, 3),
                "failed": [{"path": p, "reason": r} for p, r in self.failed], "summary": self.summary()}


def is_read(meta: dict[str, Any]) -> bool:
    """Whether a record's picture has been through OCR (read, or failed for a reason kept beside it)."""
    return meta.get(STATE) in (READ, FAILED)


def text_lines(asset: Asset) -> list[str] | None:
    """The lines of text read in a picture; None while it has not been read."""
    if not is_read(asset.meta):
        return None
    return [line for line in str(asset.meta.get(TEXT) or "").splitlines() if line.strip()]


def _in_folder(folder: str, within: str) -> bool:
    return not within or folder == within or folder.startswith(within.rstrip("/") + "/")


def pending(store: VectorStore, *, folder: str = "", redo: bool = False) -> list[str]:
    """Ids of the records still to read (every one with ``redo``), in ``folder`` and its subfolders when given."""
    ids = []
    for rows in store.iter_records(fields=["folder", "meta"]):
        for row in rows:
            meta = row.get("meta") or {}
            meta = json.loads(meta) if isinstance(meta, str) else meta
            if _in_folder(str(row.get("folder", "")), folder) and (redo or not is_read(meta)):
                ids.append(str(row["id"]))
    return ids


def _outcome(reader: TextReader, asset: Asset) -> dict[str, Any]:
    """The marks one picture gets; a failure is logged with its file and never stops the run."""
    try:
        reading = reader.read(asset.path, background=True)
    except ImageError as exc:
        log.warning("The text in %s could not be read: %s", asset.path, exc)
        return {STATE: FAILED, ERROR: str(exc), TEXT: "", ENGINE: reader.name}
    return {STATE: READ, TEXT: reading.text[:4000], ENGINE: reader.name}


def read_batches(store: VectorStore, reader: TextReader, batches: Iterable[Sequence[str]],
                 lock: threading.Lock) -> Iterator[tuple[int, list[tuple[Asset, dict[str, Any]]]]]:
    """Read each batch's pictures, as many at once as the reader allows, and write what each says into its
    record; yields, once written, each batch's size and its assets (those still stored) with their marks.

    The next batch is being read while one is written, so the readers never stand idle behind a slow
    picture at a batch's end. An empty batch means "nothing more for now": all in hand is written.
    """
    with ThreadPoolExecutor(reader.workers, thread_name_prefix="ocr-batch") as pool:
        in_hand: deque[tuple[int, list[Asset], list[Future[dict[str, Any]]]]] = deque()
        for ids in itertools.chain(batches, [[]]):  # the last: write what is in hand
            if ids:
                assets = store.get(list(ids))
                in_hand.append((len(ids), assets, [pool.submit(_outcome, reader, asset) for asset in assets]))
            while len(in_hand) > (1 if ids else 0):
                size, assets, reading = in_hand.popleft()
                yield size, _written(store, lock, assets, reading)


def _written(store: VectorStore, lock: threading.Lock, assets: list[Asset],
             reading: list[Future[dict[str, Any]]]) -> list[tuple[Asset, dict[str, Any]]]:
    done = [(asset, future.result()) for asset, future in zip(assets, reading)]
    marks = {asset.id: mark for asset, mark in done}
    if marks:
        def change(asset: Asset) -> Asset:
            meta = {k: v for k, v in asset.meta.items() if k != ERROR}
            return replace(asset, meta=meta | marks[asset.id])

        with lock:
            rewrite(store, list(marks), change)
    return done


def run(store: VectorStore, reader: TextReader, ids: Sequence[str], lock: threading.Lock, *,
        progress: Progress | None = None, stop: threading.Event | None = None) -> OcrReport:
    """Read ``ids`` a batch at a time (what ``python -m rag ocr`` does); ``stop`` ends it after the batches in hand."""
    report, start = OcrReport(total=len(ids)), time.perf_counter()
    batches = (ids[first:first + BATCH] for first in range(0, len(ids), BATCH) if stop is None or not stop.is_set())
    settled = 0
    for size, written in read_batches(store, reader, batches, lock):
        settled += size
        for asset, mark in written:
            report.read += 1
            report.with_text += bool(mark[TEXT])
            if mark[STATE] == FAILED:
                report.failed.append((asset.path, mark[ERROR]))
        if progress is not None:
            progress(settled, len(ids), report.summary())
    store.flush()
    report.seconds = time.perf_counter() - start
    return report


def counts(store: VectorStore) -> dict[str, int]:
    """How many pictures have been read, how many hold text, how many failed and how many wait."""
    total = store.count()
    read = store.count(f'meta["{STATE}"] == "{READ}"')
    failed = store.count(f'meta["{STATE}"] == "{FAILED}"')
    with_text = read - store.count(f'meta["{STATE}"] == "{READ}" and meta["{TEXT}"] == ""')
    return {"read": read, "with_text": with_text, "failed": failed, "waiting": max(0, total - read - failed)}

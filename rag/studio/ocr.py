"""The text printed in the library's pictures: read in the background after an ingest, back-filled on demand.

:class:`OcrService` is ``studio.ocr``. The app calls :meth:`OcrService.start` once: one worker thread then
feeds the reader the pictures no run has read yet (the back-fill), and afterwards each ingest's new images,
a batch at a time; the reader reads ``OCR_WORKERS`` of them at once at the lowest CPU priority, so search
and uploads never wait on it. Without :meth:`start` (the CLI, scripts) an ingest
queues nothing, and ``python -m rag ocr`` (:meth:`OcrService.read`) reads in the foreground with a
progress bar. The work is :mod:`rag.library.ocr`; the engine, its pixel limit and time box
:mod:`rag.media.ocr`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rag.core import Asset, BananaError, Settings
from rag.library import IngestReport, ocr
from rag.media import TextReader, reader_for
from rag.store import VectorStore

log = logging.getLogger(__name__)
OCR_OFF = ("Reading the text in pictures is off: set OCR=auto (needs the rapidocr-onnxruntime package, or "
           "Debian's tesseract-ocr) and run it again.")


class OcrService:
    """The background stage (one thread feeding the reader from a queue of record ids) and the foreground back-fill.

    ``settings`` and ``store`` are getters, as for the other services; ``lock`` is the ingest lock, held
    only while a batch's records are written (never while pictures are read), so a re-index or an ingest
    never races a write."""

    def __init__(self, settings: Callable[[], Settings], store: Callable[[], VectorStore], lock: threading.Lock) -> None:
        self._settings = settings
        self._store = store
        self._lock = lock
        self._queue: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._worker: threading.Thread | None = None

    @property
    def reader(self) -> TextReader | None:
        """The engine with its limits, or None when OCR is off or no engine is installed."""
        return reader_for(self._settings())

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def start(self) -> bool:
        """Start the background stage (the app does, once); False when OCR is off or has no engine."""
        if self.running or self.reader is None:
            return self.running
        self._stop.clear()
        self._idle.clear()
        self._worker = threading.Thread(target=self._work, name="ocr", daemon=True)
        self._worker.start()
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in hand (before the store closes); what is unread stays for the next start."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self._worker = None

    def queue_report(self, report: IngestReport) -> None:
        """After an ingest: its new images wait for the background stage (nothing while it is not running)."""
        if self.running:
            for asset in report.added:
                self._queue.put(asset.id)
            self._idle.clear()  # after the ids: the stage, finding none, may have just said it is idle

    def wait(self, timeout: float) -> bool:
        """Whether the background stage ran out of work within ``timeout`` seconds."""
        return self._idle.wait(timeout)

    def _work(self) -> None:
        try:
            for asset_id in ocr.pending(self._store()):
                self._queue.put(asset_id)
        except BananaError as exc:
            log.warning("The pictures still to read could not be listed: %s", exc)
        while not self._stop.is_set():
            reader = self.reader
            try:
                if reader is not None:
                    for _ in ocr.read_batches(self._store(), reader, self._batches(), self._lock):
                        pass
            except BananaError as exc:  # the store closed or failed: these wait for the next start
                log.warning("Reading the text of the pictures stopped: %s", exc)
                time.sleep(1.0)

    def _batches(self) -> Iterator[list[str]]:
        """Queued ids a batch at a time, until a stop; an empty batch when none wait, so all in hand is written
        (and then, with none queued meanwhile, the stage is idle)."""
        while not self._stop.is_set():
            ids = self._take()
            with self._lock:  # an ingest or a re-index in progress finishes first: it is not slowed, nor raced
                pass
            yield ids
            if not ids and self._queue.empty():
                self._idle.set()

    def _take(self) -> list[str]:
        """Up to a batch of queued ids, waiting a little for the first."""
        try:
            ids = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        while len(ids) < ocr.BATCH:
            try:
                ids.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return list(dict.fromkeys(ids))

    def read(self, *, folder: str = "", redo: bool = False, progress: ocr.Progress | None = None) -> ocr.OcrReport:
        """``python -m rag ocr``: read the pictures not read yet (all of them with ``redo``), in ``folder`` and its
        subfolders when given; a second run after a stop resumes where it ended."""
        reader = self.reader
        if reader is None:
            raise BananaError(OCR_OFF)
        store = self._store()
        ids = ocr.pending(store, folder=folder.strip(), redo=redo)
        return ocr.run(store, reader, ids, self._lock, progress=progress)

    def stats(self) -> dict[str, Any]:
        """How many pictures have been read (and hold text), failed, or wait; which engine reads them."""
        reader = self.reader
        return {**ocr.counts(self._store()), "engine": reader.name if reader else "off", "background": self.running}

    @staticmethod
    def lines(asset: Asset) -> list[str] | None:
        """The lines of text read in ``asset``'s picture (None: not read yet)."""
        return ocr.text_lines(asset)

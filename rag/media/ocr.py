"""Reading the words printed in a picture (OCR), behind one narrow interface, :class:`OcrEngine`.

Two engines plug in. :class:`RapidOcr` (the default) runs PaddleOCR's PP-OCRv4 detection and recognition
models, which the ``rapidocr-onnxruntime`` wheel carries, on ONNX Runtime on the CPU; :class:`Tesseract`
calls Debian's ``tesseract`` program. Why RapidOCR is the default, measured on ``tests/data/ocr``, is in
the README ("Words in the pictures"). :func:`read_image` is the only way a picture reaches an engine: it
refuses an image over the pixel limit from the size its header declares, before a pixel is decoded,
shrinks (or, for small clip art, enlarges) it to a working size, and gives the engine a time box.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image, ImageStat

from rag.core import ImageError, Settings
from rag.media.images import decoding, has_alpha, open_image, upright

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_SIDE = 1280  # the long side an engine sees: 24 px text in a 2,500 px picture stays ~12 px, still read
MIN_SIDE = 640  # small clip art is enlarged (at most 3x) up to this: its 9 px captions become readable
MAX_LINES = 200  # text boxes recognised per picture at most; bounds the work a busy picture costs
MIN_SCORE = 0.5  # recognitions the engine itself doubts are dropped
PROBE_SIDE = 384  # a picture is first searched for text at this size; none found: done
GATE_BOXES = 3  # the probe's largest boxes read to tell words from shapes
DETAIL_SIDE = 768  # where the first pass found words, the second searches at this size, for smaller print
BACKGROUND_NICE = 19  # the background stage's readings run at the lowest priority


@dataclass(frozen=True)
class OcrLine:
    """One line of text found in a picture, with the engine's confidence and where it is (working pixels)."""

    text: str
    score: float
    top: float = 0.0
    left: float = 0.0


class OcrEngine(Protocol):
    """What the app needs of an OCR engine: a name, and the lines of an RGB picture it is handed."""

    name: str

    def read(self, image: Image.Image) -> list[OcrLine]: ...


class RapidOcr:
    """PP-OCRv4 (English and Chinese) through ``rapidocr-onnxruntime``; the models ship inside the wheel.

    Each reading in progress holds an engine of its own (the wheel's detector keeps per-call state on
    itself), loaded on first need and kept for the next: as many as pictures are read at once, 25 MB
    each. ``threads`` is ONNX Runtime's per-call thread count: one core per reading, as it reads in the
    background while people search.
    """

    name = "rapidocr"

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._idle: list[Any] = []  # loaded engines no reading holds now
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        """Whether the engine loads: installed, with the system library OpenCV needs (libGL). A machine
        without it reads no text, and says so once, rather than failing on every picture."""
        try:
            import rapidocr_onnxruntime  # noqa: F401
        except (ImportError, OSError) as exc:
            log.warning("Text in pictures is off: the OCR engine does not load (%s).", exc)
            return False
        return True

    @contextmanager
    def _engine(self) -> Iterator[Any]:
        with self._lock:
            engine = self._idle.pop() if self._idle else None
        if engine is None:
            from rapidocr_onnxruntime import RapidOCR

            # The wheel's default enlarges every picture until its short side is 736 px (1.4 s for a
            # 560x300 label here); pictures arrive at the working size instead, so "max" keeps them.
            engine = RapidOCR(det_limit_type="max", det_limit_side_len=MAX_SIDE, det_max_candidates=MAX_LINES,
                              intra_op_num_threads=self._threads, inter_op_num_threads=1)
        try:
            yield engine
        finally:
            with self._lock:
                self._idle.append(engine)

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Two passes. The picture is searched for text at :data:`PROBE_SIDE` (most pictures hold none: done).
        When it is larger than that, the few largest boxes found are read, and only when they are words (not
        lone letter-like shapes) is it searched again at :data:`DETAIL_SIDE` for the smaller print, all of which
        is then read (a line read from the probe's looser box can differ: "Onlv" for "Only"). Against a second
        search at full size, this reads the sample library in 44% less CPU time and finds the same words on
        tests/data/ocr; a label that holds text pays for reading its largest boxes twice (bench/ocr.py, README)."""
        with self._engine() as engine:
            return self._read(engine, image)

    def _read(self, engine: Any, image: Image.Image) -> list[OcrLine]:
        boxes = self._find(engine, image, PROBE_SIDE)
        if boxes is None:
            return []
        pixels = engine.load_img(image)  # the engine's own array of the full picture, which both readings crop
        if max(image.size) <= PROBE_SIDE * 1.25:  # the probe saw it at (nearly) full size
            return _kept(self._recognise(engine, pixels, boxes))
        gate = boxes[np.sort(np.argsort(-np.prod(np.ptp(boxes, axis=1), axis=1))[:GATE_BOXES])]
        first = self._recognise(engine, pixels, gate)
        if not any(line and len(re.sub(r"\W", "", line.text)) >= 2 for line in first):
            return _kept(first)
        detail = self._find(engine, image, DETAIL_SIDE)
        return _kept(self._recognise(engine, pixels, boxes if detail is None else detail))

    @staticmethod
    def _find(engine: Any, image: Image.Image, side: int) -> Any:
        """Text boxes (n×4×2, in ``image``'s pixels) found in ``image`` shrunk to ``side``, or None."""
        small = image
        if max(image.size) > side:
            small = image.copy()
            small.thumbnail((side, side), Image.Resampling.BILINEAR)
        boxes, _ = engine.text_det(engine.load_img(small))
        if boxes is None or not len(boxes):
            return None
        return np.asarray(boxes, dtype=np.float32)[:MAX_LINES] * (image.width / small.width)

    @staticmethod
    def _recognise(engine: Any, pixels: Any, boxes: Any) -> list[OcrLine | None]:
        """Each box's line, in the order given (None where the engine read nothing it trusts)."""
        crops, _, _ = engine.text_cls(engine.get_crop_img_list(pixels, list(boxes)))
        found, _ = engine.text_rec(crops)
        return [OcrLine(str(text).strip(), round(float(score), 3), float(box[:, 1].min()), float(box[:, 0].min()))
                if str(text).strip() and float(score) >= MIN_SCORE else None for box, (text, score) in zip(boxes, found)]


def _kept(lines: list[OcrLine | None]) -> list[OcrLine]:
    return [line for line in lines if line is not None]


class Tesseract:
    """Debian's ``tesseract`` program (``apt-get install tesseract-ocr tesseract-ocr-eng``), one process a picture."""

    name = "tesseract"

    def __init__(self, language: str = "eng", program: str = "tesseract") -> None:
        self._language = language
        self._program = program

    @staticmethod
    def available(program: str = "tesseract") -> bool:
        return shutil.which(program) is not None

    def read(self, image: Image.Image) -> list[OcrLine]:
        with tempfile.TemporaryDirectory(prefix="banana-ocr-") as tmp:
            path = Path(tmp) / "in.png"
            image.save(path)
            # --psm 11: sparse text, words anywhere (labels and signs, not pages); one thread per process.
            done = subprocess.run([self._program, str(path), "-", "--psm", "11", "-l", self._language],
                                  capture_output=True, text=True, timeout=60, env={"OMP_THREAD_LIMIT": "1"})
        if done.returncode != 0:
            raise ImageError(f"tesseract could not read it ({done.stderr.strip()[:200]})")
        return [OcrLine(line.strip(), 1.0, float(i)) for i, line in enumerate(done.stdout.splitlines()) if line.strip()]


def make_engine(choice: str = "auto", *, threads: int = 1) -> OcrEngine | None:
    """The engine ``choice`` names ("auto": RapidOCR when installed, else tesseract when on the PATH), or None."""
    if choice in ("auto", "rapidocr") and RapidOcr.available():
        return RapidOcr(threads)
    if choice in ("auto", "tesseract") and Tesseract.available():
        return Tesseract()
    return None


def _flatten(img: Image.Image) -> Image.Image:
    """RGB for an engine. A transparent cut-out goes on white, or on black when what it shows is light
    (white lettering on nothing): a plain convert would lay black text on black."""
    if img.mode in ("P", "1", "PA", "LA", "La") or img.mode.startswith("I") or img.mode == "F":
        img = img.convert("RGBA" if has_alpha(img) else "RGB")
    if not has_alpha(img):
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    alpha = rgba.getchannel("A")
    solid = alpha.point(lambda a: 255 if a > 127 else 0)
    light = bool(solid.getbbox()) and ImageStat.Stat(rgba.convert("L"), mask=solid).mean[0] > 170
    canvas = Image.new("RGB", rgba.size, (0, 0, 0) if light else (255, 255, 255))
    canvas.paste(rgba, mask=alpha)
    return canvas


def _working_size(img: Image.Image) -> Image.Image:
    long_side = max(img.size)
    if long_side > MAX_SIDE:
        scale = MAX_SIDE / long_side
    elif long_side < MIN_SIDE:
        scale = min(3.0, MIN_SIDE / long_side)
    else:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def prepare(source: bytes | str | Path, max_pixels: int) -> Image.Image:
    """The picture an engine reads: refused over ``max_pixels`` before decoding, upright, flat RGB, working size."""
    img = open_image(source, max_pixels)
    with decoding(img.mode, max_pixels):
        if (img.format or "").upper() in ("JPEG", "MPO"):
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode big JPEGs at 1/2..1/8 scale
        img.load()
        img = upright(img)
        if img.width * img.height > max_pixels:
            raise ImageError(f"the image is too large to read its text ({img.width}×{img.height})")
        if max(img.size) > 2 * MAX_SIDE:
            img.thumbnail((2 * MAX_SIDE, 2 * MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return _working_size(_flatten(img))


class OcrTimeout(ImageError):
    """Reading one picture took longer than its time box."""


def _lower_priority() -> None:
    """The calling thread gives way to every other: on Linux a nice value belongs to one thread
    (setpriority(2), "BUGS"), so searches and ingests in the same process keep their share of the CPU."""
    if sys.platform.startswith("linux"):  # elsewhere a thread id is not a process id: it could name another
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError:
            pass


class TimeBox:
    """At most ``slots`` calls at once, each in a thread of its own, waited on for at most ``seconds``.

    An engine call cannot be interrupted. One that overruns keeps its slot until it ends (its work is
    bounded by :data:`MAX_SIDE` and :data:`MAX_LINES`), so overruns never add up to more than ``slots``
    readings at once; its caller has its answer at the deadline all the same.
    """

    def __init__(self, seconds: float, slots: int = 1) -> None:
        self.seconds = seconds
        self._slots = threading.BoundedSemaphore(slots)

    def run(self, work: Callable[[], T], *, lowly: bool = False) -> T:
        """``work()``'s answer; ``lowly``: it runs at the lowest CPU priority (background reading)."""
        deadline = time.monotonic() + self.seconds
        if not self._slots.acquire(timeout=self.seconds):
            raise OcrTimeout(f"the text reader stayed busy for longer than {self.seconds:g} s")
        answer: Future[T] = Future()

        def call() -> None:
            try:
                if lowly:
                    _lower_priority()
                answer.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
                answer.set_exception(exc)
            finally:
                self._slots.release()

        threading.Thread(target=call, name="ocr", daemon=True).start()
        try:
            return answer.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise OcrTimeout(f"reading its text took longer than {self.seconds:g} s") from None


@dataclass(frozen=True)
class OcrReading:
    """What one picture says: its lines in reading order, and how long reading took (decoding included)."""

    lines: list[str]
    seconds: float
    engine: str

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class TextReader:
    """An engine with its time box and pixel limit: what the library's background stage and the text check use.
    ``workers``: how many pictures it reads at once, process-wide (one core each)."""

    def __init__(self, engine: OcrEngine, *, max_pixels: int, timeout_s: float, workers: int = 1) -> None:
        self.engine = engine
        self.max_pixels = max_pixels
        self.workers = workers
        self.box = TimeBox(timeout_s, workers)

    @property
    def name(self) -> str:
        return self.engine.name

    def read(self, source: bytes | str | Path, *, background: bool = False) -> OcrReading:
        """The text printed in one picture; raises :class:`ImageError` (too large, unreadable, timed out, failed).
        ``background``: decoding and reading run at the lowest CPU priority, so people's searches go first."""
        start = time.perf_counter()
        try:
            found = self.box.run(functools.partial(self._lines, source), lowly=background)
        except ImageError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine failure is one file's failure, never the run's
            log.debug("OCR failed: %r", exc)
            raise ImageError(f"the text reader failed on it ({type(exc).__name__})") from None
        rows = sorted(found, key=lambda line: (round(line.top / 12), line.left))  # top to bottom, left to right
        return OcrReading([line.text for line in rows], time.perf_counter() - start, self.engine.name)

    def _lines(self, source: bytes | str | Path) -> list[OcrLine]:
        return self.engine.read(prepare(source, self.max_pixels))


@functools.cache
def _shared(choice: str, max_pixels: int, timeout_s: float, workers: int) -> TextReader | None:
    engine = make_engine(choice)
    return TextReader(engine, max_pixels=max_pixels, timeout_s=timeout_s, workers=workers) if engine is not None else None


def reader_for(settings: Settings) -> TextReader | None:
    """The process's one reader for these settings (None: ``OCR=off``, or no engine installed). One set of
    models in memory, and at most ``OCR_WORKERS`` pictures read at once, by the background stage and a
    generated image's text check together."""
    if settings.ocr == "off":
        return None
    return _shared(settings.ocr, settings.ocr_max_pixels, settings.ocr_timeout_s, settings.ocr_workers)

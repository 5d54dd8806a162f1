"""JPEGs decoded in batches on the model's device (``torchvision.io.decode_jpeg``), for ingest on a GPU.

A 12 MP camera JPEG costs 25-40 ms of a CPU core to decode even at 1/8 scale, because its entropy
decoding does not shrink with the picture (bench/README.md), while an H100 embeds several thousand
pictures a second in fp16: decoding with Pillow on 16 cores left it 4-11 % busy. So the ingest's
decode threads read each JPEG's header (rag/media/images.py ``jpeg_header``) and hand its bytes to a
:class:`BatchDecoder`, whose one thread takes every request waiting and decodes them in one call
(nvJPEG on a GPU), then runs open_clip's own resize and centre crop on the device (antialiased
bicubic, as Pillow's) and answers each thread with its uint8 picture, which stays on the device
until its batch is embedded. A file the device will not decode is decoded by Pillow on the thread
that asked (:meth:`rag.clip.embedder.ClipEmbedder.prepare_file`). With ``JPEG_DECODER=torchvision``
and the model on the CPU the same code runs with torchvision's CPU decoder: what the tests run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

MAX_BATCH = 64  # JPEGs decoded at once: 64 full 12 MP pictures are 2.3 GB on the device before they shrink
GATHER_S = 0.002  # how long the first request waits for others to join its batch
# open_clip's steps that apply to tensors as to pictures (MaybeConvertMode passes tensors through)
TENSOR_STEPS = ("Resize", "CenterCrop", "MaybeConvertMode")
RGB_STEP = "_convert_to_rgb"  # older open_clip's last step before ToTensor, for pictures only: the decoder gives RGB
# EXIF orientation -> the same transpose as rag/media/images.py's, on a (3, h, w) tensor.
_ORIENT: dict[int, Callable[[Any], Any]] = {
    2: lambda x: x.flip(-1),
    3: lambda x: x.flip(-1, -2),
    4: lambda x: x.flip(-2),
    5: lambda x: x.transpose(-1, -2),
    6: lambda x: x.rot90(-1, (-2, -1)),
    7: lambda x: x.transpose(-1, -2).flip(-1, -2),
    8: lambda x: x.rot90(1, (-2, -1)),
}


def tensor_steps(steps: Sequence[Callable]) -> list[Callable] | None:
    """open_clip's steps before ``ToTensor`` that apply to a uint8 tensor as to a picture (resize, crop);
    None when the transform has a step that does not (then JPEGs are decoded by Pillow)."""
    kept = []
    for step in steps:
        if type(step).__name__ in TENSOR_STEPS:
            kept.append(step)
        elif getattr(step, "__name__", "") != RGB_STEP:
            return None
    return kept


class _Request:
    def __init__(self, data: bytes, orientation: int) -> None:
        self.data, self.orientation = data, orientation
        self.result: Future[Any] = Future()


class BatchDecoder:
    """Decodes the JPEGs many threads ask for, a batch at a time, on one device; thread-safe."""

    def __init__(self, device: str, steps: Sequence[Callable], max_batch: int = MAX_BATCH) -> None:
        self.device, self.steps, self.max_batch = device, list(steps), max_batch
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.decoded = 0  # pictures this decoder has decoded (benchmarks and tests read it)
        self._stream: Any = None  # on a GPU, the CUDA stream its work runs on

    def decode(self, data: bytes, orientation: int = 1) -> Any:
        """One JPEG as open_clip's steps before ``ToTensor`` leave it: a uint8 (3, h, w) tensor on the
        device, upright. Raises what the device's decoder raised for this file."""
        request = _Request(data, orientation)
        with self._lock:
            if self._thread is None:  # started on first use, and for good: it waits on an empty queue
                self._thread = threading.Thread(target=self._serve, name="jpeg-batches", daemon=True)
                self._thread.start()
        self._requests.put(request)
        return request.result.result()

    def _serve(self) -> None:
        while True:
            batch = [self._requests.get()]
            until = time.monotonic() + GATHER_S
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._requests.get(timeout=max(0.0, until - time.monotonic())))
                except queue.Empty:
                    break
            self.run(batch)

    def run(self, batch: Sequence[_Request]) -> None:
        """Decode ``batch`` and answer each request with its picture or with what failed it."""
        try:
            outcomes = self._decoded(batch)
        except Exception as exc:  # noqa: BLE001 - every thread that asked hears of it (and goes to Pillow)
            outcomes = [exc] * len(batch)
        for request, outcome in zip(batch, outcomes):
            if isinstance(outcome, Exception):
                request.result.set_exception(outcome)
            else:
                self.decoded += 1
                request.result.set_result(outcome)

    def _decoded(self, batch: Sequence[_Request]) -> list[Any]:
        import torch

        data = [torch.frombuffer(bytearray(r.data), dtype=torch.uint8) for r in batch]
        if not self.device.startswith("cuda"):
            return self._shaped_all(batch, data)
        stream = self._stream = self._stream or torch.cuda.Stream(device=self.device)
        with torch.cuda.stream(stream):  # beside the model's work on the default stream
            outcomes = self._shaped_all(batch, data)
        stream.synchronize()  # every picture is whole before its thread has it (visual.py records its use)
        return outcomes

    def _shaped_all(self, batch: Sequence[_Request], data: list[Any]) -> list[Any]:
        """Each picture decoded and shaped, or the exception that stopped it: in one call, one at a time if that fails."""
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            pictures: list[Any] = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
        except Exception as exc:  # noqa: BLE001 - one bad file fails the call: decode them one by one
            log.debug("batched JPEG decoding failed (%s); decoding one at a time", exc)
            pictures = []
            for one in data:
                try:
                    pictures.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=self.device))
                except Exception as err:  # noqa: BLE001 - that file goes to Pillow
                    pictures.append(err)
        outcomes: list[Any] = []
        for request, picture in zip(batch, pictures):
            try:
                outcomes.append(picture if isinstance(picture, Exception) else self.shaped(picture, request.orientation))
            except Exception as exc:  # noqa: BLE001 - handed to the thread that asked
                outcomes.append(exc)
        return outcomes

    def shaped(self, picture: Any, orientation: int) -> Any:
        """A decoded (3, h, w) picture turned upright, then resized and cropped as open_clip does."""
        if orientation in _ORIENT:
            picture = _ORIENT[orientation](picture)
        for step in self.steps:
            picture = step(picture)
        return picture.contiguous()

"""Ordered, bounded prefetching: CPU-side work runs in threads while the caller runs the model."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, window: int) -> Iterator[R]:
    """Like ``map(fn, items)`` but ``fn`` runs ahead in ``workers`` threads, at most ``window`` at once.

    Pillow and torch release the GIL for decoding and resizing, so threads overlap them with the
    model's forward pass without the memory cost of worker processes. Results keep input order.
    """
    window = max(1, window)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="prefetch") as pool:
        pending: deque[Future[R]] = deque()
        source = iter(items)
        try:
            for item in source:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

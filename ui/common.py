"""What every tab shares: turning backend errors into messages, gallery items, progress."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import threading
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import gradio as gr

from rag.errors import BananaError
from rag.query import Query
from rag.studio import Studio
from rag.types import Asset, Hit

log = logging.getLogger("banana.ui")
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Backend errors become a plain-words message in the UI; anything else is logged, not shown raw."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BananaError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}). The details are in the server log.", print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def gallery_items(studio: Studio, items: Sequence[Asset | Hit]) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery (preview, caption) pairs and the asset ids in the same order.

    A hit's caption carries its score. Assets whose original is gone are left out of both lists,
    so a click on gallery item i always means ids[i].
    """
    pictures: list[tuple[str, str]] = []
    ids: list[str] = []
    for item in items:
        asset = item.asset if isinstance(item, Hit) else item
        preview = studio.preview(asset)
        if preview is None:
            continue
        caption = f"{asset.filename} · {item.score:.3f}" if isinstance(item, Hit) else asset.filename
        pictures.append((str(preview), caption))
        ids.append(asset.id)
    return pictures, ids


def api_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record for API clients. Gradio treats any dict with a ``path`` key as a file to upload,
    so the original's location travels as ``source_path``."""
    out = dict(record)
    out["source_path"] = out.pop("path", "")
    return out


def query_endpoint(studio: Studio) -> Callable[..., list[dict[str, Any]]]:
    """The ``/search`` API: one parameter per :class:`Query` option (all but the uploaded image), in field order."""
    hints = typing.get_type_hints(Query)
    api_fields = [f for f in dataclasses.fields(Query) if f.name != "image"]

    @user_errors
    def search(*values: Any) -> list[dict[str, Any]]:
        """Ranked results as records (id, filename, folder, source_path, score, ...)."""
        hits = studio.search(Query.of(dict(zip((f.name for f in api_fields), values))))
        return [api_record(h.to_dict()) for h in hits]

    params = []
    for f in api_fields:
        hint, default = hints[f.name], f.default
        if isinstance(default, tuple):  # JSON has lists, not tuples
            hint, default = list[str] | None, None
        params.append(inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=hint))
    search.__signature__ = inspect.Signature(params, return_annotation=list[dict[str, Any]])  # type: ignore[attr-defined]
    search.__annotations__ = {p.name: p.annotation for p in params} | {"return": list[dict[str, Any]]}
    return search


class OnePerUser:
    """At most one request at a time per browser session: a second click while a paid request runs
    is refused with a sentence instead of paying twice (the button is also disabled meanwhile)."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, request: gr.Request | None) -> Iterator[None]:
        key = getattr(request, "session_hash", None) or ""
        with self._lock:
            if key in self._busy:
                raise BananaError("A generation is already running for you; wait for it to finish.")
            self._busy.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(key)


def progress_callback(progress: gr.Progress) -> Callable[[int, int, str], None]:
    def update(done: int, total: int, message: str) -> None:
        progress((done, max(total, 1)), desc=message, unit="images")

    return update

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
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import gradio as gr

from rag.core import SOURCES, Asset, BananaError, Hit
from rag.library import LibraryFilter
from rag.search import Query
from rag.studio import Studio

log = logging.getLogger("banana.ui")
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@contextmanager
def _as_user_error(name: str) -> Iterator[None]:
    try:
        yield
    except gr.Error:
        raise
    except BananaError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except Exception as exc:  # noqa: BLE001
        log.exception("unexpected error in %s", name)
        raise gr.Error(f"Something went wrong ({type(exc).__name__}). The details are in the server log.", print_exception=False) from None


TEAMS = " · made before sign-in (the team's)"  # work stored without an owner, shown to every signed-in user


def user_errors(fn: F) -> F:
    """Backend errors become a plain-words message in the UI; anything else is logged, not shown raw.
    Works for generator handlers too (their errors happen while they are iterated)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with _as_user_error(fn.__name__):
                yield from fn(*args, **kwargs)

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _as_user_error(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def gallery_items(
    studio: Studio, items: Sequence[Asset | Hit], caption: Callable[[Asset], str] | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery (preview, caption) pairs and the asset ids in the same order.

    A hit's caption carries its score unless ``caption`` says otherwise. Assets whose original is
    gone are left out of both lists, so a click on gallery item i always means ids[i].
    """
    pictures: list[tuple[str, str]] = []
    ids: list[str] = []
    for item in items:
        asset = item.asset if isinstance(item, Hit) else item
        preview = studio.preview(asset)
        if preview is None:
            continue
        if caption is not None:
            caption_text = caption(asset)
        else:
            caption_text = f"{asset.filename} · {item.score:.3f}" if isinstance(item, Hit) else asset.filename
        pictures.append((str(preview), caption_text))
        ids.append(asset.id)
    return pictures, ids


def grid_items(studio: Studio, assets: Sequence[Asset], *, make: bool) -> tuple[list[tuple[str, str]], int]:
    """Gallery pairs for every asset, in order. Without ``make`` only previews made already are
    shown and the others get a placeholder (a page never waits); returns how many were missing."""
    placeholder = str(studio.placeholder())
    pictures, missing = [], 0
    for asset in assets:
        preview = studio.preview(asset, make=make)
        missing += preview is None
        pictures.append((str(preview or placeholder), display_name(asset)))
    return pictures, missing


def file_url(path: str | Path) -> str:
    """Where the page loads a file of the app's own folders from (Gradio's file route refuses any other)."""
    return f"/gradio_api/file={quote(str(path))}"


def version_of(asset: Asset) -> str:
    """A saved generated image's version in its session ("v3"), else ""."""
    made = asset.meta.get("provenance") if asset.source == "generated" else None
    return str(made.get("version") or "") if isinstance(made, dict) else ""


def display_name(asset: Asset) -> str:
    """The name a tile shows, what matters first so a cut caption keeps it: a generated image's version and
    what it was asked for ("v3 · add racing stripes"), else the file name."""
    version, prompt = version_of(asset), " ".join(str(asset.meta.get("prompt") or "").split())
    if not version:
        return asset.filename
    return f"{version} · {prompt[:60]}{'…' if len(prompt) > 60 else ''}" if prompt else f"{version} · {asset.filename}"


def api_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record for API clients. Gradio's client treats any dict with a ``path`` key, at any depth, as a file
    to download, so every location travels as ``source_path`` (a generated image's provenance nests its
    references' paths); tags are lifted out of ``meta``."""
    out = _no_paths(record)
    out.setdefault("source_path", "")
    meta = out.get("meta")
    if isinstance(meta, dict) and "tags" not in out:
        out["tags"] = list(meta.get("tags") or [])
    return out


def _no_paths(value: Any) -> Any:
    if isinstance(value, dict):
        return {("source_path" if k == "path" else k): _no_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_paths(v) for v in value]
    return value


Handler = tuple[Callable[..., Any], list[Any], list[Any]]  # (fn, inputs, outputs) of an event


def chain(event: Any, handlers: Sequence[Handler], *, success: bool = False) -> Any:
    """Run ``handlers`` one after another once ``event`` ends (after it succeeded, with ``success``)."""
    for n, (fn, inputs, outputs) in enumerate(handlers):
        then = event.success if success and n == 0 else event.then
        event = then(fn, inputs, outputs, api_name=False, show_progress=getattr(fn, "show_progress", "full"))
    return event


def quietly(fn: F) -> F:
    """Mark a handler to run without a loading overlay on its outputs (what they show stays visible)."""
    fn.show_progress = "hidden"  # type: ignore[attr-defined]
    return fn


def library_filter(folders: Any, sources: Any, added: Any, models: Any, tags: Any) -> LibraryFilter:
    """The grid's filter from its five controls (or API parameters), in that order."""
    return LibraryFilter(folders=tuple(folders or ()), sources=tuple(sources or ()), added=added or "",
                         models=tuple(models or ()), tags=tuple(tags or ()))


def md_escape(text: Any) -> str:
    """User text (file names, prompts, tags) shown literally inside Markdown."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~" else ch for ch in str(text)).replace("\n", " ")


SOURCE_WORDS = {"upload": "Uploaded", "folder": "From a folder", "generated": "Generated"}


def source_words(source: str) -> str:
    """A record's source as the page says it ("upload" is a stored code, "Uploaded" is what a person reads)."""
    return SOURCE_WORDS.get(source, source)


def source_choices(counts: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """The source filter's choices in words, with how many images each would show when ``counts`` is given."""
    return [(source_words(s) + (f" ({counts.get(s, 0)})" if counts is not None else ""), s) for s in SOURCES]


def counted(counts: dict[str, int]) -> list[tuple[str, str]]:
    """Dropdown/checkbox choices labelled with how many images each would show: ("food (8)", "food")."""
    return [(f"{value} ({n})", value) for value, n in counts.items()]


def streamed(work: Callable[[Callable[[int, int, str], None]], T], every: float = 0.25) -> Iterator[tuple[str, T | None]]:
    """Run ``work(progress)`` in a thread and yield its latest progress message while it runs
    (the UI shows counts as files are indexed), then ``("", result)``; its error is raised here."""
    box: dict[str, Any] = {"message": ""}
    done = threading.Event()

    def progress(_done: int, _total: int, message: str) -> None:
        box["message"] = message

    def run() -> None:
        try:
            box["result"] = work(progress)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="ui-work", daemon=True).start()
    shown = None
    while not done.wait(every):
        if box["message"] != shown:
            shown = box["message"]
            yield shown, None
    if "error" in box:
        raise box["error"]
    yield "", box["result"]


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

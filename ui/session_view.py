"""How the Generate tab shows a session: the selected version large, the strip of versions, the buttons.

One function, :func:`show`, turns (session, selected version, a line about the last run) into every
component's new state, so each event (generate, refine, click a version, open a session, "Edit
this") ends the same way and Save can only ever act on the version on screen.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from rag.core import BananaError
from rag.generation import ModelInfo, Session, Version
from rag.studio import Studio

from .common import TEAMS, md_escape

log = logging.getLogger("banana.ui")
REPLY_AT = 5  # where the line beside the run sits in :func:`shown_outputs`
REFINE_HINT = "e.g. now make the cape red (Ctrl+Enter)"


def user_of(request: gr.Request | None) -> str:
    """The signed-in user (``--auth``/``--users``), else empty: the owner of what a request makes and opens."""
    return getattr(request, "username", None) or ""


def caption(version: Version, came_from: str = "") -> str:
    """The version's number first, so a cut caption keeps it; a branch says where it came from ("v5 from v1")."""
    words = version.instruction or "the library image this session edits"
    check = f" · {version.text_check}" if version.text_check else ""  # quoted text read back: as asked, or not
    branch = f" from {came_from}" if came_from else ""
    return f"{version.label}{branch} · {words[:70]}{'…' if len(words) > 70 else ''}{check}"


def branches(versions: list[Version]) -> dict[str, str]:
    """Version id -> the label of its parent, for versions that do not follow the one before them (a branch,
    or a second image of one run)."""
    labels = {v.id: v.label for v in versions}
    return {v.id: labels[v.parent_id] for before, v in zip([None, *versions], versions)
            if v.parent_id in labels and (before is None or v.parent_id != before.id)}


def model_choices(models: list[ModelInfo]) -> list[tuple[str, str]]:
    """(label, id) per model; the id joins the label when two models share one (a preview and a dated release)."""
    labels = [m.label or m.name for m in models]
    return [(f"{label} · {m.name}" if labels.count(label) > 1 else label, m.name) for label, m in zip(labels, models)]


def cost_md(studio: Studio, model: str, size: str | None, n: float) -> str:
    """The estimate for a Generate click and for a Refine, and today's spend against the cap."""
    info = studio.model_list.get(model)
    count = int(n or 1)
    size_text = f" at {info.size(size or '')}" if info.sends_size else ""
    spend = studio.spend(days=1)
    cap = f" of ${spend['budget']:.2f} today" if spend["budget"] is not None else " today"
    return (f"About **${info.estimate(count, info.size(size or ''))}** for {count} image{'s' if count != 1 else ''}{size_text} · "
            f"refine ${info.estimate(1, info.size(size or ''))} · spent ${spend['today']:.3f}{cap}")


def recent_choices(studio: Studio, user: str) -> list[tuple[str, str]]:
    """Sessions to reopen, newest first; with sign-in, the user's own."""
    sessions: list[Session] = studio.recent_sessions(30, user=user or None)
    return [(f"{time.strftime('%b %d %H:%M', time.localtime(s.updated))} · {s.title[:48]} · "
             f"{s.n_versions} version{'s' if s.n_versions != 1 else ''}{TEAMS if user and not s.user else ''}", s.id)
            for s in sessions]


def show(studio: Studio, session_id: str, current_id: str, reply: str, *, enabled: bool, user: str,
         clear_refine: bool = False) -> tuple[Any, ...]:
    """New values for :func:`shown_outputs`: the session's strip with ``current_id`` large, ``reply`` beside it."""
    versions = studio.open_session(session_id, user=user)[1] if session_id else []
    current = next((v for v in versions if v.id == current_id), None)
    pictures, ids, came = [], [], branches(versions)
    for v in versions:
        preview = studio.version_preview(v)
        if preview is not None:
            pictures.append((str(preview), caption(v, came.get(v.id, ""))))
            ids.append(v.id)
    selected = ids.index(current.id) if current is not None and current.id in ids else None
    view = gr.Image(value=current.path if current else None,
                    label=caption(current, came.get(current.id, "")) if current else "Result")
    where = _refine_label(studio, current)
    return (
        session_id,
        ids,
        current.id if current else "",
        gr.Gallery(value=pictures, selected_index=selected,
                   label=f"Versions of this session ({len(versions)}): click one to refine it" if versions else "Versions"),
        view,
        reply,
        gr.Button(interactive=current is not None and current.turn_id is not None),
        gr.Button(interactive=any(v.turn_id is not None for v in versions)),
        gr.Textbox(label=where, interactive=enabled and current is not None, **({"value": ""} if clear_refine else {})),
        gr.Button(interactive=enabled and current is not None),
    )


def continuation(studio: Studio, version: Version | None, picked: str = "") -> ModelInfo | None:
    """The model a refinement of ``version`` continues on when its own has been shut down (the picked one, else
    the replacement); None while the conversation can go on as it is."""
    instead = studio.replacement_for(version.model) if version is not None and version.turn_id else None
    if instead is None:
        return None
    return studio.model_list.get(picked) if picked and picked != version.model else instead


def edit_note(studio: Studio) -> Callable[[str, gr.Request], Any]:
    """The handler of the line above the reference tray, run whenever the session shown changes: while an "Edit
    this" session is open, a Refine sends only the picture being edited, so the line says the references are not
    sent with it (Generate still sends them, with the picture); otherwise the line is hidden."""

    def note(session_id: str, request: gr.Request) -> Any:
        session = studio.open_session(session_id, user=user_of(request))[0] if session_id else None
        name = session.edited_file if session is not None else ""
        words = (f"**Editing {md_escape(name)}:** Refine sends only that picture; the references below are not sent "
                 "with it. Generate sends them, with the picture, as a new start.")
        return gr.Markdown(words if name else "", visible=bool(name))

    return note


def _refine_label(studio: Studio, current: Version | None) -> str:
    """What Refine will do: continue the conversation, or (its model shut down) branch on another model."""
    if current is None:
        return "Refine the selected version"
    if continuation(studio, current) is not None:
        return (f"Refine {current.label} on the model picked above: {current.model}, which made it, no longer works, "
                "so a new branch starts from this image")
    return f"Refine {current.label} (continues with {current.model or studio.model_list.get().name})"


def shown_outputs(c: Any) -> list[Any]:
    """The components :func:`show` updates, in its order."""
    return [c.session, c.versions, c.current, c.strip, c.view, c.reply, c.save, c.save_all, c.refine_box, c.refine_btn]


def saved_md(studio: Studio, version_ids: list[str], report: Any, user: str) -> str:
    """What Save did, and where each saved version comes from (its parents)."""
    versions = [studio.version(v, user=user) for v in version_ids]
    labels = {v.id: v.label for v in versions}
    lines = []
    for v in versions:
        if v.turn_id is None:
            continue
        source = labels.get(v.parent_id or "", "")
        refs = len(v.references)
        came = source or (f"{refs} reference{'s' if refs != 1 else ''}" if refs else "the prompt")
        lines.append(f"{v.label} (from {came})")
    return (f"Saved: {report.summary()} {', '.join(lines)}. They are searchable now (source: generated), "
            "with their parents recorded.")


def streamed(work: Callable[[Callable[[str], None]], tuple[Any, ...]], failed: Callable[[BananaError], tuple[Any, ...]],
             first: str, width: int) -> Iterator[tuple[Any, ...]]:
    """Run a paid request in a worker thread, and show its notices ("Gemini is busy; retrying in 4 s
    (attempt 2 of 4)") as the line beside the run while it waits; then what :func:`show` returns.

    ``work`` gets the notice callback and returns the final state of ``width`` outputs (the line beside
    the run at :data:`REPLY_AT`); a :class:`BananaError` becomes ``failed(exc)`` and a toast. The thread
    runs in a copy of the request's context (toasts work there).
    """
    notices: queue.Queue[str | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["shown"] = work(notices.put)
        except BananaError as exc:
            outcome["error"] = exc
        except Exception as exc:  # noqa: BLE001 - a bug: logged here, a sentence on screen
            log.exception("unexpected error in a generation request")
            outcome["error"] = BananaError(f"Something went wrong ({type(exc).__name__}). The details are in the server log.")
        finally:
            notices.put(None)

    threading.Thread(target=contextvars.copy_context().run, args=(target,), name="generate", daemon=True).start()
    skip = [gr.skip()] * width
    while (notice := first if first else notices.get()) is not None:
        first = ""
        yield (*skip[:REPLY_AT], f"*{notice}*", *skip[REPLY_AT + 1:])
    if "error" in outcome:
        gr.Warning(str(outcome["error"]))
        yield failed(outcome["error"])
    else:
        yield outcome["shown"]

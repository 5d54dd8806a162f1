"""Generate tab: "Edit a region", under the version on screen. Brush over the part to change, say what to do,
and only that part changes; "Remove" fills it from its surroundings; "Expand canvas" grows the picture to
another shape. Each is a paid request like Refine, and its result is a new version of the session.

The editor always holds the version shown above it (reloaded whenever the shown version changes). The work
is ``studio.regions`` (rag/studio/regions.py); the ``/edit_region`` endpoint takes the mask as a base64 PNG.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.core import BananaError
from rag.studio import Studio

from .common import OnePerUser, user_errors
from .generate_api import _run_record
from .session_view import show, shown_outputs, streamed, user_of

MAX_MASK_BASE64 = 16 * 1024 * 1024  # characters of an API mask (a mask PNG is small; this bounds the work)
HINT = ("Brush over the part to change, then say what to do with it: only the brushed part changes, and the "
        "result is a new version. **Remove** fills the brushed part from its surroundings; **Expand canvas** "
        "grows the picture to another shape and fills the new border (no brushing needed).")
BUTTONS = {"edit": "Edit region", "remove": "Remove", "expand": "Expand canvas"}


def render(studio: Studio, model: str) -> SimpleNamespace:
    """The accordion, in the column under the version viewer; its parts for :func:`wire`."""
    r = SimpleNamespace()
    shapes = list(studio.regions.shapes(model))
    with gr.Accordion("Edit a region", open=False, elem_id="region-panel"):
        gr.Markdown(HINT)
        r.editor = gr.ImageEditor(
            label="Brush over the region to change", type="pil", image_mode="RGBA", format="png", sources=(),
            transforms=(), layers=False, brush=gr.Brush(colors=[("#ff2d55", 0.6)], color_mode="fixed"),
            eraser=gr.Eraser(), height=380, interactive=True, elem_id="region-editor")
        r.instruction = gr.Textbox(label="What should happen in the brushed region?", lines=1, max_lines=3,
                                   placeholder="e.g. make the label say Oolong", elem_id="region-instruction")
        with gr.Row(equal_height=True):
            r.edit = gr.Button(BUTTONS["edit"], variant="primary", interactive=False, elem_id="region-edit", min_width=110)
            r.remove = gr.Button(BUTTONS["remove"], interactive=False, elem_id="region-remove", min_width=90)
            r.shape = gr.Dropdown(shapes, value="16:9" if "16:9" in shapes else shapes[0], label="Expand to",
                                  elem_id="region-shape", scale=0, min_width=110)
            r.expand = gr.Button(BUTTONS["expand"], interactive=False, elem_id="region-expand", min_width=120)
        r.cost = gr.Markdown(cost_text(studio, model, ""), elem_id="region-cost")
    return r


def cost_text(studio: Studio, model: str, size: str | None) -> str:
    """The estimate shown before a region edit is asked for, with today's spend against the cap."""
    cost = studio.regions.estimate(model=model or "", image_size=size or "")
    spend = studio.spend(days=1)
    cap = f" of ${spend['budget']:.2f}" if spend["budget"] is not None else ""
    return f"About **${cost:.3f}** for each of these (one image) · spent ${spend['today']:.3f}{cap} today"


def _layers(value: Any) -> list[Any]:
    """The brush layers of the editor's value (none before anything is loaded)."""
    return list((value or {}).get("layers") or []) if isinstance(value, dict) else []


def wire(studio: Studio, c: SimpleNamespace) -> None:
    """Keep the editor on the shown version, run the three buttons, and register ``/edit_region``."""
    r: SimpleNamespace = c.region
    buttons = [r.edit, r.remove, r.expand]

    def load(current: str, request: gr.Request) -> tuple[Any, ...]:
        """The shown version as the editor's picture, nothing brushed yet; the buttons follow."""
        version = studio.version(current, user=user_of(request)) if current else None
        picture = {"background": version.path, "layers": [], "composite": None} if version else None
        ready = gr.Button(interactive=c.enabled and version is not None)
        return picture, ready, ready, ready

    # The viewer changes with every version shown (the session's State alone does not announce a change).
    c.view.change(user_errors(load), [c.current], [r.editor, *buttons], api_name=False, queue=False)
    for control in (c.model, c.size):
        control.change(lambda m, s: (cost_text(studio, m, s), gr.Dropdown(choices=list(studio.regions.shapes(m)))),
                       [c.model, c.size], [r.cost, r.shape], api_name=False, queue=False)
    _wire_runs(studio, c, r, buttons)
    api(studio)


def _wire_runs(studio: Studio, c: SimpleNamespace, r: SimpleNamespace, buttons: list[gr.Button]) -> None:
    """The three paid buttons: locked while one runs (one at a time per browser), then the new version shown."""
    in_flight = OnePerUser()
    outputs = [*shown_outputs(c), *buttons, r.instruction]  # the words are cleared once they made a version
    view_at = next(i for i, part in enumerate(outputs) if part is c.view)

    def unlocked(session_id: str) -> list[Any]:
        return [gr.Button(interactive=c.enabled and bool(session_id)) for _ in buttons]

    def runner(mode: str) -> Callable[..., Iterator[tuple[Any, ...]]]:
        def run(value: Any, text: str, session_id: str, current: str, model: str, size: str, shape: str,
                request: gr.Request) -> Iterator[tuple[Any, ...]]:
            user = user_of(request)

            def work(notify: Callable[[str], None]) -> tuple[Any, ...]:
                if not session_id or not current:
                    raise BananaError("Generate an image first, or open a session: a region is edited on a version.")
                with in_flight.hold(request):
                    made = studio.regions.edit(session_id, text or "", _layers(value), from_version=current, mode=mode,
                                               expand_to=shape or "", model=model or "", image_size=size or "",
                                               user=user, notify=notify)
                newest = made.versions[-1].id if made.versions else current
                said = f"**Model:** {made.result.text}" if made.result.text else ""
                if not made.versions:
                    said = f"**No image this time.** {said}"
                return (*show(studio, session_id, newest, said, enabled=c.enabled, user=user), *unlocked(session_id),
                        "" if made.versions else gr.skip())

            def failed(exc: BananaError) -> tuple[Any, ...]:
                shown = list(show(studio, session_id, current, f"**Nothing was changed.** {exc}", enabled=c.enabled,
                                  user=user))
                shown[view_at] = gr.skip()  # the same version stays, and so do the strokes brushed on it
                return (*shown, *unlocked(session_id), gr.skip())

            yield from streamed(work, failed, f"Asking {model or 'Gemini'} about the region…", len(outputs))

        return run

    def start() -> tuple[Any, ...]:
        return tuple(gr.Button(interactive=False) for _ in buttons)

    inputs = [r.editor, r.instruction, c.session, c.current, c.model, c.size, r.shape]
    for mode, button in zip(BUTTONS, buttons):
        button.click(start, None, buttons, api_name=False, queue=False).then(
            runner(mode), inputs, outputs, api_name=False, concurrency_limit=2, concurrency_id="generate",
        ).then(lambda m, s: cost_text(studio, m, s), [c.model, c.size], r.cost, api_name=False, queue=False)


def api(studio: Studio) -> None:
    """``/edit_region``: the same request for scripts, the mask as a base64 PNG (white or painted = change)."""

    @user_errors
    def edit_region(session_id: str, instruction: str, mask_png_base64: str, request: gr.Request,
                    from_version: str = "", mode: str = "edit", expand_to: str = "", model: str = "") -> dict[str, Any]:
        """A new version with one region of a version changed (``mode`` edit, remove, or expand with ``expand_to``
        and no mask); returns output paths, the model's text, the session and version ids."""
        masks = [] if mode == "expand" else [_decoded(mask_png_base64 or "")]
        made = studio.regions.edit(session_id, instruction or "", masks, from_version=from_version or "",
                                   mode=mode or "edit", expand_to=expand_to or "", model=model or "", user=user_of(request))
        return _run_record(made)

    gr.api(edit_region, api_name="edit_region", concurrency_id="generate", concurrency_limit=2)


def _decoded(text: str) -> bytes:
    """A mask sent as base64 (optionally a ``data:`` URL), bounded and checked before any pixel is read."""
    text = text.strip().partition(",")[2] if text.strip().startswith("data:") else text.strip()
    if not text:
        raise BananaError("Send the mask: a PNG, base64-encoded, white (or painted) where the picture should change.")
    if len(text) > MAX_MASK_BASE64:
        raise BananaError(f"The mask is over {MAX_MASK_BASE64 * 3 // 4 // 2**20} MB; send a smaller PNG.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BananaError("The mask is not valid base64; send the PNG's bytes base64-encoded.") from None

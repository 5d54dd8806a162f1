"""Generate tab: references, a prompt and a model on the left; the session's newest version, its
strip of versions and the Refine box on the right, so all of it fits one laptop screen.

Paid requests (Generate, Refine) lock both buttons and clear what is shown before they start, and
a second request from the same browser session is refused while one runs. A failed run leaves its
error beside the run and nothing on screen to save; clicking a version shows it and Save acts on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.core import BananaError
from rag.generation import MAX_IMAGES_PER_RUN
from rag.search import Query
from rag.studio import Studio

from . import generate_api
from . import region as region_ui
from . import reviews as reviews_ui
from .common import OnePerUser, gallery_items, md_escape, progress_callback, user_errors
from .session_view import (
    REFINE_HINT,
    continuation,
    cost_md,
    edit_note,
    model_choices,
    recent_choices,
    saved_md,
    show,
    shown_outputs,
    streamed,
    user_of,
)

GO, REFINE = "Generate", "Refine"
EXAMPLE_PROMPTS = [
    "Product shot of this item on a marble counter, soft morning light, 4k e-commerce style",
    "The same character in a different pose, running, on a plain white background",
    "Combine these references into one outfit render, full body, studio lighting",
    "A seamless pattern inspired by these images, pastel colours",
    "This logo as an embossed gold emblem on dark leather",
]
# Ctrl+Enter (Cmd+Enter) in the prompt clicks Generate, in the Refine box clicks Refine.
SHORTCUTS_JS = """
if (!window.bananaShortcuts) {
  window.bananaShortcuts = true;
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || !(e.ctrlKey || e.metaKey)) return;
    const box = e.target.closest && e.target.closest('#prompt, #refine-box');
    if (!box) return;
    e.preventDefault();
    const button = document.querySelector(box.id === 'prompt' ? '#generate-button' : '#refine-button');
    if (button && !button.disabled) button.click();
  }, true);
}
"""


def build(studio: Studio, selected: gr.State, filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tab; returns the hooks other tabs wire: show the references, refresh the sessions, "Edit this".

    ``filters`` are the Search tab's controls by :class:`Query` field: "Find references" searches with them."""
    c = _render(studio)
    c.filters = {k: v for k, v in (filters or {}).items() if k not in ("text", "image", "image_id", "image_weight", "k")}
    _listen(studio, selected, c)
    reviews_ui.listen_share(studio, c.share, "session", [c.session])
    region_ui.wire(studio, c)
    generate_api.api(studio)
    return {
        "show_refs": (c.show_refs, [selected, c.model], [selected, c.refs, c.refs_md]),
        "refresh_sessions": (c.refresh_recent, [c.model, c.size, c.n], [c.recent, c.cost]),
        "edit_asset": (edit_asset_handler(studio, c.enabled), [*shown_outputs(c), c.prompt]),
    }


def _render(studio: Studio) -> SimpleNamespace:
    enabled, why = studio.generation_status()
    models = studio.models()
    default = studio.model_list.get(studio.model_list.default_choice())
    c = SimpleNamespace(enabled=enabled)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            gr.Markdown(f"**{why}**" if not enabled else why, elem_id="generation-status")
            with gr.Row():
                c.model = gr.Dropdown(model_choices(models), value=default.name, label="Model", elem_id="model-picker",
                                      scale=3, min_width=190)
                c.aspect = gr.Dropdown(list(default.aspect_ratios), value="1:1", label="Aspect", scale=1, min_width=100)
                c.size = gr.Dropdown(list(default.sizes), value=default.size() or default.sizes[0], label="Size",
                                     interactive=default.sends_size, scale=1, min_width=90)
                c.n = gr.Dropdown(list(range(1, MAX_IMAGES_PER_RUN + 1)), value=1, label="Images", scale=1, min_width=90)
            c.edit_note = gr.Markdown(visible=False, elem_id="edit-refs-note")  # an "Edit this" session: Refine sends no refs
            c.refs_md = gr.Markdown(_refs_text(studio, 0, default.name))
            c.refs = gr.Gallery(label="References (click one to remove it)", columns=7, rows=1, height=150,
                                object_fit="contain", allow_preview=False, preview=False, fit_columns=False)
            c.prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt",
                                  placeholder="What should Nano Banana make from these references? Ctrl+Enter generates.")
            with gr.Row():
                c.go = gr.Button(GO, variant="primary", interactive=enabled, elem_id="generate-button", scale=1)
                c.find = gr.Button("Find references", elem_id="find-references", scale=1)
                c.cost = gr.Markdown(cost_md(studio, default.name, default.size(), 1))
            with gr.Accordion("Upload extra references (not added to the library)", open=False):
                c.extra = gr.File(label="Extra reference images", file_count="multiple", type="filepath")
            with gr.Accordion("Example prompts", open=False):
                gr.Examples(EXAMPLE_PROMPTS, inputs=c.prompt, label=None)
            gr.HTML("", js_on_load=SHORTCUTS_JS, elem_id="generate-shortcuts")
        with gr.Column(scale=7, min_width=320):
            c.view = gr.Image(label="Result", height=310, interactive=False, elem_id="version-view",
                              buttons=["download", "fullscreen"])
            with gr.Row(equal_height=True):
                c.refine_box = gr.Textbox(label="Refine the selected version", placeholder=REFINE_HINT, lines=1,
                                          max_lines=3, elem_id="refine-box", interactive=False, scale=4)
                c.refine_btn = gr.Button(REFINE, interactive=False, elem_id="refine-button", scale=0, min_width=110)
            c.reply = gr.Markdown(elem_id="run-reply")
            c.strip = gr.Gallery(label="Versions", columns=8, rows=1, height=160, object_fit="contain",
                                 allow_preview=False, preview=False, fit_columns=False, elem_id="version-strip")
            with gr.Row():
                c.save = gr.Button("Save to library", interactive=False, elem_id="save-generated", size="sm")
                c.save_all = gr.Button("Save whole session to library", interactive=False, elem_id="save-session", size="sm")
                c.new = gr.Button("New session", elem_id="new-session", size="sm")
            c.saved_md = gr.Markdown()
            c.share = reviews_ui.render_share(studio, "session")  # a review link to this session
            c.region = region_ui.render(studio, default.name)  # "Edit a region" of the version shown (ui/region.py)
            with gr.Accordion("Recent sessions", open=False):
                with gr.Row(equal_height=True):
                    c.recent = gr.Dropdown([], label="Reopen a session to continue it", scale=4)
                    c.open = gr.Button("Open", scale=0, min_width=80)
    c.session, c.versions, c.current = gr.State(""), gr.State([]), gr.State("")
    c.found = gr.State({})  # {"query", "ids"}: what the last "Find references" proposed, for the provenance
    _helpers(studio, c)
    return c


def _refs_text(studio: Studio, count: int, model: str) -> str:
    info = studio.model_list.get(model)
    if not count:
        return f"No references yet: pick some on the Search tab, or upload (up to {info.max_references} for {info.label})."
    over = count - info.max_references
    tail = f" **{over} too many**: remove some, or choose a model that takes more." if over > 0 else ""
    return f"**{count} of {info.max_references}** references from the library ({info.label}).{tail}"


def _helpers(studio: Studio, c: SimpleNamespace) -> None:
    def show_refs(ids: list[str], model: str) -> tuple[Any, ...]:
        pictures, kept = gallery_items(studio, studio.get(ids)) if ids else ([], [])
        return kept, pictures, _refs_text(studio, len(kept), model)

    def refresh_recent(model: str, size: str, count: float, request: gr.Request) -> tuple[Any, ...]:
        """On page load, on opening the tab and after each run: the sessions to reopen, today's spend."""
        return gr.Dropdown(choices=recent_choices(studio, user_of(request))), cost_md(studio, model, size, count)

    c.show_refs, c.refresh_recent = show_refs, refresh_recent


def edit_asset_handler(studio: Studio, enabled: bool = True) -> Callable[..., tuple[Any, ...]]:
    """"Edit this" for a library asset: ``fn(asset_id, request)`` starts a session from it and returns the
    Generate tab's new state, the prompt cleared (an earlier session's prompt is not this edit's). Wire it as
    ``button.click(fn, [asset_id], hooks["edit_asset"][1])``, then select the Generate tab."""

    @user_errors
    def edit(asset_id: str, request: gr.Request) -> tuple[Any, ...]:
        user = user_of(request)
        session = studio.start_session(base_asset_id=asset_id, user=user)
        original = studio.open_session(session.id, user=user)[1][0]
        said = f"Editing **{md_escape(session.edited_file)}**: describe a change in Refine."
        return (*show(studio, session.id, original.id, said, enabled=enabled, user=user), "")

    return edit


def _listen(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    _listen_runs(studio, selected, c)
    _listen_session(studio, selected, c)


def _listen_runs(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    """Generate and Refine: the two paid requests, streamed, one at a time per browser session."""
    in_flight = OnePerUser()
    shown = [*shown_outputs(c), c.go]  # the last update of a run also unlocks Generate

    def ready() -> Any:  # built when a run ends: a component made here, while the tab renders, would be drawn
        return gr.Button(value=GO, interactive=c.enabled)

    def start() -> tuple[Any, ...]:
        """Before a paid request: lock both buttons and clear the last result, so Save can only act on what is shown."""
        return (gr.Button(value="Working…", interactive=False), gr.Button(interactive=False), None, "",
                gr.Button(interactive=False), "")

    def generate(text: str, ids: list[str], files: list[str] | None, model: str, ratio: str, size: str, count: float,
                 session_id: str, found: dict[str, Any], request: gr.Request) -> Iterator[tuple[Any, ...]]:
        user = user_of(request)

        def work(notify: Callable[[str], None]) -> tuple[Any, ...]:
            with in_flight.hold(request):
                run = studio.generate(text or "", reference_ids=ids or [], reference_files=files or [], aspect_ratio=ratio,
                                      n=int(count), model=model, image_size=size or "", session_id=session_id,
                                      user=user, notify=notify, found=found or None)
            return (*show(studio, run.session_id or session_id, run.versions[-1].id if run.versions else "", _said(run),
                          enabled=c.enabled, user=user), ready())

        yield from streamed(work, lambda exc: (*show(studio, session_id, "", f"**Nothing was generated.** {exc}",
                                                     enabled=c.enabled, user=user), ready()), f"Asking {model}…", len(shown))

    def refine(text: str, session_id: str, current: str, model: str, ratio: str, size: str,
               request: gr.Request) -> Iterator[tuple[Any, ...]]:
        user = user_of(request)

        def work(notify: Callable[[str], None]) -> tuple[Any, ...]:
            parent = studio.version(current, user=user) if current else None
            same = parent is not None and parent.model == model  # the pickers apply when they show the version's model
            instead = continuation(studio, parent, model)  # its model shut down: a new branch, from its image
            with in_flight.hold(request):
                run = studio.refine(session_id, text or "", from_version=current, aspect_ratio=ratio if same else "",
                                    image_size=size if same else "", model=model, user=user, notify=notify,
                                    continue_on=instead.name if instead else "")
            newest = run.versions[-1].id if run.versions else current
            return (*show(studio, session_id, newest, _said(run), enabled=c.enabled, clear_refine=bool(run.versions),
                          user=user), ready())

        yield from streamed(work, lambda exc: (*show(studio, session_id, current, f"**Nothing was generated.** {exc}",
                                                     enabled=c.enabled, user=user), ready()),
                            "Asking Gemini to refine it…", len(shown))

    refresh = (c.refresh_recent, [c.model, c.size, c.n], [c.recent, c.cost])  # new session listed, spend updated
    cleared = [c.go, c.refine_btn, c.view, c.reply, c.save, c.saved_md]

    def paid(button: gr.Button, run: Callable[..., Iterator[tuple[Any, ...]]], inputs: list[Any]) -> None:
        """Lock and clear, run (one at a time per user, two at a time in all; its last update unlocks), refresh."""
        button.click(start, None, cleared, api_name=False, queue=False).then(
            run, inputs, shown, api_name=False, concurrency_limit=2, concurrency_id="generate",
        ).then(*refresh, api_name=False, queue=False)

    paid(c.go, generate, [c.prompt, selected, c.extra, c.model, c.aspect, c.size, c.n, c.session, c.found])
    paid(c.refine_btn, refine, [c.refine_box, c.session, c.current, c.model, c.aspect, c.size])


def _listen_session(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    """Everything that costs nothing: pick a version, reopen or leave a session, change the model, save."""
    shown = shown_outputs(c)

    def pick(ids: list[str], session_id: str, evt: gr.SelectData, request: gr.Request) -> tuple[Any, ...]:
        return show(studio, session_id, ids[evt.index] if evt.index < len(ids) else "", "", enabled=c.enabled,
                    user=user_of(request))

    def reopen(session_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not session_id:
            raise BananaError("Choose a session to open.")
        user = user_of(request)
        versions = studio.open_session(session_id, user=user)[1]
        return show(studio, session_id, versions[-1].id if versions else "", "", enabled=c.enabled, user=user)

    def on_model(model: str, ids: list[str], size: str, count: float) -> tuple[Any, ...]:
        info = studio.model_list.get(model)
        chosen = size if size in info.sizes else info.size() or info.sizes[0]
        return (gr.Dropdown(choices=list(info.aspect_ratios)), gr.Dropdown(choices=list(info.sizes), value=chosen,
                interactive=info.sends_size), _refs_text(studio, len(ids or []), model), cost_md(studio, model, chosen, count))

    def remove_ref(ids: list[str], model: str, evt: gr.SelectData) -> tuple[Any, ...]:
        return c.show_refs([i for k, i in enumerate(ids) if k != evt.index], model)

    @user_errors
    def save(ids: list[str], request: gr.Request, progress: gr.Progress = gr.Progress()) -> str:
        user = user_of(request)
        return saved_md(studio, ids, studio.save_versions(ids, user=user, progress=progress_callback(progress)), user)

    saving = {"api_name": False, "concurrency_id": "ingest", "concurrency_limit": 1}
    c.strip.select(user_errors(pick), [c.versions, c.session], shown, api_name=False, queue=False)
    c.session.change(user_errors(edit_note(studio)), c.session, c.edit_note, api_name=False, queue=False)
    c.open.click(user_errors(reopen), [c.recent], shown, api_name=False, queue=False)
    c.new.click(lambda: show(studio, "", "", "", enabled=c.enabled, user=""), None, shown, api_name=False, queue=False)
    c.model.change(on_model, [c.model, selected, c.size, c.n], [c.aspect, c.size, c.refs_md, c.cost], api_name=False,
                   queue=False)
    for control in (c.n, c.size):
        control.change(lambda m, s, n: cost_md(studio, m, s, n), [c.model, c.size, c.n], c.cost, api_name=False, queue=False)
    c.refs.select(remove_ref, [selected, c.model], [selected, c.refs, c.refs_md], api_name=False, queue=False)

    @user_errors
    def find(text: str, ids: list[str], model: str, *filters: Any) -> tuple[Any, ...]:
        """RAG proper: the prompt's best matches join the references (up to the model's cap), to swap or drop."""
        query = Query.of(dict(zip(c.filters, filters)))  # the Search tab's filters and ranking options
        found = [a.id for a in studio.find_references(text or "", model=model, keep=ids or [], query=query)]
        if not found:
            gr.Info("No more references fit, or nothing in the library matches.")
        return (*c.show_refs([*(ids or []), *found], model), {"query": (text or "").strip(), "ids": found})

    c.find.click(find, [c.prompt, selected, c.model, *c.filters.values()], [selected, c.refs, c.refs_md, c.found], api_name=False,
                 concurrency_id="search")
    def save_shown(current: str, request: gr.Request, progress: gr.Progress = gr.Progress()) -> str:
        return save([current], request, progress)

    c.save.click(save_shown, [c.current], c.saved_md, **saving)
    c.save_all.click(save, [c.versions], c.saved_md, **saving)


def _said(run: Any) -> str:
    """The line beside a run: the model's words, or why there is no image."""
    if not run.versions:
        gr.Warning("The model answered without an image; its reply is shown below.")
        return f"**No image this time.** The model said: {run.result.text}" if run.result.text else "**No image this time.**"
    return f"**Model:** {run.result.text}" if run.result.text else ""

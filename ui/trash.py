"""The Library tab's Trash: what was deleted, most recent first. Click images to mark them (✓),
restore them (folder, tags and provenance come back as they were), or empty the Trash for good."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.studio import Studio

from .common import Handler, chain, user_errors


def render() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Accordion("Trash", open=False, elem_id="library-trash") as c.box:
        c.summary = gr.Markdown()
        c.gallery = gr.Gallery(show_label=False, columns=8, height="auto", object_fit="contain", allow_preview=False,
                               fit_columns=False, elem_id="trash-grid")
        c.ids, c.marked = gr.State([]), gr.State([])
        with gr.Row():
            c.restore = gr.Button("Restore marked", variant="primary", interactive=False)
            c.restore_all = gr.Button("Restore all", interactive=False)
            c.empty = gr.Button("Empty the Trash…", variant="stop", interactive=False)
            c.confirm = gr.Button("Yes, delete them for good", variant="stop", visible=False)
            c.cancel = gr.Button("Cancel", visible=False)
    return c


def listen(studio: Studio, c: SimpleNamespace, after: list[Handler]) -> None:
    def view(marked: list[str]) -> tuple[Any, ...]:
        entries = studio.trash.entries()
        ids = [e.asset.id for e in entries]
        marked = [i for i in marked if i in ids]
        pictures = []
        for e in entries:
            preview = studio.preview(e.shown) or studio.placeholder()
            when = time.strftime("%b %d %H:%M", time.localtime(e.deleted))
            pictures.append((str(preview), f"{'✓ ' if e.asset.id in marked else ''}{e.asset.filename} · {when}"))
        text = (f"**{len(entries)} image(s) in the Trash.** Click images to mark them, then restore them."
                + (f" {len(marked)} marked." if marked else "")) if entries else "The Trash is empty."
        return (pictures, ids, marked, text, gr.Button(interactive=bool(marked)), gr.Button(interactive=bool(entries)),
                gr.Button(interactive=bool(entries), visible=True), gr.Button(visible=False), gr.Button(visible=False))

    @user_errors
    def load() -> tuple[Any, ...]:
        return view([])

    def toggle(ids: list[str], marked: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        asset_id = ids[evt.index]
        return view([i for i in marked if i != asset_id] if asset_id in marked else [*marked, asset_id])

    @user_errors
    def restore(ids: list[str]) -> tuple[Any, ...]:
        back, problems = studio.restore(ids)
        if back:
            gr.Info(f"Restored {len(back)} image(s) to their folders.")
        for name, why in problems:
            gr.Warning(f"{name} could not be restored: {why}.")
        return view([])

    @user_errors
    def empty() -> tuple[Any, ...]:
        gr.Info(f"Deleted {studio.trash.empty()} image(s) for good.")
        return view([])

    shown = [c.gallery, c.ids, c.marked, c.summary, c.restore, c.restore_all, c.empty, c.confirm, c.cancel]
    c.box.expand(load, None, shown, api_name=False)
    c.gallery.select(toggle, [c.ids, c.marked], shown, api_name=False, queue=False)
    restored = c.restore.click(restore, [c.marked], shown, api_name=False, concurrency_id="ingest")
    restored_all = c.restore_all.click(restore, [c.ids], shown, api_name=False, concurrency_id="ingest")
    c.empty.click(lambda: (gr.Button(visible=False), gr.Button(visible=True), gr.Button(visible=True)), None,
                  [c.empty, c.confirm, c.cancel], api_name=False, queue=False)
    c.cancel.click(lambda: (gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)), None,
                   [c.empty, c.confirm, c.cancel], api_name=False, queue=False)
    c.confirm.click(empty, None, shown, api_name=False, concurrency_id="ingest")
    c.refresh = (load, [], shown)
    for event in (restored, restored_all):
        chain(event, after, success=True)


def api(studio: Studio) -> None:
    @user_errors
    def restore(ids: list[str]) -> dict[str, Any]:
        """Bring assets back from the Trash (folder, tags, provenance as they were): {restored: ids, problems: [[name, why]]}."""
        back, problems = studio.restore(ids)
        return {"restored": [a.id for a in back], "problems": [list(p) for p in problems]}

    gr.api(restore, api_name="restore", concurrency_id="ingest", concurrency_limit=1)

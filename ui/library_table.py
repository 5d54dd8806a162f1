"""The Library tab's table view, for bulk work: click rows to mark them (marked rows show ✓ and
are highlighted), then move them to a folder or delete them (to the Trash) with confirmation.
It follows the grid's filters."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd
from pandas.io.formats.style import Styler

from rag.studio import Studio

from .common import Handler, api_record, chain, library_filter, md_escape, source_words, user_errors

TABLE_LIMIT = 1000
SHOWN = ["✓", "filename", "folder", "source", "tags", "width", "height", "added", "id"]
HEADERS = {"filename": "File", "folder": "Folder", "source": "Source", "tags": "Tags", "width": "Width",
           "height": "Height", "added": "Added", "id": "Id"}


def render() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Accordion("Table view: mark many images to move or delete them", open=False, elem_id="library-table") as c.box:
        c.table = gr.Dataframe(show_label=False, interactive=False, wrap=False, max_height=420)
        c.marked, c.rows = gr.State([]), gr.State(None)
        c.marked_md = gr.Markdown("No rows marked. Click rows to mark them.")
        with gr.Row(equal_height=True):
            c.folder = gr.Textbox(label="Move marked to folder", max_lines=1, scale=2, placeholder="products/shoes")
            c.move = gr.Button("Move marked", interactive=False, scale=1)
            c.delete = gr.Button("Delete marked…", variant="stop", interactive=False, scale=1)
            c.confirm = gr.Button("Yes, delete", variant="stop", visible=False, scale=1)
            c.cancel = gr.Button("Cancel", visible=False, scale=1)
    return c


def styled(frame: pd.DataFrame, marked: list[str]) -> Styler:
    """The table with a ✓ column and marked rows highlighted."""
    shown = frame.assign(**{"✓": ["✓" if i in marked else "" for i in frame["id"]]}, source=frame["source"].map(source_words))
    shown = shown[SHOWN].rename(columns=HEADERS)  # the headers and sources in words; the state keeps the fields
    highlight = "background-color: #fde68a; font-weight: 600"
    return shown.style.apply(lambda row: [highlight if row["✓"] else ""] * len(row), axis=1)


def listen(studio: Studio, c: SimpleNamespace, filters: list[Any], after: list[Handler]) -> None:
    def marked_view(frame: pd.DataFrame | None, ids: list[str]) -> tuple[Any, ...]:
        if frame is None or frame.empty:
            return gr.skip(), [], "No images here.", gr.Button(interactive=False), gr.Button(interactive=False)
        names = frame.set_index("id").loc[[i for i in ids if i in set(frame["id"])], "filename"].tolist()
        text = (f"**Marked {len(ids)}:** " + md_escape(", ".join(names[:8])) + ("…" if len(names) > 8 else "")) if ids else (
            "No rows marked. Click rows to mark them.")
        return styled(frame, ids), ids, text, gr.Button(interactive=bool(ids)), gr.Button(interactive=bool(ids))

    @user_errors
    def load(*values: Any) -> tuple[Any, ...]:
        frame = studio.table(chosen=library_filter(*values), limit=TABLE_LIMIT)
        return (frame, *marked_view(frame, []), *hide_confirm())

    def mark(frame: pd.DataFrame, ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        asset_id = frame.iloc[row]["id"]
        ids = [i for i in ids if i != asset_id] if asset_id in ids else [*ids, asset_id]
        return marked_view(frame, ids)

    def ask(ids: list[str]) -> tuple[Any, ...]:
        return gr.Button(visible=False), gr.Button(value=f"Yes, move {len(ids)} image(s) to the Trash", visible=True), gr.Button(visible=True)

    def hide_confirm() -> tuple[Any, ...]:
        return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    @user_errors
    def delete(ids: list[str]) -> None:
        removed = studio.delete(ids)
        gr.Info(f"Moved {removed} image(s) to the Trash; restore them from the Trash below.")

    @user_errors
    def move(ids: list[str], folder: str) -> None:
        moved = studio.move(ids, folder)
        gr.Info(f"Moved {moved} image(s) to {folder.strip()} (their files stay where they are).")

    confirm_buttons = [c.delete, c.confirm, c.cancel]
    loaded = [c.rows, c.table, c.marked, c.marked_md, c.move, c.delete, *confirm_buttons]
    reload = (load, filters, loaded)
    c.box.expand(*reload, api_name=False)
    for f in filters:
        f.input(*reload, api_name=False)
    c.table.select(mark, [c.rows, c.marked], [c.table, c.marked, c.marked_md, c.move, c.delete], api_name=False, queue=False)
    c.delete.click(ask, [c.marked], confirm_buttons, api_name=False, queue=False)
    c.cancel.click(hide_confirm, None, confirm_buttons, api_name=False, queue=False)
    chain(c.confirm.click(delete, [c.marked], None, api_name=False, concurrency_id="ingest"), [reload, *after], success=True)
    chain(c.move.click(move, [c.marked, c.folder], None, api_name=False, concurrency_id="ingest"), [reload, *after], success=True)


def api(studio: Studio) -> None:
    @user_errors
    def library(folders: list[str], sources: list[str]) -> list[dict[str, Any]]:
        """The library's records (newest first), filtered by folder and source."""
        return [api_record(r) for r in studio.table(folders=folders, sources=sources, limit=TABLE_LIMIT).to_dict("records")]

    @user_errors
    def delete_ids(ids: list[str]) -> int:
        """Move assets to the Trash by id (records and the files the app stored); returns how many."""
        return studio.delete(ids)

    gr.api(library, api_name="library")
    gr.api(delete_ids, api_name="delete", concurrency_id="ingest", concurrency_limit=1)

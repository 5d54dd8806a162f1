"""Library tab: upload images or a .zip, see what the library holds, delete with confirmation."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from rag.studio import Studio
from rag.types import SOURCES

from .common import api_record, progress_callback, user_errors

TABLE_LIMIT = 2000


def _summary_md(studio: Studio) -> str:
    stats = studio.stats()
    if not stats["count"]:
        return "**The library is empty.** Drop images above, or index a folder with `python -m rag ingest FOLDER`."
    folders = ", ".join(f"{k} ({v})" for k, v in list(stats["by_folder"].items())[:12])
    sources = ", ".join(f"{k} ({v})" for k, v in stats["by_source"].items())
    more = "…" if len(stats["by_folder"]) > 12 else ""
    return f"**{stats['count']} images** · by source: {sources} · by folder: {folders}{more}"


def _report_frame(report: Any) -> pd.DataFrame:
    return pd.DataFrame([{"file": str(p), "reason": r} for p, r in report.failed], columns=["file", "reason"])


def build(studio: Studio) -> dict[str, Any]:
    c = _render(studio)
    load_table = _listen(studio, c)
    _api(studio)
    return {"load": (load_table, [c.folder_filter, c.source_filter], c.table_outputs)}


def _render(studio: Studio) -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Row():
        with gr.Column(scale=3):
            c.files = gr.File(label="Drop images or a .zip of images", file_count="multiple", type="filepath")
        with gr.Column(scale=2):
            c.folder = gr.Textbox(label="Folder / tag for these files", value="uploads", max_lines=1)
            c.add = gr.Button("Add to library", variant="primary")
            gr.Markdown(
                f"Up to {studio.settings.max_upload_files} files per upload, "
                f"{studio.settings.max_upload_mb:g} MB each. Duplicates are recognised by content and skipped."
            )
    c.result = gr.Markdown()
    c.failures = gr.Dataframe(label="Not added", visible=False, interactive=False, wrap=True)
    c.summary = gr.Markdown()
    with gr.Row():
        c.folder_filter = gr.Dropdown(label="Folder", multiselect=True, choices=[], scale=3)
        c.source_filter = gr.CheckboxGroup(label="Source", choices=list(SOURCES), scale=2)
        c.refresh = gr.Button("Refresh", scale=1)
    c.table = gr.Dataframe(label="Library (click rows to mark them for deletion)", interactive=False, wrap=False, max_height=420)
    c.marked = gr.State([])
    with gr.Row():
        c.marked_md = gr.Markdown("No rows marked.")
        c.delete = gr.Button("Delete marked…", variant="stop", interactive=False)
        c.confirm = gr.Button("Yes, delete them", variant="stop", visible=False)
        c.cancel = gr.Button("Cancel", visible=False)
    c.table_outputs = [c.table, c.summary, c.folder_filter, c.marked, c.marked_md, c.delete]
    return c


def _listen(studio: Studio, c: SimpleNamespace) -> Callable[..., tuple[Any, ...]]:
    @user_errors
    def load_table(folders: list[str] | None, sources: list[str] | None) -> tuple[Any, ...]:
        frame = studio.table(folders=folders or (), sources=sources or (), limit=TABLE_LIMIT)
        choices = list(studio.stats()["by_folder"])
        return frame, _summary_md(studio), gr.Dropdown(choices=choices, value=[f for f in (folders or []) if f in choices]), [], "No rows marked.", gr.Button(interactive=False)

    @user_errors
    def ingest(paths: list[str] | None, tag: str, folders: list[str] | None, sources: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        report = studio.ingest_uploads(paths or [], folder=tag, progress=progress_callback(progress))
        if report.failed:
            gr.Warning(f"{len(report.failed)} file(s) could not be added; see the list below.")
        frame = _report_frame(report)
        return (f"**{report.summary()}**", gr.Dataframe(value=frame, visible=not frame.empty), None, *load_table(folders, sources))

    def mark(frame: pd.DataFrame, ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        asset_id = frame.iloc[row]["id"]
        ids = [i for i in ids if i != asset_id] if asset_id in ids else [*ids, asset_id]
        names = frame.set_index("id").loc[[i for i in ids if i in set(frame["id"])], "filename"].tolist()
        text = f"Marked {len(ids)}: " + ", ".join(names[:8]) + ("…" if len(names) > 8 else "") if ids else "No rows marked."
        return ids, text, gr.Button(interactive=bool(ids))

    def ask(ids: list[str]) -> tuple[Any, ...]:
        return gr.Button(visible=False), gr.Button(value=f"Yes, delete {len(ids)} image(s)", visible=True), gr.Button(visible=True)

    def hide_confirm() -> tuple[Any, ...]:
        return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    @user_errors
    def do_delete(ids: list[str], folders: list[str] | None, sources: list[str] | None) -> tuple[Any, ...]:
        removed = studio.delete(ids)
        gr.Info(f"Deleted {removed} image(s). Files the app stored were moved to {studio.settings.trash_dir}.")
        return (*hide_confirm(), *load_table(folders, sources))

    filters, confirm_buttons = [c.folder_filter, c.source_filter], [c.delete, c.confirm, c.cancel]
    c.add.click(ingest, [c.files, c.folder, *filters], [c.result, c.failures, c.files, *c.table_outputs], api_name="ingest", concurrency_limit=1, concurrency_id="ingest")
    for trigger in (c.refresh.click, c.folder_filter.input, c.source_filter.input):
        trigger(load_table, filters, c.table_outputs, api_name=False, queue=False)
    c.table.select(mark, [c.table, c.marked], [c.marked, c.marked_md, c.delete], api_name=False, queue=False)
    c.delete.click(ask, [c.marked], confirm_buttons, api_name=False, queue=False)
    c.cancel.click(hide_confirm, None, confirm_buttons, api_name=False, queue=False)
    c.confirm.click(do_delete, [c.marked, *filters], [*confirm_buttons, *c.table_outputs], api_name=False)
    return load_table


def _api(studio: Studio) -> None:
    @user_errors
    def library(folders: list[str], sources: list[str]) -> list[dict[str, Any]]:
        """The library's records (newest first), filtered by folder and source."""
        return [api_record(r) for r in studio.table(folders=folders, sources=sources, limit=TABLE_LIMIT).to_dict("records")]

    @user_errors
    def delete_ids(ids: list[str]) -> int:
        """Delete assets by id; returns how many were removed."""
        return studio.delete(ids)

    @user_errors
    def stats() -> dict[str, Any]:
        """How many images, by folder and by source."""
        return studio.stats()

    gr.api(library, api_name="library")
    gr.api(stats, api_name="stats")
    gr.api(delete_ids, api_name="delete", concurrency_id="ingest", concurrency_limit=1)

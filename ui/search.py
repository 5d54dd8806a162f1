"""Search tab: text, example image or both; click results to collect references for Generate."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.query import Query
from rag.studio import Studio
from rag.types import SOURCES

from .common import gallery_items, query_endpoint, user_errors

EXAMPLE_QUERIES = ["a red car", "a bowl of soup", "a cartoon animal", "a house with a roof", "a hammer"]


def selection_md(studio: Studio, selected: list[str]) -> str:
    cap = studio.max_references
    if not selected:
        return f"Click results to pick up to **{cap}** reference images for generation."
    return f"**{len(selected)} of {cap}** references selected. Click a selected image below to remove it."


def build(studio: Studio, selected: gr.State) -> dict[str, Any]:
    c = _render(studio)
    picked_view = _listen(studio, selected, c)
    gr.api(query_endpoint(studio), api_name="search", concurrency_id="search", concurrency_limit=4)

    @user_errors
    def folder_choices(chosen: list[str] | None) -> Any:
        choices = list(studio.stats()["by_folder"])
        return gr.Dropdown(choices=choices, value=[f for f in chosen or [] if f in choices])

    return {
        "to_generate": c.to_generate,
        "folders": (folder_choices, [c.controls["folders"]], [c.controls["folders"]]),
        "refresh_picked": (picked_view, [selected], [selected, c.picked, c.picked_md]),
    }


def _render(studio: Studio) -> SimpleNamespace:
    """The tab's components; ``controls`` maps each :class:`Query` option shown to its control."""
    c = SimpleNamespace()
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Describe what you are looking for", placeholder="red silk cape with gold trim", max_lines=2)
            gr.Examples(EXAMPLE_QUERIES, inputs=text, label="Try")
        with gr.Column(scale=1, min_width=200):
            image = gr.Image(label="…or like this image", type="filepath", image_mode=None, format="png", sources=["upload", "clipboard"], height=180)
    with gr.Row():
        image_weight = gr.Slider(0, 1, value=0.5, step=0.05, label="Image weight (text + image)")
        k = gr.Slider(1, 60, value=12, step=1, label="Results")
        folders = gr.Dropdown(label="Folders", multiselect=True, choices=[])
        sources = gr.CheckboxGroup(label="Source", choices=list(SOURCES))
    with gr.Row():
        hybrid = gr.Checkbox(label="Also match file and folder names", value=False)
        dedupe = gr.Checkbox(label="Hide near-duplicates", value=False)
    c.controls = {"text": text, "image": image, "image_weight": image_weight, "k": k, "folders": folders,
                  "sources": sources, "hybrid": hybrid, "dedupe": dedupe}
    c.go = gr.Button("Search", variant="primary")
    c.status = gr.Markdown()
    c.results = gr.Gallery(label="Results (click to select as reference)", columns=6, height=460, object_fit="contain", allow_preview=False, fit_columns=False)
    c.result_ids = gr.State([])
    gr.Markdown("### Selected references")
    c.picked_md = gr.Markdown(selection_md(studio, []))
    c.picked = gr.Gallery(label="Selected references", columns=8, rows=1, height=200, object_fit="contain", allow_preview=False, preview=False, fit_columns=False)
    with gr.Row():
        c.clear = gr.Button("Clear selection")
        c.to_generate = gr.Button("Use in Generate →", variant="primary")
    return c


def _listen(studio: Studio, selected: gr.State, c: SimpleNamespace) -> Callable[[list[str]], tuple[Any, ...]]:
    @user_errors
    def run_search(*values: Any) -> tuple[Any, ...]:
        hits = studio.search(Query.of(dict(zip(c.controls, values))))
        pictures, ids = gallery_items(studio, hits)
        if not hits:
            message = "Nothing found: the library is empty or nothing matches the filters."
        else:
            message = f"{len(hits)} results" + ("" if len(pictures) == len(hits) else f" ({len(hits) - len(pictures)} originals missing on disk)")
        return pictures, ids, message

    def picked_view(ids: list[str]) -> tuple[Any, ...]:
        pictures, kept = gallery_items(studio, studio.get(ids)) if ids else ([], [])
        return kept, pictures, selection_md(studio, kept)

    def toggle(ids: list[str], chosen: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        asset_id = ids[evt.index]
        if asset_id in chosen:
            chosen = [i for i in chosen if i != asset_id]
        elif len(chosen) >= studio.max_references:
            gr.Warning(f"{studio.settings.gemini_model} takes at most {studio.max_references} reference images; remove one first.")
        else:
            chosen = [*chosen, asset_id]
        return picked_view(chosen)

    def untoggle(chosen: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        return picked_view([i for n, i in enumerate(chosen) if n != evt.index])

    inputs, found = list(c.controls.values()), [c.results, c.result_ids, c.status]
    picks = [selected, c.picked, c.picked_md]
    c.go.click(run_search, inputs, found, api_name="search_gallery", concurrency_limit=4, concurrency_id="search")
    c.controls["text"].submit(run_search, inputs, found, api_name=False, concurrency_limit=4, concurrency_id="search")
    c.results.select(toggle, [c.result_ids, selected], picks, api_name=False, queue=False)
    c.picked.select(untoggle, [selected], picks, api_name=False, queue=False)
    c.clear.click(lambda: picked_view([]), None, picks, api_name=False, queue=False)
    return picked_view

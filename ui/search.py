"""Search tab: text, example image or both; words (BM25) ranked with CLIP unless turned off, and a
cut-off in words ("Only close matches"). Each caption says how relevant the result is and what
matched (words and picture, words, picture), from the same relevance that orders and cuts them
(rag/search/rank.py). A click on a result opens its page; picking a reference is the page's "Add to
references" button, so looking never changes the tray. Picked results carry a ✓, and the tray stays
in view above the results."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.core import BananaError, Hit
from rag.search import CUTOFFS, Query, relevance_cue
from rag.studio import Studio

from . import reviews
from .common import counted, display_name, gallery_items, md_escape, query_endpoint, source_choices, user_errors

EXAMPLE_QUERIES = ["a red car", "a bowl of soup", "a cartoon animal", "a house with a roof", "a hammer"]
NO_QUERY = "Type what you are looking for, or drop an example image, then press **Search**."
EMPTY_LIBRARY = "**The library is empty.** Add images on the Library tab (or its sample library) and search again."


def selection_md(studio: Studio, selected: list[str]) -> str:
    cap = studio.max_references
    if not selected:
        return f"**References: none yet.** Open a result and press *Add to references* (up to {cap})."
    return f"**References: {len(selected)} of {cap}.** Click one to open it."


def cue(hit: Hit) -> str:
    """How relevant a result is and what matched ("close match · words and picture"), from the relevance
    that also ordered it; an example image finding itself (or a copy) says so."""
    said = "same image" if hit.score >= 0.995 else relevance_cue(hit.relevance)
    return f"{said} · {hit.match}" if hit.match else said


def words_notice_md(studio: Studio) -> str:
    """Why word search is off (an old Milvus server, a library to re-index), for the tab's notice."""
    try:
        notice = studio.words_notice()
    except BananaError as exc:
        notice = str(exc)
    return f"*{md_escape(notice)}*" if notice else ""


def build(studio: Studio, selected: gr.State) -> SimpleNamespace:
    c = _render(studio)
    _listen(studio, selected, c)
    reviews.listen_share(studio, c.share, "ids", [selected])
    c.share_open.click(lambda: gr.Column(visible=True), None, c.share.box, api_name=False, queue=False)
    gr.api(query_endpoint(studio), api_name="search", concurrency_id="search", concurrency_limit=4)
    return c


def _render(studio: Studio) -> SimpleNamespace:
    """The tab's components; ``controls`` maps each :class:`Query` option shown to its control."""
    c = SimpleNamespace()
    with gr.Row(equal_height=True, elem_id="search-bar"):
        with gr.Column(scale=5, min_width=260):
            text = gr.Textbox(label="Describe what you are looking for", placeholder="red silk cape with gold trim", max_lines=2)
            gr.Examples(EXAMPLE_QUERIES, inputs=text, label=None)
        image = gr.Image(label="…or like this image", type="filepath", image_mode=None, format="png",
                         sources=["upload", "clipboard"], height=120, scale=2, min_width=160, elem_id="search-image")
        c.go = gr.Button("Search", variant="primary", scale=1, min_width=100, elem_id="search-go")
    with gr.Row(elem_id="search-filters"):
        folders = gr.Dropdown(label="Folders", multiselect=True, choices=[], scale=2)
        tags = gr.Dropdown(label="Tags", multiselect=True, choices=[], scale=2)
        min_score = gr.Dropdown(list(CUTOFFS), value=0.0, label="Show (best word matches always)",
                                elem_id="search-cutoff", scale=1, min_width=150)
        c.more = gr.Button("More options ▾", size="sm", scale=0, min_width=130, elem_id="search-more")
    with gr.Row(visible=False, elem_id="search-options") as c.options:
        sources = gr.CheckboxGroup(label="Source", choices=source_choices())
        k = gr.Slider(1, 60, value=12, step=1, label="Results")
        image_weight = gr.Slider(0, 1, value=0.5, step=0.05, label="Image weight (text + image)")
        with gr.Column(min_width=200):
            words = gr.Checkbox(label="Match words too (names, tags, text in files)", value=True)
            dedupe = gr.Checkbox(label="Hide near-duplicates", value=False)
    c.controls = {"text": text, "image": image, "image_weight": image_weight, "k": k, "folders": folders,
                  "sources": sources, "words": words, "min_score": min_score, "dedupe": dedupe, "tags": tags}
    # Shown on each page load: word search off on an old Milvus server, or a library to re-index.
    c.open_options = gr.State(False)
    c.words_notice = gr.Markdown(lambda: words_notice_md(studio), elem_id="words-notice")
    with gr.Row(equal_height=True, elem_id="reference-tray"):
        c.picked_md = gr.Markdown(selection_md(studio, []), elem_id="tray-text", min_width=260)
        c.clear = gr.Button("Clear", size="sm", min_width=80, scale=0)
        c.share_open = gr.Button("Share for review…", size="sm", min_width=140, scale=0, elem_id="share-picked-open")
        c.to_generate = gr.Button("Use in Generate →", variant="primary", size="sm", min_width=140, scale=0)
        c.picked = gr.Gallery(show_label=False, columns=8, rows=1, height=110, object_fit="contain", allow_preview=False,
                              preview=False, fit_columns=False, scale=5, min_width=240, elem_id="tray-gallery",
                              visible=False)
    c.share = reviews.render_share(studio, "picked", "Share the picked images for review", folded=True)
    c.status = gr.Markdown(elem_id="search-status")
    c.results = gr.Gallery(label="Results", show_label=False, columns=6, height="auto", object_fit="contain",
                           allow_preview=False, fit_columns=False, elem_id="search-results")
    c.found = gr.State([])  # [(id, cue)] of the results shown
    c.result_ids = gr.State([])
    return c


def _listen(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    def results_view(found: list[list[str]], chosen: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
        """The results with their cues, ✓ on the picked ones; and their ids, in gallery order."""
        cues = dict((i, q) for i, q in found)

        def caption(a: Any) -> str:
            return f"{'✓ picked · ' if a.id in chosen else ''}{display_name(a)} · {a.folder} · {cues.get(a.id, '')}"

        return gallery_items(studio, studio.get([i for i, _ in found]), caption=caption)

    def shown(hits: list[Hit], chosen: list[str], what: str, note: str = "") -> tuple[Any, ...]:
        if not hits:
            message = EMPTY_LIBRARY if not studio.count() else "**Nothing matches.** Loosen the filters or try other words."
            return [], [], [], message + (f" {note}" if note else "")
        found = [[h.asset.id, cue(h)] for h in hits]
        pictures, ids = results_view(found, chosen)
        return pictures, found, ids, found_md(hits, len(hits) - len(pictures), what, note)

    @user_errors
    def run_search(chosen: list[str], *values: Any) -> tuple[Any, ...]:
        query = Query.of(dict(zip(c.controls, values)))
        if not query.text.strip() and query.image is None:
            return [], [], [], NO_QUERY
        try:
            found = studio.search_results(query)
        except BananaError as exc:
            return [], [], [], f"**{md_escape(exc)}**"
        return shown(found.hits, chosen, "", md_escape(found.summary()))

    @user_errors
    def like(asset_id: str, k: float, chosen: list[str]) -> tuple[Any, ...]:
        (asset,) = studio.get([asset_id]) or [None]
        if asset is None:
            raise BananaError("That image is no longer in the library.")
        return shown(studio.search(Query(image_id=asset_id, k=int(k))), chosen, f" like **{md_escape(asset.filename)}**")

    def picked_view(chosen: list[str], found: list[list[str]]) -> tuple[Any, ...]:
        pictures, kept = gallery_items(studio, studio.get(chosen), caption=lambda a: a.filename) if chosen else ([], [])
        return (kept, gr.Gallery(value=pictures, visible=bool(pictures)), selection_md(studio, kept),
                results_view(found, kept)[0] if found else gr.skip())

    @user_errors
    def folder_choices(chosen_folders: list[str] | None, chosen_tags: list[str] | None) -> tuple[Any, ...]:
        facets = studio.library_page(limit=0).facets
        folders, tags = facets["folder"], facets["tags"]
        return (gr.Dropdown(choices=counted(folders), value=[f for f in chosen_folders or [] if f in folders]),
                gr.Dropdown(choices=counted(tags), value=[t for t in chosen_tags or [] if t in tags]))

    inputs, found = [selected, *c.controls.values()], [c.results, c.found, c.result_ids, c.status]
    c.more.click(_toggle, c.open_options, [c.open_options, c.options, c.more], api_name=False, queue=False)
    c.go.click(run_search, inputs, found, api_name="search_gallery", concurrency_limit=4, concurrency_id="search")
    c.controls["text"].submit(run_search, inputs, found, api_name=False, concurrency_limit=4, concurrency_id="search")
    c.like = (like, None, found)  # inputs are set by app.py: (the page's asset, k, selected)
    c.refresh_picked = (picked_view, [selected, c.found], [selected, c.picked, c.picked_md, c.results])
    c.clear.click(lambda f: picked_view([], f), [c.found], c.refresh_picked[2], api_name=False, queue=False)
    c.folder_choices = (folder_choices, [c.controls["folders"], c.controls["tags"]], [c.controls["folders"], c.controls["tags"]])


def found_md(hits: list[Hit], missing: int, what: str, note: str) -> str:
    """The line above the results: how many, how many matched words, what the cut-off hid."""
    words = sum(h.words for h in hits)
    return (f"{len(hits)} result{'' if len(hits) == 1 else 's'}{what}" + (f", {words} with matching words" if words else "")
            + (f" ({missing} originals missing on disk)" if missing else "") + (f". {note}" if note else "")
            + " · *click one to open it*")


def _toggle(shown: bool) -> tuple[Any, ...]:
    """More options opens the row of the less used ones; Fewer options closes it."""
    return not shown, gr.Row(visible=not shown), gr.Button("Fewer options ▴" if not shown else "More options ▾")

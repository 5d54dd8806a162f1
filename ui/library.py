"""Library tab: drop images or a .zip (indexing starts on drop), then the library as a grid of
thumbnails, newest first, with filters that say how many images each choice shows. A click opens
the asset's page. The table (bulk work) and the Trash are in ``library_table`` and ``trash``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from rag.library import ADDED, PAGE_SIZE, IngestReport, LibraryFilter
from rag.studio import Studio

from . import library_table, trash
from .common import (
    api_record,
    chain,
    counted,
    grid_items,
    library_filter,
    quietly,
    source_choices,
    streamed,
    user_errors,
)

EMPTY = ("**Your library is empty.** Drop images or a .zip of images above, or add the sample library "
         "(about 90 clip-art images in 12 folders) to try search and generation right away.")


SIZE_GUARD = """<script>
(() => {
  // Images over MAX_UPLOAD_MB are refused in the browser, before a byte is sent (a .zip is checked on the server).
  const limit = %(bytes)d, shown = "%(mb)s";
  const tooBig = (files) => Array.from(files || []).filter((f) => !/\\.zip$/i.test(f.name) && f.size > limit);
  const refuse = (event, big) => {
    event.stopImmediatePropagation();
    event.preventDefault();
    if (event.target instanceof HTMLInputElement) event.target.value = "";
    let note = document.getElementById("upload-refused");
    if (!note) {
      note = document.createElement("p");
      note.id = "upload-refused";
      note.setAttribute("role", "alert");
      document.getElementById("library-upload").after(note);
    }
    note.textContent = `Not uploaded: ${big.map((f) => f.name).join(", ")} ${big.length > 1 ? "are" : "is"} over the `
      + `${shown} MB limit per image set for this app. Nothing was sent; choose smaller files.`;
  };
  const guard = (event, files) => {
    if (!event.target.closest || !event.target.closest("#library-upload")) return;
    const big = tooBig(files);
    if (big.length) refuse(event, big);
    else document.getElementById("upload-refused")?.remove();
  };
  document.addEventListener("change", (e) => e.target.type === "file" && guard(e, e.target.files), true);
  document.addEventListener("drop", (e) => guard(e, e.dataTransfer && e.dataTransfer.files), true);
})();
</script>"""


def size_guard(max_upload_mb: float) -> str:
    """A script for the page's head that refuses oversized images in the browser (Gradio's own
    limit is one size for every upload, and a .zip may be larger than an image)."""
    return SIZE_GUARD % {"bytes": int(max_upload_mb * 1024 * 1024), "mb": f"{max_upload_mb:g}"}


def build(studio: Studio) -> SimpleNamespace:
    """The tab; its components, with ``after``: the handlers to run once something changed the library."""
    c = _render(studio)
    c.table, c.trash = library_table.render(), trash.render()
    _listen(studio, c)
    trash.listen(studio, c.trash, [c.show, c.fill])
    c.after = [c.show, c.fill, c.trash.refresh]  # what runs after anything changed the library
    library_table.listen(studio, c.table, c.filters, c.after)
    for module in (library_table, trash):
        module.api(studio)
    _api(studio)
    return c


def _render(studio: Studio) -> SimpleNamespace:
    c = SimpleNamespace()
    s = studio.settings
    with gr.Row():
        with gr.Column(scale=3, min_width=280):
            c.files = gr.File(label="Drop images or a .zip of images: adding starts at once", file_count="multiple",
                              type="filepath", height=150, elem_id="library-upload")
        with gr.Column(scale=2, min_width=240):
            c.folder = gr.Textbox(label="Folder for these files (a .zip's own folders go inside it)", value="uploads", max_lines=1)
            c.upload_tags = gr.Textbox(label="Tags for these files (comma-separated)", max_lines=1, placeholder="spring campaign, product")
            gr.Markdown(f"<small>Up to {s.max_upload_files} files, {s.max_upload_mb:g} MB each. "
                        "Duplicates are recognised by content and named below.</small>")
            with gr.Accordion("Add a folder on this server (indexed in place)", open=False, visible=bool(s.library_roots)):
                c.server_folder = gr.Textbox(label="Folder", max_lines=1, elem_id="server-folder",
                                             placeholder=" or ".join(str(r) for r in s.library_roots))
                c.add_folder = gr.Button("Add this folder", elem_id="add-server-folder")
    c.result = gr.Markdown(elem_id="upload-result")
    c.failures = gr.Dataframe(label="Not added (and why)", visible=False, interactive=False, wrap=True)
    with gr.Column(visible=False, elem_id="library-empty") as c.empty:
        gr.Markdown(EMPTY)
        c.sample = gr.Button("Add the sample library", variant="primary", elem_id="add-sample")
    with gr.Row(elem_id="library-filters"):
        c.folders = gr.Dropdown(label="Folder", multiselect=True, choices=[], min_width=180)
        c.sources = gr.Dropdown(label="Source", multiselect=True, choices=source_choices(), min_width=160)
        c.added = gr.Dropdown(label="Date added", choices=[("any time", ""), *[(k, k) for k in ADDED]], value="", min_width=160)
        c.models = gr.Dropdown(label="Generated with model", multiselect=True, choices=[], min_width=180)
        c.tags = gr.Dropdown(label="Tags", multiselect=True, choices=[], min_width=160)
    c.filters = [c.folders, c.sources, c.added, c.models, c.tags]
    c.count = gr.Markdown(elem_id="library-count")
    c.grid = gr.Gallery(show_label=False, columns=6, height="auto", object_fit="contain", allow_preview=False,
                        fit_columns=False, elem_id="library-grid")
    c.grid_ids, c.pending, c.shown = gr.State([]), gr.State(False), gr.State(PAGE_SIZE)
    c.more = gr.Button("Load more", visible=False, elem_id="library-more")
    return c


def _choices(counts: dict[str, int], chosen: Any) -> list[tuple[str, str]]:
    """Choices with counts; a chosen value that now matches nothing stays, shown with (0)."""
    return counted(counts) + [(f"{v} (0)", v) for v in chosen or () if v not in counts]


def grid_view(studio: Studio, filters: list[Any], limit: int) -> tuple[Any, ...]:
    """The grid, its ids, whether previews are missing, the count line, the filters with their counts."""
    chosen = library_filter(*filters)
    page = studio.library_page(chosen, limit=limit)
    pictures, missing = grid_items(studio, page.assets, make=False)
    f = page.facets
    if page.total:
        count = f"**{page.total} image{'s' if page.total != 1 else ''}**, newest first" + (
            f" · showing {len(page.assets)}" if page.more else "")
    elif chosen == LibraryFilter():
        count = ""
    else:
        count = "**No images match these filters.** Clear some of them above."
    return (  # no tile stays selected: after a delete, the orange frame would sit on the next image
        gr.Gallery(value=pictures, selected_index=None), [a.id for a in page.assets], bool(missing), limit, count,
        gr.Button(visible=page.more),
        gr.Column(visible=page.total == 0 and chosen == LibraryFilter()),
        gr.Dropdown(choices=_choices(f["folder"], filters[0])),
        gr.Dropdown(choices=source_choices(f["source"])),
        gr.Dropdown(choices=[(f"any time ({sum(f['source'].values())})", ""), *[(f"{k} ({n})", k) for k, n in f["added"].items()]]),
        gr.Dropdown(choices=_choices(f["model"], filters[3])), gr.Dropdown(choices=_choices(f["tags"], filters[4])),
    )


def tagged_reasons(report: IngestReport, reasons: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The duplicates' rows (in ``report.duplicates``' order), saying where the tags typed for the upload went:
    on the library's copy, which is what a search for them finds."""
    tagged = set(report.tagged)
    return [(name, reason + ("; your tags were added to it" if asset_id in tagged else ""))
            for (name, reason), (_, asset_id) in zip(reasons, report.duplicates)]


def _listen(studio: Studio, c: SimpleNamespace) -> None:
    outputs = [c.grid, c.grid_ids, c.pending, c.shown, c.count, c.more, c.empty, *c.filters]

    @user_errors
    def show(*filters: Any) -> tuple[Any, ...]:
        return grid_view(studio, list(filters), PAGE_SIZE)

    @user_errors
    def more(shown: int, *filters: Any) -> tuple[Any, ...]:
        return grid_view(studio, list(filters), int(shown) + PAGE_SIZE)

    @quietly
    @user_errors
    def fill(ids: list[str], pending: bool) -> tuple[Any, ...]:
        """Make the previews the first paint lacked, then show the grid again (skipped when none lacked)."""
        if not pending or not ids:
            return gr.skip(), False
        return grid_items(studio, studio.get(ids), make=True)[0], False

    @user_errors
    def ingest(paths: list[str] | None, folder: str, tags: str) -> Any:
        if not paths:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        for message, report in streamed(lambda p: studio.ingest_uploads(paths, folder=folder, tags=tags, progress=p)):
            if report is None:
                yield f"Adding… {message}" if message else "Adding…", gr.skip(), gr.skip()
        if report.failed:
            gr.Warning(f"{len(report.failed)} file(s) could not be added; see the list below.")
        rows = [*report.failed, *tagged_reasons(report, studio.duplicate_reasons(report))]
        frame = pd.DataFrame([{"file": str(p), "reason": r} for p, r in rows], columns=["file", "reason"])
        yield f"**{report.summary()}**", gr.Dataframe(value=frame, visible=bool(rows)), None

    @user_errors
    def add_sample() -> Any:
        for message, report in streamed(lambda p: studio.add_sample_library(progress=p)):
            yield f"Adding the sample library… {message}" if report is None else f"**Sample library: {report.summary()}**"

    @user_errors
    def add_folder(path: str) -> Any:
        """Index a folder on the server in place (only under LIBRARY_ROOTS)."""
        for message, report in streamed(lambda p: studio.ingest_allowed_folder(path, progress=p)):
            yield f"Adding {path}… {message}" if report is None else f"**{path}: {report.summary()}**"

    c.show = (show, c.filters, outputs)
    c.fill = (fill, [c.grid_ids, c.pending], [c.grid, c.pending])  # the placeholders stay visible meanwhile
    for trigger in [f.input for f in c.filters]:
        chain(trigger(*c.show, api_name=False, queue=False), [c.fill])
    chain(c.more.click(more, [c.shown, *c.filters], outputs, api_name=False), [c.fill])
    chain(c.files.upload(ingest, [c.files, c.folder, c.upload_tags], [c.result, c.failures, c.files], api_name="ingest",
                         concurrency_limit=1, concurrency_id="ingest", show_progress="minimal"), [c.show, c.fill])
    chain(c.add_folder.click(add_folder, [c.server_folder], c.result, api_name="ingest_folder", concurrency_limit=1,
                             concurrency_id="ingest"), [c.show, c.fill])
    locked = c.sample.click(lambda: gr.Button("Adding the sample library…", interactive=False), None, c.sample,
                            api_name=False, queue=False)  # one click, one copy: the button waits until it is done
    chain(locked.then(add_sample, None, c.result, api_name=False, concurrency_limit=1, concurrency_id="ingest"),
          [(lambda: gr.Button("Add the sample library", interactive=True), None, c.sample), c.show, c.fill])


def _api(studio: Studio) -> None:
    @user_errors
    def library_page(folders: list[str] | None = None, sources: list[str] | None = None, added: str = "",
                     models: list[str] | None = None, tags: list[str] | None = None, offset: int = 0,
                     limit: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the library grid, newest first: {assets, total, offset, more, facets}. Filters:
        folders, sources, tags and models (any of the values given), added ("past day", "past week",
        "past month", "older"). facets counts each value of each filter given the other filters."""
        chosen = library_filter(folders, sources, added, models, tags)
        page = studio.library_page(chosen, offset=int(offset), limit=min(max(int(limit), 0), 500)).to_dict()
        page["assets"] = [api_record(a) for a in page["assets"]]
        return page

    @user_errors
    def stats() -> dict[str, Any]:
        """How many images, by folder and by source."""
        return studio.stats()

    gr.api(library_page, api_name="library_page")
    gr.api(stats, api_name="stats")

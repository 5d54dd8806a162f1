"""An asset's page: a panel over the app (a modal) that the Library grid, Search results and the
Generate tab open. It shows the image large, its details, how it was made, what it was made from
and what was made from it, and its actions.

``render`` makes the components (once, outside the tabs); ``opener`` is what any gallery calls to
open a page; ``listen`` wires the page's own buttons; app.py wires the actions that reach into
other tabs (More like this, Add to references, Edit this).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.core import Asset
from rag.library import AssetDetails, LibraryFilter
from rag.studio import Studio

from . import credentials as credentials_ui
from . import reviews, text_view
from .common import (
    Handler,
    api_record,
    chain,
    display_name,
    gallery_items,
    md_escape,
    source_words,
    user_errors,
    version_of,
)

MAX_WORDS_SHOWN = 600  # of a file's embedded words (up to 4,000 are kept and searched)
ESCAPE_CLOSES = """<script>
document.addEventListener("keydown", (e) => {  // Escape closes an image's page, as a modal should
  const page = document.getElementById("asset-page");
  const inList = e.target.getAttribute && e.target.getAttribute("role") === "combobox";  // Escape closes the list first
  if (e.key === "Escape" && page && page.getClientRects().length > 0 && !inList) {
    document.getElementById("asset-close")?.click();
  }
});
</script>"""


def render() -> SimpleNamespace:
    c = SimpleNamespace()
    c.current = gr.State("")
    c.parent_ids, c.child_ids = gr.State([]), gr.State([])
    with gr.Column(visible=False, elem_id="asset-page") as c.panel:
        with gr.Row(equal_height=True):
            c.title = gr.Markdown(elem_id="asset-title")
            c.close = gr.Button("✕ Close", size="sm", scale=0, min_width=100, elem_id="asset-close")
        with gr.Row():
            with gr.Column(scale=3, min_width=300):
                c.image = gr.Image(show_label=False, interactive=False, height=460, buttons=["fullscreen"], type="filepath")
            with gr.Column(scale=2, min_width=300):
                c.details = gr.Markdown(elem_id="asset-details")
                c.generation = gr.Markdown()
                c.credentials = credentials_ui.render()  # what the file's content credentials say
                with gr.Row():
                    c.like = gr.Button("More like this", variant="primary", size="sm", min_width=120)
                    c.pick = gr.Button("Add to references", size="sm", min_width=120, elem_id="asset-pick")
                    c.edit = gr.Button("Edit this", size="sm", min_width=100)
                with gr.Row():
                    c.download = gr.DownloadButton("Download original", size="sm", min_width=120)
                    c.delete = gr.Button("Delete", variant="stop", size="sm", min_width=80)
                    c.confirm = gr.Button("Yes, move it to the Trash", variant="stop", size="sm", visible=False)
                    c.cancel = gr.Button("Cancel", size="sm", visible=False)
                c.status = gr.Markdown(elem_id="asset-status")
                with gr.Row(elem_classes="field-row"):
                    c.tags = gr.Textbox(label="Tags (comma-separated)", max_lines=1, scale=3, placeholder="summer, hero shot")
                    c.save_tags = gr.Button("Save tags", size="sm", scale=1, min_width=90)
                with gr.Row(elem_classes="field-row"):
                    c.folder = gr.Textbox(label="Folder", max_lines=1, scale=3)
                    c.move = gr.Button("Move", size="sm", scale=1, min_width=90)
        c.parents_md = gr.Markdown()
        c.parents = gr.Gallery(show_label=False, columns=8, rows=1, height=170, object_fit="contain", allow_preview=False,
                               fit_columns=False, visible=False, elem_id="asset-parents")
        c.children_md = gr.Markdown()
        c.children = gr.Gallery(show_label=False, columns=8, rows=1, height=170, object_fit="contain", allow_preview=False,
                                fit_columns=False, visible=False, elem_id="asset-children")
        c.feedback = reviews.render_asset()  # what reviewers said on review links
    c.page = [c.panel, c.current, c.title, c.image, c.details, c.generation, c.tags, c.folder, c.download, c.pick,
              c.status, c.parents_md, c.parents, c.parent_ids, c.children_md, c.children, c.child_ids,
              c.delete, c.confirm, c.cancel]
    return c


def pick_label(asset_id: str, selected: list[str]) -> str:
    return "✓ In references (remove)" if asset_id in (selected or []) else "Add to references"


def title(d: AssetDetails) -> str:
    """The file name; for a generated image (named by its hash) its version and what it was asked for."""
    prompt = str(d.generation.get("prompt", "")).strip()
    if d.asset.source == "generated" and prompt:
        version = version_of(d.asset)
        return f"Generated{' ' + version if version else ''}: {prompt[:90]}{'…' if len(prompt) > 90 else ''}"
    return d.asset.filename


def short(name: str, keep: int = 40) -> str:
    return name if len(name) <= keep else f"{name[: keep - 14]}…{name[-12:]}"


def _details_md(asset: Asset) -> str:
    added = time.strftime("%Y-%m-%d %H:%M", time.localtime(asset.created))
    size = f"{asset.bytes / 1024:.1f} KB" if asset.bytes < 1024 * 1024 else f"{asset.bytes / 1024 / 1024:.1f} MB"
    return (
        f"**Folder** {md_escape(asset.folder)} · **Source** {source_words(asset.source)}  \n"
        f"**File** {md_escape(short(asset.filename))}  \n**Size** {asset.width}×{asset.height} px, {size} ({asset.format}) · **Added** {added}  \n"
        + _words_md(asset) + text_view.text_in_image_md(asset) + f"<small>id {asset.id[:16]}…</small>"
    )


def _words_md(asset: Asset) -> str:
    """The words search matches besides tags and prompt (a title, description or keywords written into the file,
    a caption a model wrote), so a result found by them shows why; escaped: they come from strangers' files."""
    lines = []
    for key, label in (("embedded", "In the file"), ("caption", "Caption")):
        text = " ".join(str(asset.meta.get(key) or "").split())
        if text:
            shown = text if len(text) <= MAX_WORDS_SHOWN else text[:MAX_WORDS_SHOWN].rstrip() + "…"
            lines.append(f"**{label}** {md_escape(shown)}  \n")
    return "".join(lines)


def _generation_md(details: AssetDetails) -> str:
    g = details.generation
    if not g:
        return ""
    lines = [f"**Prompt** {md_escape(g.get('prompt', '(none)'))}"]
    facts = [f"**Model** {md_escape(g['model'])}" if "model" in g else "", f"**Aspect** {g['aspect_ratio']}" if "aspect_ratio" in g else "",
             f"**Image size** {md_escape(g['image_size'])}" if "image_size" in g else "",
             f"**Cost** about ${float(g['cost_usd']):.3f}" if "cost_usd" in g else ""]
    lines.append(" · ".join(f for f in facts if f))
    if "session" in g:
        lines.append(f"**Session** {md_escape(g['session'])}" + (f" · **Version** {md_escape(g['version'])}" if "version" in g else ""))
    return "  \n".join(lines)


def download_copy(asset: Asset) -> str | None:
    """The original under its own file name in a temporary folder, for the download button
    (library files are stored by content, and folders indexed in place are not served)."""
    source = Path(asset.path)
    if not source.is_file():
        return None
    target = Path(tempfile.gettempdir()) / "banana-downloads" / asset.id[:24] / asset.filename
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return str(target)


def _parents_md(d: AssetDetails) -> str:
    """"Made from": a parent that is a session version never saved is named, and is not called lost."""
    if not d.parents and not d.missing_parents:
        return ""
    unsaved = [f"{md_escape(d.unsaved_parents[p])} (not in the library)" for p in d.missing_parents if p in d.unsaved_parents]
    gone = len(d.missing_parents) - len(unsaved)
    notes = [*unsaved, *([f"{gone} no longer in the library"] if gone else [])]
    return f"#### Made from {len(d.parents) + len(d.missing_parents)} image(s)" + (f"\n\n{'; '.join(notes)}" if notes else "")


def page_values(studio: Studio, asset_id: str, selected: list[str]) -> tuple[Any, ...]:
    """Every component of the page for ``asset_id`` (the order of ``c.page``)."""
    d = studio.asset(asset_id)
    a = d.asset
    parents, parent_ids = gallery_items(studio, d.parents, caption=display_name)
    children, child_ids = gallery_items(studio, d.children, caption=display_name)
    parents_md = _parents_md(d)
    children_md = f"#### Made from this: {len(d.children)} image(s)" if d.children else "#### Made from this: nothing yet"
    large = studio.preview(a, large=True) or studio.preview(a)
    return (
        gr.Column(visible=True), a.id, f"### {md_escape(title(d))}", str(large) if large else None, _details_md(a),
        _generation_md(d), ", ".join(d.tags), a.folder, gr.DownloadButton(value=download_copy(a)),
        gr.Button(value=pick_label(a.id, selected)), "", parents_md, gr.Gallery(value=parents, visible=bool(parents)),
        parent_ids, children_md, gr.Gallery(value=children, visible=bool(children)), child_ids,
        gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False),
    )


def opener(studio: Studio, c: SimpleNamespace, ids: Any, selected: gr.State) -> Handler:
    """(fn, inputs, outputs) that open the page of the clicked item of a gallery whose ids are in ``ids``."""

    @user_errors
    def open_clicked(shown: list[str], chosen: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        if not shown or evt.index is None or evt.index >= len(shown):
            return tuple(gr.skip() for _ in c.page)
        return page_values(studio, shown[evt.index], chosen)

    return open_clicked, [ids, selected], c.page


def toggle_reference(studio: Studio, asset_id: str, chosen: list[str]) -> tuple[Any, ...]:
    """"Add to references" on the page (again: remove); a pick over the model's cap is refused right here."""
    chosen, cap = list(chosen or []), studio.max_references
    if asset_id in chosen:
        chosen.remove(asset_id)
        message = f"Removed from the references ({len(chosen)} of {cap})."
    elif len(chosen) >= cap:
        message = (f"**Not added: {md_escape(studio.model_list.get().title)} takes at most {cap} reference images.** "
                   "Remove one first (open it from the tray and press the ✓ button), or clear the tray.")
        gr.Warning(f"At most {cap} reference images; remove one first.")
    else:
        chosen.append(asset_id)
        message = f"Added to the references ({len(chosen)} of {cap})."
    return chosen, gr.Button(value=pick_label(asset_id, chosen)), message


def render_recent() -> SimpleNamespace:
    """A strip of the images most recently saved from Generate, each opening its page."""
    c = SimpleNamespace()
    c.md = gr.Markdown("#### Saved to the library from here (click one to open its page)")
    c.gallery = gr.Gallery(show_label=False, columns=8, rows=1, height=150, object_fit="contain", allow_preview=False,
                           fit_columns=False, elem_id="recent-generated")
    c.ids = gr.State([])
    return c


def recent_view(studio: Studio) -> tuple[Any, ...]:
    page = studio.library_page(LibraryFilter(sources=("generated",)), limit=8)
    pictures, ids = gallery_items(studio, page.assets, caption=display_name)  # the version first, no tile selected
    return gr.Gallery(value=pictures, selected_index=None), ids, ("#### Saved to the library from here (click one to open its page)" if ids
                           else "#### Images you save to the library will show here; click one to open its page.")


def listen(studio: Studio, c: SimpleNamespace, selected: gr.State, changed: list[Handler]) -> None:
    """The page's own buttons. ``changed`` are (fn, inputs, outputs) to run after the library changed
    (the grid refreshes); moving, tagging and deleting end with them."""

    def close() -> Any:
        return gr.Column(visible=False)

    @user_errors
    def save_tags(asset_id: str, text: str) -> tuple[Any, ...]:
        asset = studio.set_tags(asset_id, text)
        tags = asset.meta.get("tags") or []
        return ", ".join(tags), f"Tags saved: {md_escape(', '.join(tags)) or '(none)'}."

    @user_errors
    def move(asset_id: str, folder: str) -> tuple[Any, ...]:
        studio.move([asset_id], folder)
        (asset,) = studio.get([asset_id])
        return asset.folder, _details_md(asset), f"Moved to **{md_escape(asset.folder)}** (the file stays where it is)."

    @user_errors
    def delete(asset_id: str) -> tuple[Any, ...]:
        studio.delete([asset_id])
        gr.Info("Moved to the Trash. Restore it from the Library tab's Trash.")
        return gr.Column(visible=False), "", gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    confirm_buttons = [c.delete, c.confirm, c.cancel]
    c.close.click(close, None, c.panel, api_name=False, queue=False)
    reviews.listen_asset(studio, c.current, c.feedback)
    credentials_ui.listen(studio, c.current, c.credentials)
    for gallery, ids in ((c.parents, c.parent_ids), (c.children, c.child_ids)):
        gallery.select(*opener(studio, c, ids, selected), api_name=False)
    tagged = c.save_tags.click(save_tags, [c.current, c.tags], [c.tags, c.status], api_name=False)
    submitted = c.tags.submit(save_tags, [c.current, c.tags], [c.tags, c.status], api_name=False)
    moved = c.move.click(move, [c.current, c.folder], [c.folder, c.details, c.status], api_name=False)
    c.delete.click(lambda: (gr.Button(visible=False), gr.Button(visible=True), gr.Button(visible=True)), None,
                   confirm_buttons, api_name=False, queue=False)
    c.cancel.click(lambda: (gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)), None,
                   confirm_buttons, api_name=False, queue=False)
    deleted = c.confirm.click(delete, [c.current], [c.panel, c.status, *confirm_buttons], api_name=False)
    for event in (tagged, submitted, moved, deleted):
        chain(event, changed, success=True)


def api(studio: Studio) -> None:
    @user_errors
    def asset(asset_id: str) -> dict[str, Any]:
        """Everything an asset's page shows: the record (with tags), how it was generated (prompt,
        model, size, cost, session), its parents' ids (what it was made from) and its children's
        ids (what was generated with it as a reference)."""
        d = studio.asset(asset_id)
        out = d.to_dict()
        out["asset"] = api_record(out["asset"])
        out["parent_assets"] = [api_record(r) for r in out["parent_assets"]]
        out["child_assets"] = [api_record(r) for r in out["child_assets"]]
        out["credentials"] = credentials_ui.record(studio, asset_id)  # content credentials (C2PA), or None
        return out

    @user_errors
    def tag(asset_id: str, tags: list[str], add: bool = False) -> list[str]:
        """Set an asset's tags (a list of words or short phrases); with add=True keep the ones it has.
        Returns the tags it has now. Tags are stored on the record and come back from /search."""
        if add:
            studio.add_tags([asset_id], tags)
            (asset,) = studio.get([asset_id]) or [None]
            return list(asset.meta.get("tags") or []) if asset else []
        return list(studio.set_tags(asset_id, tags).meta.get("tags") or [])

    @user_errors
    def move(ids: list[str], folder: str) -> int:
        """Give assets another folder ("products/shoes"); their files stay where they are. Names with
        "." or ".." levels, control characters or over 120 characters are refused. Returns how many moved."""
        return studio.move(ids, folder)

    gr.api(asset, api_name="asset")
    gr.api(tag, api_name="tag", concurrency_id="ingest", concurrency_limit=1)
    gr.api(move, api_name="move", concurrency_id="ingest", concurrency_limit=1)

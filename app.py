"""Banana Studio web app: ``python app.py [--host H] [--port P] [--share] [--auth user:password | --users FILE]``.

Only wiring lives here and in ``ui/``; everything the buttons do is in ``rag``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

import gradio as gr

from rag.campaigns import poll_forever
from rag.core import BananaError, Settings
from rag.store import BackupSchedule
from rag.studio import Studio
from rag.users import Accounts
from ui import asset as asset_ui
from ui import campaign as campaign_tab
from ui import generate as generate_tab
from ui import history as history_tab
from ui import library as library_tab
from ui import reviews as reviews_ui
from ui import search as search_tab
from ui.auth import sign_in_options, signed_in_html
from ui.common import chain
from ui.review_page import with_review_pages

ZIP_FACTOR = 10  # a .zip may be this many times the per-image limit

CSS = """
#banana-title h1 { margin: 0; font-size: 1.6rem; }
#banana-title p { margin: 2px 0 0; }
/* The asset page opens over whatever tab is showing, as a modal. */
#asset-page { position: fixed; top: 3vh; left: 3vw; width: 94vw; max-height: 94vh; box-sizing: border-box;
  z-index: 1000; overflow-y: auto; flex-wrap: nowrap; padding: 16px 20px; background: var(--background-fill-primary);
  border-radius: 12px; box-shadow: 0 0 0 100vmax rgba(0, 0, 0, .45); }
#asset-page > * { flex-shrink: 0; }
#asset-title h3 { margin: 0; overflow-wrap: anywhere; }
#asset-status p { margin: 0; }
.field-row { align-items: flex-end; }
.field-row > button { flex-grow: 0; align-self: flex-end; margin-bottom: 6px; }
/* The reference tray stays in view above the search results. */
#reference-tray { position: sticky; top: 0; z-index: 20; background: var(--background-fill-primary);
  border-bottom: 1px solid var(--border-color-primary); padding: 4px 0; }
/* Grids grow with the page instead of scrolling inside a box; result captions wrap instead of being cut. */
#library-grid .grid-wrap, #search-results .grid-wrap, #trash-grid .grid-wrap { max-height: none !important; height: auto !important; }
/* A gallery's floating label no longer covers the top of its thumbnails (the reference strips). */
.block:has(> label[data-testid="block-label"]) .gallery-container .grid-container { padding-top: 34px; }
/* The grid and search results: the whole picture, its caption under it, never over it. */
#search-results button.thumbnail-item, #library-grid button.thumbnail-item { display: flex; flex-direction: column;
  aspect-ratio: auto; height: auto; }
#search-results button.thumbnail-item img, #library-grid button.thumbnail-item img { width: 100%; height: 130px;
  flex: none; object-fit: contain; }
#search-results .caption-label, #library-grid .caption-label { position: static; transform: none; max-width: none; width: 100%; box-sizing: border-box;
  border: 0; box-shadow: none; background: none; text-align: left; padding: 2px 4px; white-space: normal; overflow: visible;
  text-overflow: clip; overflow-wrap: anywhere; font-size: 12px; line-height: 1.25; }
#banana-header { align-items: baseline; }
#signed-in { text-align: right; flex-grow: 0 !important; min-width: max-content !important; }
#banana-title .prose { display: flex; flex-wrap: wrap; align-items: baseline; column-gap: 16px; }
@media (max-width: 640px) {
  #asset-page { top: 0; left: 0; width: 100vw; max-height: 100vh; border-radius: 0; padding: 10px; }
  #library-grid .grid-container, #trash-grid .grid-container { grid-template-columns: repeat(3, minmax(0, 1fr)) !important; }
  #search-results .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
  #library-filters > * { min-width: 45% !important; flex: 1 1 45% !important; }
  #library-upload { height: 110px !important; }
  #reference-tray { flex-wrap: wrap; align-items: center; }
  #reference-tray > #tray-text { flex: 1 1 100% !important; min-width: 100% !important; }
  #reference-tray > button { flex: 1 1 40% !important; }
}
"""


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Banana Studio") as demo:
        with gr.Row(elem_id="banana-header"):
            gr.Markdown("# Banana Studio\nSearch your image library, pick references, generate with Nano Banana.",
                        elem_id="banana-title")
            who = gr.HTML(elem_id="signed-in", js_on_load=None)
        demo.load(signed_in_html, None, who, api_name=False, queue=False)
        selected = gr.State([])
        page = asset_ui.render()
        with gr.Tabs() as tabs:
            with gr.Tab("Library", id="library") as library_tab_ui:
                library = library_tab.build(studio)
            with gr.Tab("Search", id="search") as search_tab_ui:
                search = search_tab.build(studio, selected)
            with gr.Tab("Generate", id="generate") as generate_tab_ui:
                generate = generate_tab.build(studio, selected, search.controls)
                recent = asset_ui.render_recent()
            with gr.Tab("Campaigns", id="campaigns") as campaign_tab_ui:
                campaigns = campaign_tab.build(studio, selected, library.table.marked)
            with gr.Tab("History", id="history") as history_tab_ui:
                history = history_tab.build(studio)
        show_refs, refs_in, refs_out = generate["show_refs"]
        search.to_generate.click(show_refs, refs_in, refs_out, api_name=False, queue=False).then(
            lambda: gr.Tabs(selected="generate"), None, tabs, api_name=False, queue=False
        )
        generate_tab_ui.select(show_refs, refs_in, refs_out, api_name=False, queue=False)
        for trigger in (demo.load, generate_tab_ui.select):
            trigger(*generate["refresh_sessions"], api_name=False, queue=False)
        history_tab_ui.select(*history["load"], api_name=False, queue=False)
        campaign_tab_ui.select(*campaigns["load"], api_name=False, queue=False)
        _wire_asset_page(studio, demo, page, tabs, selected, library, search, generate, recent)
        generate_tab_ui.select(*recent.show, api_name=False)
        for trigger in (demo.load, library_tab_ui.select):  # the grid shows what was saved or moved elsewhere
            chain(trigger(*library.show, api_name=False), [library.fill])
        for trigger in (demo.load, search_tab_ui.select):
            trigger(*search.folder_choices, api_name=False, queue=False)
        asset_ui.api(studio)
        reviews_ui.api(studio)
    # Gradio 6.31 rebuilds the "View API" page's latency figures, a pandas table of up to 10,000 past events, after
    # every event (GRADIO_ANALYTICS_CACHE_FREQUENCY defaults to 1): 19-30 ms of CPU per click here, more than a
    # search. Its author meant every 10 and left the variable undocumented (gradio PR 11764); every 100 is plenty.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    demo.queue(default_concurrency_limit=2, max_size=studio.settings.max_queue)
    return demo


def _wire_asset_page(studio: Studio, demo: gr.Blocks, page: Any, tabs: gr.Tabs, selected: gr.State, library: Any,
                     search: Any, generate: dict[str, Any], recent: Any) -> None:
    """Open the asset page from every gallery, and wire its actions that reach into other tabs."""
    for gallery, ids in ((library.grid, library.grid_ids), (search.results, search.result_ids),
                         (search.picked, selected), (recent.gallery, recent.ids)):
        gallery.select(*asset_ui.opener(studio, page, ids, selected), api_name=False)
    asset_ui.listen(studio, page, selected, library.after)
    close = (lambda: gr.Column(visible=False), None, page.panel)
    to_tab = {name: (lambda name=name: gr.Tabs(selected=name), None, tabs) for name in ("search", "generate")}
    like_fn, _, like_out = search.like
    chain(page.like.click(like_fn, [page.current, search.controls["k"], selected], like_out, api_name=False,
                          concurrency_id="search"), [close, to_tab["search"]], success=True)
    pick = lambda asset_id, chosen: asset_ui.toggle_reference(studio, asset_id, chosen)  # noqa: E731
    chain(page.pick.click(pick, [page.current, selected], [selected, page.pick, page.status], api_name=False, queue=False),
          [search.refresh_picked])
    edit_fn, edit_out = generate["edit_asset"]  # "Edit this": a refine session whose first version is this image
    chain(page.edit.click(edit_fn, [page.current], edit_out, api_name=False), [close, to_tab["generate"]], success=True)
    recent.show = (lambda: asset_ui.recent_view(studio), None, [recent.gallery, recent.ids, recent.md])
    for save in (b for b in demo.blocks.values() if getattr(b, "elem_id", None) in ("save-generated", "save-session")):
        save.click(*recent.show, api_name=False, concurrency_id="ingest", concurrency_limit=1)  # list what was saved


def launch_options(settings: Settings, studio: Studio | None = None) -> dict[str, Any]:
    """What ``launch()`` needs besides host and port: the folders it may serve, the upload limit, sign-in, and
    (given the studio) the review page's routes at /review/<token>.

    The app and the tests both launch with these, so the security tests test the real settings.
    """
    sign_in = sign_in_options(Accounts.from_settings(settings))  # a bad users file stops here, before any change
    for folder in settings.served_dirs:
        folder.mkdir(parents=True, exist_ok=True)
    # uvicorn believes X-Forwarded-For from these addresses (its default: 127.0.0.1, so any local client could
    # pick the address the sign-in throttle counts); Gradio passes no setting for it, only this variable.
    os.environ["FORWARDED_ALLOW_IPS"] = settings.trusted_proxies
    return with_review_pages({
        "allowed_paths": [str(folder) for folder in settings.served_dirs],
        "max_file_size": f"{int(settings.max_upload_mb * ZIP_FACTOR)}mb",  # images are checked again, per file
        "css": CSS,
        "head": library_tab.size_guard(settings.max_upload_mb) + asset_ui.ESCAPE_CLOSES,
        "footer_links": ["api"],
        **sign_in,
    }, studio)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except BananaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(description="Banana Studio web app")
    parser.add_argument("--host", default=settings.host, help="address to listen on (BANANA_HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help="port (BANANA_PORT)")
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (needs --auth)")
    parser.add_argument("--share-public", action="store_true", help="allow --share without auth (anyone with the link gets in)")
    parser.add_argument("--auth", default=settings.auth, help="user:password (or set BANANA_AUTH)")
    parser.add_argument("--users", default=settings.users_file, metavar="FILE",
                        help="one user:password per line; each user's sessions and history are theirs (BANANA_USERS_FILE)")
    args = parser.parse_args(argv)
    settings = settings.with_(auth=args.auth or "", users_file=args.users or "")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("rag", "banana"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        options = launch_options(settings)
    except BananaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.share and "auth" not in options and not args.share_public:
        print("Refusing --share without --auth: anyone with the link could read and change your library. "
              "Add --auth user:password or --users FILE, or --share-public if you really mean it.", file=sys.stderr)
        return 2
    try:
        studio = Studio(settings)
        studio.count()  # open the database now, so a bad MILVUS_URI fails here, in plain words
    except BananaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    threading.Thread(target=studio.warm_up, name="warm-up", daemon=True).start()
    studio.ocr.start()  # reads the text in pictures not read yet, then each ingest's new ones, in the background
    threading.Thread(target=studio.library_page, name="library-index", daemon=True).start()  # the grid's first page
    BackupSchedule(settings, studio.export).start()
    threading.Thread(target=poll_forever, args=(studio.poll_batches, settings.campaign_poll_s), name="batch-poll",
                     daemon=True).start()  # campaigns in Batch mode: their results land when they come
    demo = build_app(studio)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_options(settings, studio))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

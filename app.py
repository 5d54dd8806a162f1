"""Banana Studio web app: ``python app.py [--host H] [--port P] [--share] [--auth user:password]``.

Only wiring lives here and in ``ui/``; everything the buttons do is in ``rag``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any

import gradio as gr

from rag.backup import BackupSchedule
from rag.config import Settings
from rag.errors import BananaError
from rag.studio import Studio
from ui import generate as generate_tab
from ui import history as history_tab
from ui import library as library_tab
from ui import search as search_tab

ZIP_FACTOR = 10  # a .zip may be this many times the per-image limit

CSS = """
#banana-title h1 { margin-bottom: 0; }
"""


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Banana Studio") as demo:
        gr.Markdown("# Banana Studio\nSearch your image library, pick references, generate with Nano Banana.", elem_id="banana-title")
        selected = gr.State([])
        with gr.Tabs() as tabs:
            with gr.Tab("Library", id="library"):
                library = library_tab.build(studio)
            with gr.Tab("Search", id="search") as search_tab_ui:
                search = search_tab.build(studio, selected)
            with gr.Tab("Generate", id="generate") as generate_tab_ui:
                generate = generate_tab.build(studio, selected)
            with gr.Tab("History", id="history") as history_tab_ui:
                history = history_tab.build(studio)
        show_refs, refs_in, refs_out = generate["show_refs"]
        search["to_generate"].click(show_refs, refs_in, refs_out, api_name=False, queue=False).then(
            lambda: gr.Tabs(selected="generate"), None, tabs, api_name=False, queue=False
        )
        generate_tab_ui.select(show_refs, refs_in, refs_out, api_name=False, queue=False)
        for trigger in (demo.load, generate_tab_ui.select):
            trigger(*generate["refresh_sessions"], api_name=False, queue=False)
        history_tab_ui.select(*history["load"], api_name=False, queue=False)
        load_fn, load_in, load_out = library["load"]
        demo.load(load_fn, load_in, load_out, api_name=False)
        for trigger in (demo.load, search_tab_ui.select):
            trigger(*search["folders"], api_name=False, queue=False)
    demo.queue(default_concurrency_limit=2, max_size=studio.settings.max_queue)
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth / BANANA_AUTH must look like user:password")
    return user, password


def launch_options(settings: Settings) -> dict[str, Any]:
    """What ``launch()`` needs besides host, port and auth: the folders it may serve and the upload limit.

    The app and the tests both launch with these, so the security tests test the real settings.
    """
    for folder in settings.served_dirs:
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "allowed_paths": [str(folder) for folder in settings.served_dirs],
        "max_file_size": f"{int(settings.max_upload_mb * ZIP_FACTOR)}mb",  # images are checked again, per file
        "css": CSS,
        "footer_links": ["api"],
    }


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("rag", "banana"):
        logging.getLogger(name).setLevel(logging.INFO)
    auth = parse_auth(args.auth)
    if args.share and not auth and not args.share_public:
        print("Refusing --share without --auth: anyone with the link could read and change your library. "
              "Add --auth user:password, or --share-public if you really mean it.", file=sys.stderr)
        return 2
    try:
        studio = Studio(settings)
        studio.count()  # open the database now, so a bad MILVUS_URI fails here, in plain words
    except BananaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    threading.Thread(target=studio.embedder.warm_up, name="warm-up", daemon=True).start()
    BackupSchedule(settings, studio.export).start()
    demo = build_app(studio)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth, **launch_options(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Launching the real app on a free loopback port inside a test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from app import build_app, launch_options
from rag.studio import Studio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(studio: Studio, **launch: object) -> Iterator[str]:
    """The app served on 127.0.0.1; yields its URL and closes it afterwards."""
    studio.store.warm_up()  # as app.py does at start (there in the background)
    demo = build_app(studio)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **(launch_options(studio.settings, studio) | launch),
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()

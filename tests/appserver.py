"""Launching the real app on a free loopback port inside a test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from app import build_app
from rag.studio import Studio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(studio: Studio, **launch: object) -> Iterator[str]:
    """The app served on 127.0.0.1; yields its URL and closes it afterwards."""
    s = studio.settings
    for folder in (s.library_dir, s.outputs_dir, s.data_dir / "thumbs"):
        folder.mkdir(parents=True, exist_ok=True)
    demo = build_app(studio)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(s.library_dir), str(s.outputs_dir), str(s.data_dir / "thumbs")],
        **launch,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()

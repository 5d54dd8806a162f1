"""The ``ocr`` command: read the text printed in the library's pictures, so word search finds it.

The app reads new images in the background; this back-fills a library indexed before, or a folder of it,
with a progress bar. Each picture read is marked in its record, so a run stopped part-way (Ctrl+C) resumes
where it ended; ``--redo`` reads every picture again (a new engine, a changed setting).
"""

from __future__ import annotations

import argparse

from rag.cli.common import EXIT_ERROR, EXIT_OK, Add, print_json, progress_bar
from rag.studio import Studio


def cmd_ocr(studio: Studio, args: argparse.Namespace) -> int:
    progress = None if args.json or args.quiet else progress_bar("reading text")
    report = studio.ocr.read(folder=args.folder or "", redo=args.redo,
                             progress=progress)
    if args.json:
        print_json(report.to_dict() | {"library": studio.ocr.stats()})
    else:
        print(report.summary() if report.total else "Every picture has been read already (--redo reads them again).")
        for path, reason in report.failed:
            print(f"  not read: {path}: {reason}")
    return EXIT_ERROR if report.failed else EXIT_OK


def add_ocr_commands(add: Add) -> None:
    """Register ``ocr``."""
    p = add("ocr", cmd_ocr, "read the text printed in the pictures (word search finds it); resumes where it stopped")
    p.add_argument("--folder", default="", help="only this folder and its subfolders")
    p.add_argument("--redo", action="store_true", help="read every picture again, not only those never read")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

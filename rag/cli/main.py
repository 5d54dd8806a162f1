"""Command line: ``python -m rag ingest|search|stats|generate|refine|edit|history|sessions|campaign|campaigns|delete|export|import|reindex|caption|ocr ...``.

Exit codes: 0 success, 1 a user-facing error (or, for ingest, at least one file failed), 2 usage.
``--json`` prints one JSON document on stdout for scripts; humans get a short table.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence

from rag.cli.campaigns import add_campaign_commands
from rag.cli.common import EXIT_ERROR, Command, print_json
from rag.cli.credentials import add_credentials_commands
from rag.cli.library import add_library_commands
from rag.cli.ocr import add_ocr_commands
from rag.cli.region import add_region_commands
from rag.cli.reviews import add_review_commands
from rag.cli.sessions import add_generation_commands
from rag.core import BananaError, Settings
from rag.studio import Studio


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description="Banana Studio: index, search and generate images.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        p.set_defaults(func=fn)
        return p

    for register in (add_library_commands, add_generation_commands, add_region_commands, add_campaign_commands,
                     add_review_commands, add_credentials_commands, add_ocr_commands):
        register(add)
    return parser


def _fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        print_json({"error": message})
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         make_studio: Callable[[Settings], Studio] | None = None) -> int:
    """Run one command and return its exit code (``python -m rag`` exits with it).

    ``argv`` defaults to ``sys.argv[1:]`` and ``environ`` to ``os.environ`` (read by :meth:`Settings.from_env`);
    ``make_studio`` builds the Studio from those settings (default ``Studio(settings)``), so a caller running
    commands in-process (the tests) can hand over a model it already loaded. Usage errors raise ``SystemExit(2)``
    as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    studio: Studio | None = None
    try:
        studio = (make_studio or Studio)(Settings.from_env(environ))
        return int(args.func(studio, args))
    except BananaError as exc:  # a terminal user is the one who can change the setting: name it
        return _fail(args, f"{exc} (The setting: {exc.setting}.)" if exc.setting else str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback with --verbose
        if args.verbose:
            logging.getLogger("rag.cli.main").exception("unexpected error")
        return _fail(args, f"unexpected {type(exc).__name__}: {exc}. Run with --verbose for the details.")
    finally:
        if studio is not None:
            try:
                studio.close()
            except BananaError as exc:
                logging.getLogger("rag.cli.main").debug("closing the library failed: %s", exc)

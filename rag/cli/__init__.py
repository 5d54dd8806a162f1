"""The command line, ``python -m rag ...``: one sub-command per action of :class:`rag.studio.Studio`.

:mod:`rag.cli.main` builds the parser from what each command module registers (library, sessions,
campaigns); :mod:`rag.cli.common` holds what they share.
"""

from rag.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

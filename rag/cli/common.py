"""What every command shares: exit codes, JSON output, the progress bar, who ran it."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rag.studio import Studio

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

Command = Callable[[Studio, argparse.Namespace], int]
Add = Callable[[str, Command, str], argparse.ArgumentParser]
"""How a command module registers a sub-command: ``add(name, function, help)`` gives its parser."""


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def progress_bar(total_hint: str) -> Callable[[int, int, str], None]:
    from tqdm import tqdm

    bar: list[Any] = []

    def update(done: int, total: int, _message: str) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="img", desc=total_hint, file=sys.stderr))
        bar[0].n = done
        bar[0].refresh()
        if done >= total:
            bar[0].close()

    return update


def cli_user() -> str:
    """Who History says ran a command: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))

"""Backups of the library index, and restoring one when the database is damaged.

A backup is an export (:mod:`rag.store.transfer`: every record with its vector, one Parquet file), so a
restore needs no re-embedding. ``BACKUP_EVERY_HOURS`` makes the app write one on that schedule,
keeping the newest few; ``python -m rag export FILE`` writes one by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rag.core import Settings

log = logging.getLogger(__name__)

KEEP = 3  # scheduled backups kept; older ones are removed after a new one is complete
PATTERN = "library-*.parquet"
CHECK_EVERY_S = 600.0


def backups(settings: Settings) -> list[Path]:
    """Scheduled backups, newest first."""
    folder = settings.backups_dir
    return sorted(folder.glob(PATTERN), reverse=True) if folder.is_dir() else []


def due(settings: Settings, now: float | None = None) -> bool:
    """Whether the schedule asks for a backup now (never when BACKUP_EVERY_HOURS is 0)."""
    if settings.backup_every_hours <= 0:
        return False
    found = backups(settings)
    now = time.time() if now is None else now
    return not found or now - found[0].stat().st_mtime >= settings.backup_every_hours * 3600


def write_backup(settings: Settings, export: Callable[[Path], int]) -> Path:
    """Export into the backups folder under a dated name, then drop all but the newest ``KEEP``."""
    settings.backups_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sortable; two backups in one second differ
    target = settings.backups_dir / f"library-{stamp}.parquet"
    n = export(target)
    for old in backups(settings)[KEEP:]:
        old.unlink(missing_ok=True)
    log.info("backed up %d records to %s", n, target)
    return target


def damaged_message(where: str, problems: list[str], settings: Settings) -> str:
    """What is damaged and how to get the library back, in words."""
    what = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    found = backups(settings)
    if found:
        how = (f"Restore the newest backup ({found[0].name}) with `python -m rag restore`: it moves the damaged "
               f"database aside (nothing is deleted) and imports the backup.")
    else:
        how = (f"No scheduled backup is in {settings.backups_dir}. If you exported the library "
               "(`python -m rag export FILE`), restore it with `python -m rag restore FILE`; otherwise move the "
               "damaged database aside and index your images again.")
    return f"The library database at {where} is damaged: {what}. Your image files are not affected. {how}"


class BackupSchedule:
    """Writes a backup whenever one is due, in a daemon thread: it runs as long as the app does."""

    def __init__(self, settings: Settings, export: Callable[[Path], int]) -> None:
        self.settings, self.export = settings, export

    def start(self) -> BackupSchedule:
        """Start the thread (none when BACKUP_EVERY_HOURS is 0)."""
        if self.settings.backup_every_hours > 0:
            threading.Thread(target=self._run, name="backups", daemon=True).start()
        return self

    def _run(self) -> None:
        while True:
            if due(self.settings):
                try:
                    write_backup(self.settings, self.export)
                except Exception as exc:  # noqa: BLE001 - a failed backup must not stop the app; it is retried
                    log.error("the scheduled backup failed: %s", exc)
            time.sleep(min(CHECK_EVERY_S, self.settings.backup_every_hours * 3600))

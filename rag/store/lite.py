"""What Milvus Lite needs that a Milvus server does not.

Milvus Lite runs inside this process, so its quirks are this process's problem: a flush that a
crash interrupted, NumPy threads that starve the CLIP model, an environment variable pymilvus
misreads, and a harmless error it logs. :class:`rag.store.connection.MilvusConnection` calls these when it
opens a database.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

STORE_LOG = "rag.store.milvus"  # the store's logger: at DEBUG it shows failures in full, pymilvus' tracebacks too


class _QuietLite(logging.Filter):
    """Milvus Lite lacks a timestamp call that pymilvus tries first; both sides log the harmless miss."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "mvccTs" not in text and "Method not implemented" not in text


class _OursToReport(logging.Filter):
    """pymilvus logs every failed call with a traceback; the store reports each one as a sentence
    (:class:`rag.core.errors.StoreError`), so the traceback shows only when the store logs at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger(STORE_LOG).isEnabledFor(logging.DEBUG)


_QUIET = _QuietLite()
_REPORTED = _OursToReport()


def quiet_logs() -> None:
    """Hide the harmless miss and the tracebacks we report ourselves (idempotent)."""
    for name, quiet in (("pymilvus.client.iterator.query_iterator", _QUIET), ("grpc._server", _REPORTED),
                        ("pymilvus.decorators", _REPORTED)):
        logger = logging.getLogger(name)
        if quiet not in logger.filters:
            logger.addFilter(quiet)


_WAL_NAME = re.compile(r"wal_(?:data|delta)_(\d+)\.arrow")


def discard_flushed_wal(db_dir: str | Path) -> list[Path]:
    """Remove Milvus Lite write-ahead logs that a committed flush already covers; the ones removed.

    Milvus Lite flushes by writing Parquet files, committing its manifest (which then names the
    next log, ``active_wal_number``), and only then deleting the old log. A process killed between
    the last two steps leaves a log whose rows are also in the files; Milvus Lite 3.x replays it on
    the next open, so every row of that flush is counted and found twice, and its next flush makes
    the duplicates permanent. Deleting exactly those logs (numbered below the manifest's active
    one) is what the interrupted flush would have done. Does nothing unless this process can take
    the database's lock, so a database in use is never touched.
    """
    root = Path(db_dir)
    manifests = [c / "manifest.json" for c in _collections(root) if (c / "manifest.json").is_file()]
    if not manifests:
        return []
    removed: list[Path] = []
    with _locked(root) as ours:
        if not ours:
            return []  # open elsewhere (or no lock file); its owner keeps it consistent
        for manifest in manifests:
            try:
                active = int(json.loads(manifest.read_text(encoding="utf-8"))["active_wal_number"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for log_file in sorted((manifest.parent / "wal").glob("wal_*.arrow")):
                match = _WAL_NAME.fullmatch(log_file.name)
                if match and int(match.group(1)) < active:
                    log_file.unlink(missing_ok=True)
                    removed.append(log_file)
    if removed:
        log.warning("removed %d already-flushed Milvus Lite log file(s) left by an interrupted flush", len(removed))
    return removed


def _collections(root: Path) -> list[Path]:
    """The collection folders of a Lite database (default database and named ones)."""
    return [c for c in [*root.glob("collections/*"), *root.glob("databases/*/collections/*")] if c.is_dir()]


@contextmanager
def _locked(root: Path) -> Iterator[bool | None]:
    """Try to take the database's lock without waiting: yields whether this process got it
    (released on exit), or None where it cannot tell (no lock file, no flock on Windows)."""
    try:
        import fcntl
    except ImportError:
        yield None
        return
    if not (root / "LOCK").is_file():
        yield None
        return
    fd = os.open(root / "LOCK", os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def single_threaded_blas() -> None:
    """One OpenBLAS thread for this process (Milvus Lite only: it runs NumPy in-process).

    Lite's FLAT search is a NumPy matrix product over every stored vector. OpenBLAS's worker
    threads then spin for ~0.1 s, starving the CLIP encoder on a small CPU: a text query encoded
    right after a Lite FLAT search took 440 ms instead of ~30 ms (bench/query.py, 10k vectors,
    2 cores). One thread makes that product ~3 ms slower at 100k vectors. threadpoolctl finds whichever
    BLAS NumPy loaded.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def import_pymilvus() -> None:
    """Import pymilvus with a Milvus Lite path in $MILVUS_URI hidden from it.

    pymilvus reads $MILVUS_URI when imported and raises ``Illegal uri`` unless it is an address
    (``http://...``), so ``MILVUS_URI=data/milvus.db`` broke every command. The store passes the URI
    explicitly, so pymilvus has no use for the variable.
    """
    import sys

    if "pymilvus" in sys.modules:
        return
    value = os.environ.get("MILVUS_URI")
    hide = value is not None and "://" not in value
    if hide:
        del os.environ["MILVUS_URI"]
    try:
        import pymilvus  # noqa: F401
    finally:
        if hide:
            os.environ["MILVUS_URI"] = value


def held_elsewhere(db_dir: str | Path) -> bool:
    """True when another process holds this Milvus Lite database (Lite allows one at a time).

    Asked before opening, so the user gets a sentence instead of Lite's logged traceback. A
    database this process already opened is never "elsewhere": Lite shares it within a process.
    """
    root = Path(db_dir).expanduser()
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return False
    if os.path.abspath(root) in getattr(server_manager_instance, "_servers", {}):
        return False
    with _locked(root) as ours:
        return ours is False


def in_use_message(db_dir: str | Path) -> str:
    return (
        f"The library at {db_dir} is open in another program, probably the Banana Studio app: Milvus "
        "Lite lets one program use a library at a time. Add the images from the app's Library tab, "
        "stop the app and run this again, or share one library between programs with a Milvus "
        "server (set MILVUS_URI=http://host:19530; see README, 'Beyond one machine')."
    )


def damage(db_dir: str | Path) -> list[str]:
    """What is missing or broken in a Milvus Lite database, in words (empty when it looks whole).

    Lite either fails on these with a bare error or, for a lost manifest, silently falls back to an
    older one and shows an emptier library; checked before opening, so the user hears what is wrong.
    """
    root = Path(db_dir).expanduser()
    problems: list[str] = []
    for coll in _collections(root):
        if not (coll / "schema.json").is_file():
            problems.append(f"{coll.name}/schema.json is missing")
        try:
            manifest = json.loads((coll / "manifest.json").read_text(encoding="utf-8"))
            partitions = dict(manifest["partitions"])
        except FileNotFoundError:
            problems.append(f"{coll.name}/manifest.json is missing")
            continue
        except (OSError, ValueError, KeyError, TypeError):
            problems.append(f"{coll.name}/manifest.json is damaged")
            continue
        for name, part in partitions.items():
            for rel in [*part.get("data_files", []), *part.get("delta_files", [])]:
                problem = _parquet_problem(coll / "partitions" / name / rel)
                if problem:
                    problems.append(f"{coll.name}/{rel} {problem}")
    return problems


def _parquet_problem(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-4, os.SEEK_END)
            tail = fh.read(4)
    except FileNotFoundError:
        return "is missing"
    except OSError:
        return "is truncated or unreadable"
    return "" if head == tail == b"PAR1" else "is truncated or damaged"

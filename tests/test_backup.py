"""A damaged library says what is damaged and how to restore it; backups bring it back unchanged."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rag.core import Settings
from rag.store import backup
from rag.studio import Studio
from tests.conftest import SAMPLE, CliRun, cli_environ


@pytest.fixture
def run(cli):
    """``python -m rag ARGS`` in this process (the ``cli`` fixture, tests/conftest.py: the session's model), and
    then what the end of a process would do: this process's Milvus Lite server for the library stops, so the
    next command reads the files from disk (damaged, restored) as a new process would. A process per command
    added only its start: importing torch and building CLIP, seconds each, nine commands here."""

    from milvus_lite import server_manager_instance

    def run(args: list[str], data_dir: Path) -> CliRun:
        try:
            return cli(args, data_dir)
        finally:
            server_manager_instance.release_server(Settings.from_env(cli_environ(data_dir)).milvus_uri)

    return run


def test_scheduled_backups_rotate_and_come_due(studio: Studio) -> None:
    studio.ingest_folder(SAMPLE / "food")
    assert not backup.due(studio.settings)  # BACKUP_EVERY_HOURS=0: never
    studio.settings = studio.settings.with_(backup_every_hours=1.0)
    assert backup.due(studio.settings)  # none yet
    made = [studio.backup() for _ in range(backup.KEEP + 1)]
    kept = backup.backups(studio.settings)
    assert kept == sorted(made[1:], reverse=True)  # the oldest is gone, newest first
    assert not backup.due(studio.settings)
    old = time.time() - 2 * 3600
    os.utime(kept[0], (old, old))
    assert backup.due(studio.settings)


def _data_files(db: Path) -> list[Path]:
    return sorted(db.glob("collections/*/partitions/*/data/*.parquet"))


def test_a_damaged_library_says_so_and_restores_from_its_backup(tmp_path: Path, run) -> None:
    assert run(["ingest", str(SAMPLE / "food")], tmp_path).returncode == 0
    before = json.loads(run(["search", "a bowl of soup", "-k", "5", "--json"], tmp_path).stdout)["results"]
    made = run(["backup", "--json"], tmp_path)
    assert made.returncode == 0, made.stderr
    name = Path(json.loads(made.stdout)["backup"]).name

    (damaged,) = _data_files(tmp_path / "milvus.db")
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = run(["stats"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "is damaged: banana_assets/data/" in result.stderr and "truncated or damaged" in result.stderr
    assert "python -m rag restore" in result.stderr and name in result.stderr

    restored = run(["restore", "--json"], tmp_path)
    assert restored.returncode == 0, restored.stderr
    out = json.loads(restored.stdout)
    assert out["restored"] == len(before) + 3 and Path(out["moved_aside"]).is_dir()  # food holds 8 images
    after = json.loads(run(["search", "a bowl of soup", "-k", "5", "--json"], tmp_path).stdout)["results"]
    assert [(r["id"], round(r["score"], 5)) for r in after] == [(r["id"], round(r["score"], 5)) for r in before]


def test_a_lost_manifest_is_not_an_empty_library(tmp_path: Path, run) -> None:
    assert run(["ingest", str(SAMPLE / "food")], tmp_path).returncode == 0
    (manifest,) = (tmp_path / "milvus.db").glob("collections/*/manifest.json")
    manifest.unlink()  # Lite would quietly load manifest.json.prev: the library before its last flush
    result = run(["stats"], tmp_path)
    assert result.returncode == 1 and "banana_assets/manifest.json is missing" in result.stderr
    assert "No scheduled backup" in result.stderr and "Traceback" not in result.stderr

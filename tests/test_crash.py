"""Crash safety: an ingest killed with SIGKILL part-way leaves a library that the next run completes.

Each test runs a real ingest in a child process (weightless CLIP, Milvus Lite in a temporary
folder), kills it with SIGKILL once it has stored something, then reopens the same database in
this process: re-ingesting ends with exactly one record per unique image, no stray files, and
search works.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.core import Asset
from rag.studio import Studio
from tests.conftest import ROOT, test_settings

N_IMAGES = 24
BATCH = 4


def make_images(folder: Path, n: int = N_IMAGES) -> list[Path]:
    """``n`` distinct PNGs plus one byte-identical copy (so unique images = n)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(pixels).resize((96, 72), Image.Resampling.NEAREST).save(path)
        paths.append(path)
    copy = folder / "zz_copy_of_first.png"
    copy.write_bytes(paths[0].read_bytes())
    return paths + [copy]


def child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CLIP_PRETRAINED="none", BANANA_DATA_DIR=str(data_dir), EMBED_BATCH_SIZE=str(BATCH), EMBED_WORKERS="2",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


class Watched:
    """A child process whose output is read in the background, so it can be killed at a chosen moment."""

    def __init__(self, args: list[str], env: dict[str, str], stream: str) -> None:
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.text = ""
        pipe = self.proc.stderr if stream == "stderr" else self.proc.stdout
        other = self.proc.stdout if stream == "stderr" else self.proc.stderr
        self._threads = [threading.Thread(target=self._read, args=(pipe, True), daemon=True),
                         threading.Thread(target=self._read, args=(other, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, pipe, keep: bool) -> None:
        while chunk := os.read(pipe.fileno(), 4096):
            if keep:
                self.text += chunk.decode("utf-8", "replace")

    def progress(self) -> tuple[int, int]:
        found = re.findall(r"(\d+)/(\d+)", self.text)
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def kill_after(self, done: int, timeout: float = 90) -> tuple[int, int]:
        """SIGKILL once ``done`` images are reported stored; returns the progress seen at that moment."""
        deadline = time.monotonic() + timeout
        while self.progress()[0] < done:
            assert self.proc.poll() is None, f"child ended early ({self.proc.returncode}): {self.text[-2000:]}"
            assert time.monotonic() < deadline, f"no progress: {self.text[-2000:]}"
            time.sleep(0.02)
        seen = self.progress()
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL
        for t in self._threads:
            t.join(timeout=5)
        return seen


def shut(studio: Studio) -> None:
    """Close the store and stop this process's Milvus Lite server for it, as a process exit would."""
    from milvus_lite import server_manager_instance

    studio.store.close()
    server_manager_instance.release_server(studio.settings.milvus_uri)


def assert_one_record_per_image(studio: Studio, images: list[Path]) -> list[Asset]:
    unique = {hashlib.sha256(p.read_bytes()).hexdigest() for p in images}
    ids = [row["id"] for page in studio.store.iter_records() for row in page]
    assert len(ids) == len(set(ids)) == studio.count() == len(unique)
    assert set(ids) == unique
    probe = images[5]
    hits = studio.search(image=probe, k=5)
    assert hits[0].asset.id == hashlib.sha256(probe.read_bytes()).hexdigest() and hits[0].score > 0.999
    assert len({h.asset.id for h in hits}) == 5  # no record comes back twice
    return studio.get(sorted(unique))


def test_cli_folder_ingest_killed_midway_then_resumed(tmp_path: Path, embedder) -> None:
    images = make_images(tmp_path / "lib")
    data = tmp_path / "data"
    child = Watched([sys.executable, "-m", "rag", "ingest", str(tmp_path / "lib")], child_env(data), "stderr")
    done, total = child.kill_after(2 * BATCH)
    assert total == len(images) and done < total, "the ingest finished before it could be killed"

    studio = Studio(test_settings(data, batch_size=BATCH), embedder=embedder)
    try:
        survived = studio.count()
        assert survived >= 2 * BATCH  # what was reported stored before the kill is still there
        report = studio.ingest_folder(tmp_path / "lib")
        assert not report.failed and report.seen == len(images)
        assert len(report.added) == N_IMAGES - survived and len(report.duplicates) == survived + 1
        assets = assert_one_record_per_image(studio, images)
        assert all(Path(a.path).is_file() and a.source == "folder" for a in assets)
    finally:
        shut(studio)


UPLOAD_SCRIPT = """
import sys
from pathlib import Path
from rag.studio import Studio
studio = Studio.from_env()
files = sorted(Path(sys.argv[1]).glob("*.png"))
studio.ingest_files(files, progress=lambda done, total, _m: print(f"stored {done}/{total}", flush=True))
print("finished", flush=True)
"""


def test_upload_killed_midway_leaves_no_duplicates_or_strays(tmp_path: Path, embedder) -> None:
    images = make_images(tmp_path / "in")
    data = tmp_path / "data"
    child = Watched([sys.executable, "-c", UPLOAD_SCRIPT, str(tmp_path / "in")], child_env(data), "stdout")
    done, total = child.kill_after(2 * BATCH)
    assert done < total and "finished" not in child.text

    studio = Studio(test_settings(data, batch_size=BATCH), embedder=embedder)
    try:
        library = studio.settings.library_dir
        survived = studio.count()
        assert survived >= 2 * BATCH
        # Every record's file is in place (files are written before their records) ...
        assert all(Path(a.path).is_file() for page in studio.store.iter_records() for a in studio.get([r["id"] for r in page]))
        report = studio.ingest_files(images)
        assert not report.failed and len(report.added) == N_IMAGES - survived
        studio.remove_orphans()
        assets = assert_one_record_per_image(studio, images)
        # ... and after the clean-up the library holds exactly one file per record, each the right bytes.
        files = sorted(p.resolve() for p in library.rglob("*") if p.is_file())
        assert files == sorted(Path(a.path) for a in assets)
        assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.stem for p in files)
    finally:
        shut(studio)


FLUSH_CRASH_SCRIPT = """
import os, signal, sys
import numpy as np
from rag.core import Settings
from rag.store import MilvusStore
from rag.core import Asset
try:
    from milvus_lite.storage.wal import WAL
    WAL.close_and_delete
except (ImportError, AttributeError):
    sys.exit(3)  # another Milvus Lite: this crash point does not exist
store = MilvusStore(Settings.from_env(), 512, "ViT-B-32/none")
def assets(lo, hi):
    return [Asset(id=f"{i:064x}", path=f"/x/{i}.png", filename=f"{i}.png", folder="f", width=1, height=1,
                  format="PNG", bytes=1, created=0.0, source="folder") for i in range(lo, hi)]
rng = np.random.default_rng(0)
store.upsert(assets(0, 10), rng.standard_normal((10, 512)))
store.flush()
store.upsert(assets(10, 20), rng.standard_normal((10, 512)))
# Die exactly where a flush has committed its manifest but not yet deleted its write-ahead log.
WAL.close_and_delete = lambda self: os.kill(os.getpid(), signal.SIGKILL)
store.flush()
"""


def test_kill_between_flush_commit_and_log_cleanup_does_not_duplicate(tmp_path: Path, embedder) -> None:
    data = tmp_path / "data"
    run = subprocess.run([sys.executable, "-c", FLUSH_CRASH_SCRIPT], cwd=ROOT, env=child_env(data), capture_output=True, timeout=120)
    if run.returncode == 3:
        pytest.skip("this Milvus Lite has no such flush step")
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]

    for session in range(2):  # the first reopen recovers; a second one (after a clean exit) must agree
        studio = Studio(test_settings(data), embedder=embedder)
        try:
            ids = [row["id"] for page in studio.store.iter_records() for row in page]
            assert len(ids) == len(set(ids)) == studio.count() == 20, session
            hits = studio.store.search(np.ones(512, dtype=np.float32), 20)
            assert len({h.asset.id for h in hits}) == len(hits) == 20
            if session == 0:  # write and flush in the recovered session, as a re-ingest would
                vector = np.zeros((1, 512), dtype=np.float32)
                vector[0, 0] = 1
                studio.store.upsert([Asset(id="f" * 64, path="/x/new.png", filename="new.png", folder="f", width=1,
                                           height=1, format="PNG", bytes=1, created=0.0, source="folder")], vector)
                studio.store.delete([f"{3:064x}"])
                studio.store.flush()
                assert studio.count() == 20
        finally:
            shut(studio)


def test_reindex_killed_midway_leaves_the_old_collection_answering(tmp_path: Path, embedder, cli) -> None:
    """``reindex`` builds the new collection beside the old one: killed part-way, the old one still
    answers every search; run again, it finishes and swaps (one collection left, words on)."""
    images = make_images(tmp_path / "lib")
    data = tmp_path / "data"
    studio = Studio(test_settings(data, batch_size=BATCH), embedder=embedder)
    studio.ingest_folder(tmp_path / "lib")
    collection = studio.settings.collection
    shut(studio)

    args = [sys.executable, "-m", "rag", "reindex", "--re-embed", "--batch", "2"]
    done, total = Watched(args, child_env(data), "stderr").kill_after(4)
    assert total == N_IMAGES and done < total, "the reindex finished before it could be killed"
    studio = Studio(test_settings(data, batch_size=BATCH), embedder=embedder)
    try:
        assert collection in studio.store.client.list_collections()
        assert_one_record_per_image(studio, images)
    finally:
        shut(studio)

    # Run again to the end: in this process (the ``cli`` fixture, the session's model); only the kill needs a process.
    again = cli(["reindex", "--re-embed", "--batch", "2", "-q"], data, EMBED_BATCH_SIZE=str(BATCH), EMBED_WORKERS="2")
    assert again.returncode == 0 and f"Re-indexed: {N_IMAGES} re-embedded" in again.stdout, again.stderr[-2000:]
    studio = Studio(test_settings(data, batch_size=BATCH), embedder=embedder)
    try:
        assert studio.store.client.list_collections() == [collection]
        assert_one_record_per_image(studio, images)
        hits = studio.search("007", k=1)
        assert hits[0].asset.filename == "img_007.png" and hits[0].words
    finally:
        shut(studio)

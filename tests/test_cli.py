"""``python -m rag`` as a user runs it: exit codes and JSON output.

Most commands run in-process (``cli``, tests/conftest.py: :func:`rag.cli.main` with the session's model; a
process would spend ~10 s importing torch and building CLIP). Real processes stay where the process is the
point: the smoke test of ``python -m rag`` (its exit code, its JSON, the weightless-model notice on stderr)
and a library held by another process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m rag ARGS`` in a real process (tests that need one; others use the ``cli`` fixture)."""
    environ = {**os.environ, "CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, cli) -> Path:
    data = tmp_path_factory.mktemp("cli")
    result = cli(["ingest", str(SAMPLE), "--json"], data)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["added"]) >= 60 and report["failed"] == []
    return data


def test_python_m_rag_exits_nonzero_with_json_and_says_the_model_is_weightless(tmp_path: Path) -> None:
    """The one real ``python -m rag`` here: a file that fails makes the exit code 1 and the JSON says why,
    and CLIP_PRETRAINED=none is never silent (the notice is logged when the model is built)."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    good = sorted((SAMPLE / "plants").iterdir())[0]
    shutil.copy(good, pictures / good.name)
    (pictures / "bad.png").write_text("not an image")
    result = run(["ingest", str(pictures), "--json"], tmp_path / "data")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert len(report["added"]) == 1 and [f["reason"] for f in report["failed"]] == ["not a recognised image format"]
    assert "WITHOUT trained weights" in result.stderr and "Traceback" not in result.stderr


def test_search_json_ranks_results_with_scores(indexed: Path, cli) -> None:
    result = cli(["search", "a red car", "-k", "5", "--json", "--no-words"], indexed)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert len(results) == 5
    assert all(Path(r["path"]).is_file() and len(r["id"]) == 64 for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and not any(r["words"] for r in results)
    # Words on (the default): files whose words match ("red_flower", "formula_one_car") say so; each result
    # carries the relevance that ordered it and what matched, beside its cosine.
    worded = json.loads(cli(["search", "red car", "-k", "5", "--json"], indexed).stdout)["results"]
    assert any(r["filename"] == "formula_one_car_gerald_g_01.png" and r["words"] and r["match"] == "words" for r in worded)
    assert [r["relevance"] for r in worded] == sorted((r["relevance"] for r in worded), reverse=True)
    cut = json.loads(cli(["search", "red car", "-k", "5", "--json", "--min-score", "0.99"], indexed).stdout)
    assert [r["filename"] for r in cut["results"]] == ["formula_one_car_gerald_g_01.png"]  # the best word match stays
    assert cut["results"][0]["relevance"] == 1.0 and cut["below_cutoff"] == 4


def test_image_search_and_stats(indexed: Path, cli) -> None:
    probe = sorted((SAMPLE / "plants").iterdir())[0]
    hits = json.loads(cli(["search", "--image", str(probe), "-k", "1", "--json"], indexed).stdout)["results"]
    assert hits[0]["path"] == str(probe.resolve()) and hits[0]["score"] > 0.999
    stats = json.loads(cli(["stats", "--json"], indexed).stdout)
    assert stats["count"] >= 60 and stats["by_folder"]["plants"] >= 1


def test_failures_give_nonzero_exit_codes(indexed: Path, tmp_path: Path, cli) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = cli(["ingest", str(bad), "--json"], indexed)
    assert result.returncode == 1
    assert json.loads(result.stdout)["failed"][0]["reason"] == "not a recognised image format"
    missing = cli(["search", "--image", str(tmp_path / "nope.png")], indexed)
    assert missing.returncode == 1 and "is not a file" in missing.stderr and "Traceback" not in missing.stderr
    assert cli(["search", "--bogus-flag"], indexed).returncode == 2


def test_unloadable_weights_name_the_setting(tmp_path: Path, cli) -> None:
    result = cli(["search", "x"], tmp_path, CLIP_PRETRAINED=str(tmp_path / "missing.safetensors"))
    assert result.returncode == 1
    assert "CLIP_PRETRAINED" in result.stderr and "Traceback" not in result.stderr


HOLD = """
import sys, time
from rag.core import Settings
from rag.store import MilvusStore
store = MilvusStore(Settings.from_env(), 512, "ViT-B-32/none")
print("open", flush=True)
time.sleep(120)
"""


def test_a_library_held_by_another_process_is_one_sentence(tmp_path: Path, cli) -> None:
    """The app open and a folder to add from the terminal: the most common thing a user will do. Both are real
    processes: Milvus Lite may write to the process's stderr itself, and the user sees that too."""
    env = {**os.environ, "CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(tmp_path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        for args in (["stats"], ["ingest", str(SAMPLE / "food")]):
            result = run(args, tmp_path)
            assert result.returncode == 1
            assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
            assert result.stderr.startswith("error: The library at ") and "open in another program" in result.stderr
            assert "Library tab" in result.stderr and "MILVUS_URI" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    again = cli(["stats", "--json"], tmp_path)  # released: works again
    assert again.returncode == 0 and json.loads(again.stdout)["count"] == 0

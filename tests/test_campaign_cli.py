"""``python -m rag campaign`` as a user runs it: dry-run and budget send nothing; a campaign killed with
SIGKILL part-way resumes and generates every item exactly once (the fake server counts per item).

The commands run in-process (the ``cli`` fixture, tests/conftest.py) but for the campaign that is killed,
which is a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rag.core import Settings
from tests.conftest import ROOT, cli_environ
from tests.fake_gemini import FakeGemini, Recorded, Reply, image_reply, png_bytes
from tests.test_campaigns import PRODUCTS, TEMPLATE, name_of, product_library

KEY = "campaign-cli-key-7e2"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, cli) -> Path:
    root = tmp_path_factory.mktemp("campaign-cli")
    result = cli(["ingest", str(product_library(root / "lib")), "-q"], root / "data")
    assert result.returncode == 0, result.stderr
    return root / "data"


def release_lite(data_dir: Path) -> None:
    """Stop this process's Milvus Lite server for the library in ``data_dir``, as a process exit would."""
    from milvus_lite import server_manager_instance

    server_manager_instance.release_server(Settings.from_env(cli_environ(data_dir)).milvus_uri)


def gemini_env(fake: FakeGemini, **more: str) -> dict[str, str]:
    return {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": fake.base_url, "GEMINI_RETRIES": "0", **more}


def campaign_args(*more: str) -> list[str]:
    return ["campaign", "--folder", "products", "--template", TEMPLATE, "--aspect", "1:1,4:5", *more]


def test_dry_run_prints_requests_and_cost_and_sends_nothing(library: Path, fake_gemini: FakeGemini, cli) -> None:
    result = cli(campaign_args("--dry-run", "--json"), library, **gemini_env(fake_gemini))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (len(plan["requests"]), plan["estimate_usd"], plan["dry_run"]) == (10, pytest.approx(0.67), True)
    assert {r["prompt"] for r in plan["requests"]} == {TEMPLATE.format(name=name_of(p)) for p in PRODUCTS}
    shown = cli(campaign_args("--dry-run"), library, **gemini_env(fake_gemini))
    assert "#10" in shown.stdout and "10 requests (10 images)" in shown.stdout and "about $0.67" in shown.stdout
    listed = json.loads(cli(["campaigns", "--json"], library).stdout)
    assert fake_gemini.requests == [] and listed["campaigns"] == []


def test_over_the_budget_the_cli_sends_nothing(library: Path, fake_gemini: FakeGemini, cli) -> None:
    result = cli(campaign_args(), library, **gemini_env(fake_gemini, GEMINI_DAILY_BUDGET_USD="0.2"))
    assert result.returncode == 1 and "nothing was sent" in result.stderr and "Traceback" not in result.stderr
    assert fake_gemini.requests == []
    bad = cli(campaign_args("--aspect", "1:1,5:9"), library, **gemini_env(fake_gemini))
    assert bad.returncode == 1 and "5:9" in bad.stderr and "Traceback" not in bad.stderr


def test_killed_campaign_resumes_and_generates_each_item_once(library: Path, fake_gemini: FakeGemini, cli) -> None:
    stuck = TEMPLATE.format(name=name_of(PRODUCTS[2]))
    held: list[int] = []

    def route(recorded: Recorded) -> Reply:
        if recorded.texts()[0] == stuck and not held:  # the first try of item 3 hangs: the kill comes then
            held.append(1)
            return Reply(200, image_reply(png_bytes()).body, delay=300)
        return image_reply(png_bytes(color=(len(fake_gemini.requests) % 255, 0, 0)))

    fake_gemini.route = route
    env = {"CAMPAIGN_CONCURRENCY": "1", **gemini_env(fake_gemini)}
    release_lite(library)  # Milvus Lite lets one process use a library: this one has it open from the commands above
    child = subprocess.Popen([sys.executable, "-m", "rag", "campaign", *campaign_args()[1:], "-q"], cwd=ROOT,
                             env=cli_environ(library, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not held:
        assert child.poll() is None and time.monotonic() < deadline, "the campaign ended before item 3"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    before = len(fake_gemini.answered)
    (campaign,) = json.loads(cli(["campaigns", "--json"], library).stdout)["campaigns"]
    assert campaign["status"] == "running" and campaign["items"]["done"] == before
    resumed = cli(["campaign", "--resume", campaign["id"][:6], "--json"], library, **env)
    assert resumed.returncode == 0, resumed.stderr
    items = json.loads(resumed.stdout)["items"]
    assert [i["status"] for i in items] == ["done"] * 10 and all(len(i["version_ids"]) == 1 for i in items)
    per_item = Counter((r.texts()[0], r.aspect_ratio()) for r in fake_gemini.answered)
    assert len(per_item) == 10 and set(per_item.values()) == {1}  # generated exactly once each
    assert len(fake_gemini.requests) == 11  # the one abandoned by the kill, never answered, went again
    shown = cli(["campaigns"], library).stdout
    assert "done" in shown and "10/10 items" in shown
    history = json.loads(cli(["history", "--json"], library).stdout)["attempts"]
    outcomes = Counter(a["outcome"] for a in history)
    assert outcomes == {"ok": 10, "interrupted": 1}  # the killed request is History's, at its estimate
    assert next(a for a in history if a["outcome"] == "interrupted")["cost_usd"] == pytest.approx(0.067)


def test_batch_from_the_cli_submits_then_resume_polls(library: Path, fake_gemini: FakeGemini, cli) -> None:
    fake_gemini.route = lambda r: image_reply(png_bytes())
    fake_gemini.batch_states = ["BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]
    env = gemini_env(fake_gemini)
    made = cli(campaign_args("--batch", "--name", "CLI batch", "--json"), library, **env)
    assert made.returncode == 0, made.stderr
    campaign = json.loads(made.stdout)["campaign"]
    assert (campaign["status"], campaign["batch_state"]) == ("batch", "JOB_STATE_PENDING")
    waiting = cli(["campaign", "--resume", campaign["id"]], library, **env)
    assert waiting.returncode == 0 and "JOB_STATE_RUNNING" in waiting.stdout
    landed = json.loads(cli(["campaign", "--resume", campaign["id"], "--json"], library, **env).stdout)
    assert landed["campaign"]["status"] == "done" and all(len(i["version_ids"]) == 1 for i in landed["items"])

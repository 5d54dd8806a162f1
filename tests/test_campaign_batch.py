"""Campaigns in Gemini's Batch mode through the real SDK: the job is created with every request inline,
polled (after a restart too), its inlined responses land as the items' versions; a job that fails or
expires is shown with its state. The fake server speaks batchGenerateContent and batches/{name}."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.core import GenerationError
from rag.studio import Studio
from tests.conftest import test_settings
from tests.fake_gemini import FakeGemini, b64decode_any
from tests.test_auto_refs import sent
from tests.test_campaigns import KEY, PRODUCTS, TEMPLATE, answer, name_of, product_library


def open_studio(tmp_path: Path, embedder, fake: FakeGemini) -> Studio:
    return Studio(test_settings(tmp_path / "data", gemini_api_key=KEY, gemini_base_url=fake.base_url, gemini_retries=0),
                  embedder=embedder)


@pytest.fixture
def batch_line(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    studio = open_studio(tmp_path, embedder, fake_gemini)
    studio.ingest_folder(product_library(tmp_path / "lib"))
    yield studio
    studio.close()


def test_a_batch_job_is_created_polled_and_lands(batch_line: Studio, fake_gemini: FakeGemini, tmp_path: Path,
                                                  embedder) -> None:
    fake_gemini.route = answer(fail=name_of(PRODUCTS[1]))
    fake_gemini.batch_states = ["BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]
    logo = batch_line.campaign_assets(folder="brand")[0][0]
    plan = batch_line.plan_campaign(TEMPLATE, folder="products", refs=[logo.id], aspect_ratios=["1:1", "4:5"],
                                    batch=True, name="Batch line")
    assert plan.estimate_usd == pytest.approx(0.335) and "Batch mode" in plan.summary()
    campaign = batch_line.submit_campaign_batch(batch_line.start_campaign(plan).id)
    assert (campaign.status, campaign.batch_job) == ("batch", "batches/job1")
    (create,) = fake_gemini.requests
    sent_requests = fake_gemini.batches["batches/job1"]
    assert create.path.endswith("models/gemini-3.1-flash-image:batchGenerateContent") and len(sent_requests) == 10
    first = sent_requests[0]["request"]
    images = [b64decode_any(p["inlineData"]["data"]) for p in first["contents"][0]["parts"] if "inlineData" in p]
    assert first["contents"][0]["parts"][0]["text"] == TEMPLATE.format(name=name_of(PRODUCTS[0]))
    assert images == [sent(str(PRODUCTS[0]).replace(str(PRODUCTS[0].parent), str(tmp_path / "lib" / "products"))),
                      sent(logo.path)]
    assert batch_line.poll_campaign_batch(campaign.id).batch_state.startswith("JOB_STATE_RUNNING")
    batch_line.close()  # a restart: the job is picked up again by its id
    again = open_studio(tmp_path, embedder, fake_gemini)
    try:
        assert [c.id for c in again.poll_batches()] == [campaign.id]
        campaign, items = again.open_campaign(campaign.id)
        assert (campaign.status, campaign.batch_state) == ("stopped", "JOB_STATE_SUCCEEDED")
        assert [i.status for i in items].count("done") == 8 and all(len(i.version_ids) == 1 for i in items if i.status == "done")
        assert {i.asset_name for i in items if i.status == "failed"} == {PRODUCTS[1].name}
        (attempt,) = again.history()
        assert (attempt.outcome, attempt.images, attempt.cost_usd) == ("ok", 8, pytest.approx(0.268))
        version = again.sessions.version(items[0].version_ids[0])
        assert Path(version.path).is_file() and again.poll_batches() == []
        sent_turn = again.sessions.history(version.id)[0]  # a refinement sends the source and the logo again
        assert sum("inline_data" in p or "inlineData" in p for p in sent_turn["parts"]) == 2
    finally:
        again.close()


@pytest.mark.parametrize("state", ["BATCH_STATE_EXPIRED", "BATCH_STATE_FAILED"])
def test_a_job_that_ends_badly_is_shown_with_its_state(batch_line: Studio, fake_gemini: FakeGemini, state: str) -> None:
    fake_gemini.batch_states = [state]
    plan = batch_line.plan_campaign(TEMPLATE, folder="products", batch=True)
    campaign = batch_line.poll_campaign_batch(batch_line.submit_campaign_batch(batch_line.start_campaign(plan).id).id)
    shown = state.replace("BATCH", "JOB")
    assert (campaign.status, campaign.batch_state) == ("stopped", shown)
    items = batch_line.open_campaign(campaign.id)[1]
    assert all(i.status == "failed" and shown in i.error for i in items)
    (attempt,) = batch_line.history()
    assert (attempt.outcome, attempt.cost_usd) == ("failed", 0.0)


def test_above_the_inline_limit_the_requests_go_as_a_jsonl_file(batch_line: Studio, fake_gemini: FakeGemini,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.generation.gemini_batch.INLINE_LIMIT_BYTES", 1000)  # the real limit is 20 MB
    fake_gemini.route = answer(fail=name_of(PRODUCTS[4]))
    plan = batch_line.plan_campaign(TEMPLATE, folder="products", aspect_ratios=["9:16"], per_item=2, batch=True)
    campaign = batch_line.submit_campaign_batch(batch_line.start_campaign(plan).id)
    (uploaded,) = [n for n in fake_gemini.files if n.startswith("files/upload")]
    lines = [json.loads(x) for x in fake_gemini.files[uploaded].decode().splitlines()]
    assert [x["key"] for x in lines] == [f"{i}-{k}" for i in range(1, 6) for k in (1, 2)]
    assert lines[0]["request"]["generationConfig"]["imageConfig"]["aspectRatio"] == "9:16"
    assert lines[0]["request"]["contents"][0]["parts"][0]["text"] == TEMPLATE.format(name=name_of(PRODUCTS[0]))
    assert len(fake_gemini.batches[campaign.batch_job]) == 10 and "inlinedRequests" not in str(fake_gemini.requests[0].body)
    campaign, items = batch_line.open_campaign(batch_line.poll_campaign_batch(campaign.id).id)
    assert campaign.batch_state == "JOB_STATE_SUCCEEDED"
    assert [len(i.version_ids) for i in items] == [2, 2, 2, 2, 0] and items[4].status == "failed"
    assert "fake outage" in items[4].error


def test_a_job_gemini_cannot_find_is_a_sentence_and_stays_waiting(batch_line: Studio, fake_gemini: FakeGemini) -> None:
    plan = batch_line.plan_campaign(TEMPLATE, folder="products", batch=True)
    campaign = batch_line.submit_campaign_batch(batch_line.start_campaign(plan).id)
    fake_gemini.batches.clear()  # the job is gone (404)
    with pytest.raises(GenerationError, match="could not say how Batch job batches/job1 is doing.*asked again later"):
        batch_line.poll_campaign_batch(campaign.id)
    assert KEY not in str(batch_line.history()[0].reason)
    assert batch_line.open_campaign(campaign.id)[0].status == "batch" and batch_line.poll_batches() == [
        batch_line.open_campaign(campaign.id)[0]]

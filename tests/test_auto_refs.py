"""References found by the prompt: ``generate(auto_refs=N)`` and ``python -m rag generate --auto-refs N`` send
exactly the images the Search tab's search ranks first, and the provenance says so. Real SDK, fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.generation import read_provenance
from rag.generation.gemini import MAX_REFERENCE_BYTES, MAX_REFERENCE_SIDE
from rag.media import encode_reference
from rag.search import Query
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes

KEY = "auto-refs-key-5c1"
PROMPT = "a bowl of fresh fruit on a wooden table"


def sent(asset_path: str) -> bytes:
    return encode_reference(asset_path, max_side=MAX_REFERENCE_SIDE, max_bytes=MAX_REFERENCE_BYTES,
                            max_pixels=100_000_000)[0]


@pytest.fixture
def food_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    yield studio
    studio.close()


def test_auto_refs_sends_the_top_two_and_records_the_query(food_studio: Studio, fake_gemini: FakeGemini) -> None:
    top = [h.asset for h in food_studio.search(Query(text=PROMPT, k=2))]
    fake_gemini.push(image_reply(png_bytes()))
    run_ = food_studio.generate(PROMPT, auto_refs=2)
    (request,) = fake_gemini.requests
    assert [data for _, data in request.inline()] == [sent(a.path) for a in top]
    record = read_provenance(run_.paths[0])
    assert record["references_found"] == {"query": PROMPT, "ids": [a.id for a in top]}
    assert [r["id"] for r in record["references"]] == [a.id for a in top]


def test_found_references_stay_within_the_cap_and_beside_chosen_ones(food_studio: Studio) -> None:
    chosen = food_studio.table()["id"][0]
    found = food_studio.find_references(PROMPT, 10, model="gemini-3.1-flash-lite-image", keep=[chosen])  # Lite takes 3
    assert len(found) == 2 and chosen not in {a.id for a in found}
    filtered = food_studio.find_references(PROMPT, 2, query=Query(folders=("nowhere",)))
    assert filtered == []  # the search's filters apply


def test_a_user_dropped_reference_is_not_claimed_as_found(food_studio: Studio, fake_gemini: FakeGemini) -> None:
    found = [a.id for a in food_studio.find_references(PROMPT, 2)]
    fake_gemini.push(image_reply(png_bytes()))
    run_ = food_studio.generate(PROMPT, reference_ids=found[:1], found={"query": PROMPT, "ids": found})
    assert read_provenance(run_.paths[0])["references_found"]["ids"] == found[:1]


def test_cli_auto_refs(tmp_path: Path, fake_gemini: FakeGemini, cli) -> None:
    env = {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": fake_gemini.base_url}
    assert cli(["ingest", str(SAMPLE / "food"), "-q"], tmp_path).returncode == 0
    top = json.loads(cli(["search", PROMPT, "-k", "2", "--json"], tmp_path).stdout)["results"]
    fake_gemini.push(image_reply(png_bytes()))
    result = cli(["generate", PROMPT, "--auto-refs", "2", "--json"], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["references"] == [a["id"] for a in top]
    assert [data for _, data in fake_gemini.requests[0].inline()] == [sent(a["path"]) for a in top]
    assert read_provenance(out["images"][0])["references_found"]["query"] == PROMPT

"""Search → references → Gemini → outputs → library, through Studio and the CLI.

The real google-genai SDK talks to the fake Gemini server on 127.0.0.1 (tests/fake_gemini.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.core import GenerationDisabled, GenerationError
from rag.generation import read_provenance
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, error_reply, image_reply, png_bytes

API_KEY = "test-key-do-not-leak-123"


@pytest.fixture
def gen_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    settings = test_settings(tmp_path, gemini_api_key=API_KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    return studio


def test_generate_from_library_references_then_save(gen_studio: Studio, fake_gemini: FakeGemini) -> None:
    refs = gen_studio.search("a bowl of soup", k=2)
    fake_gemini.push(image_reply(png_bytes((32, 24), (250, 200, 0))))
    before = gen_studio.count()
    generation = gen_studio.generate("a banana in the style of these", reference_ids=[h.asset.id for h in refs], aspect_ratio="4:3")
    (request,) = fake_gemini.requests
    assert len(request.inline()) == 2 and request.aspect_ratio() == "4:3"
    assert request.headers["x-goog-api-key"] == API_KEY
    (out,) = generation.paths
    assert out.parent == gen_studio.settings.outputs_dir and gen_studio.count() == before  # not in the library yet

    provenance = read_provenance(out)
    assert provenance["prompt"] == "a banana in the style of these"
    assert [r["id"] for r in provenance["references"]] == [h.asset.id for h in refs]

    report = gen_studio.save_generated(generation.paths)
    (saved,) = report.added
    assert saved.source == "generated" and saved.meta["parents"] == [h.asset.id for h in refs]
    assert gen_studio.count() == before + 1
    assert [a.id for a in gen_studio.asset(saved.id).parents] == [h.asset.id for h in refs]
    assert gen_studio.search("banana", sources=["generated"], k=5)[0].asset.id == saved.id
    assert gen_studio.save_generated(generation.paths).duplicates  # saving twice adds nothing


def test_failed_generation_leaves_library_and_outputs_untouched(gen_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.always(error_reply(500, "INTERNAL", "backend exploded"))
    before = gen_studio.count()
    with pytest.raises(GenerationError) as err:
        gen_studio.generate("anything", reference_ids=[gen_studio.table().iloc[0]["id"]])
    assert API_KEY not in str(err.value)
    assert gen_studio.count() == before
    assert not gen_studio.settings.outputs_dir.exists() or not any(gen_studio.settings.outputs_dir.iterdir())


def test_uploaded_reference_not_in_library(gen_studio: Studio, fake_gemini: FakeGemini, tmp_path: Path) -> None:
    ref = tmp_path / "mood.png"
    ref.write_bytes(png_bytes((16, 16), (0, 0, 255)))
    fake_gemini.push(image_reply(png_bytes()))
    before = gen_studio.count()
    gen_studio.generate("blue mood", reference_files=[ref])
    assert len(fake_gemini.requests[0].inline()) == 1 and gen_studio.count() == before


def test_without_key_generation_is_off_but_search_works(tmp_path: Path, embedder) -> None:
    studio = Studio(test_settings(tmp_path, gemini_api_key=""), embedder=embedder)
    enabled, why = studio.generation_status()
    assert not enabled and "no Gemini API key yet" in why and "GEMINI_API_KEY" not in why  # the page's words
    with pytest.raises(GenerationDisabled, match="no Gemini API key yet"):
        studio.generate("a banana")
    studio.ingest_folder(SAMPLE / "plants")
    assert studio.search("a tree", k=3)


def test_cli_generate_with_save(fake_gemini: FakeGemini, tmp_path: Path, cli) -> None:
    ref = sorted((SAMPLE / "tools").iterdir())[0]
    fake_gemini.push(image_reply(png_bytes((20, 20), (1, 2, 3))))
    result = cli(
        ["generate", "a hammer made of bananas", "--ref", str(ref), "--aspect", "16:9", "--out", str(tmp_path / "out"), "--save", "--json"],
        tmp_path / "data",
        GEMINI_API_KEY=API_KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (image,) = out["images"]
    assert Path(image).parent == tmp_path / "out" and Path(image).is_file()
    assert len(out["saved_to_library"]) == 1 and fake_gemini.requests[0].aspect_ratio() == "16:9"
    assert len(out["session"]) == 12 and [v["label"] for v in out["versions"]] == ["v1"]  # the session to refine next
    assert Path(image).name.startswith("a-hammer-made-of-bananas-v1-")
    assert API_KEY not in result.stdout + result.stderr


def test_cli_generate_without_key_explains(tmp_path: Path, cli) -> None:
    result = cli(["generate", "x"], tmp_path, GEMINI_API_KEY="", GOOGLE_API_KEY="")
    assert result.returncode == 1 and "GEMINI_API_KEY" in result.stderr

"""The web app through its API, with gradio_client, against the app served on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes

API_KEY = "app-test-key-7f3a"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Studio, Client]:
    from tests.fake_gemini import FakeGemini as _FG  # module-scoped fake server

    fake = _FG()
    fake.start()
    studio = Studio(
        test_settings(tmp_path_factory.mktemp("app"), gemini_api_key=API_KEY, gemini_base_url=fake.base_url, gemini_retries=0),
        embedder=embedder,
    )
    with running_app(studio) as url:
        yield studio, Client(url, verbose=False), fake
    fake.stop()


def test_ingest_search_generate_save(served) -> None:
    studio, client, fake = served
    files = sorted((SAMPLE / "transportation").iterdir())[:4] + [SAMPLE.parent / "README.md"]
    out = client.predict([handle_file(str(p)) for p in files], "vehicles", [], [], api_name="/ingest")
    assert "4 added" in out[0]
    failed = out[1]["value"]["data"]
    assert len(failed) == 1 and failed[0][0] == "README.md"

    stats = client.predict(api_name="/stats")
    assert stats["count"] == 4 and stats["by_folder"] == {"vehicles": 4}

    gallery, message = client.predict("a car", None, 0.5, 3, [], [], api_name="/search_gallery")
    assert len(gallery) == 3 and message == "3 results"
    assert all(" · " in item["caption"] for item in gallery)

    hits = client.predict("a car", 3, ["vehicles"], [], api_name="/search")
    assert len(hits) == 3 and {h["filename"] for h in hits} <= {p.name for p in files}
    assert all(Path(h["source_path"]).parent.parent == studio.settings.library_dir.resolve() for h in hits)
    assert len(client.predict(["vehicles"], [], api_name="/library")) == 4

    probe = files[0]
    by_image, _ = client.predict("", handle_file(str(probe)), 0.5, 1, [], [], api_name="/search_gallery")
    assert by_image[0]["caption"].startswith(probe.name)

    fake.push(image_reply(png_bytes((24, 24), (255, 220, 0))))
    generated = client.predict("a banana car", [hits[0]["id"]], "16:9", 1, api_name="/generate")
    (image,) = generated["images"]
    assert Path(image).parent == studio.settings.outputs_dir
    assert len(fake.requests[-1].inline()) == 1 and fake.requests[-1].aspect_ratio() == "16:9"

    saved = client.predict([image], api_name="/save_generated")
    assert len(saved) == 1
    assert client.predict(api_name="/stats")["by_source"] == {"upload": 4, "generated": 1}
    assert client.predict([saved[0]], api_name="/delete") == 1


def test_errors_are_plain_messages(served) -> None:
    _, client, fake = served
    with pytest.raises(Exception) as err:
        client.predict("   ", None, 0.5, 3, [], [], api_name="/search_gallery")
    assert "Type something to search for" in str(err.value)
    with pytest.raises(Exception) as err:
        client.predict("x", [], "7:3", 1, api_name="/generate")
    assert "aspect" in str(err.value).lower() and API_KEY not in str(err.value)

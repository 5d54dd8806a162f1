"""The web app through its API, with gradio_client, against the app served on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import image_reply, png_bytes

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
    out = client.predict([handle_file(str(p)) for p in files], "vehicles", "", api_name="/ingest")
    assert "4 added" in out[0]
    failed = out[1]["value"]["data"]
    assert len(failed) == 1 and failed[0][0] == "README.md"

    stats = client.predict(api_name="/stats")
    assert stats["count"] == 4 and stats["by_folder"] == {"vehicles": 4}

    gallery, message = client.predict("a car", None, 0.5, 3, [], [], api_name="/search_gallery")
    assert len(gallery) == 3 and message.startswith("3 results")
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
    gallery, message = client.predict("   ", None, 0.5, 3, [], [], api_name="/search_gallery")
    assert message.startswith("Type what you are looking for") and gallery == []  # what to do, not an error
    with pytest.raises(Exception) as err:
        client.predict("x", [], "7:3", 1, api_name="/generate")
    assert "aspect" in str(err.value).lower() and API_KEY not in str(err.value)


def test_hostile_uploads_through_the_ui(served, tmp_path: Path) -> None:
    from tests.hostile import build_corpus

    studio, client, _ = served
    cases, _ignored = build_corpus(tmp_path / "corpus", tmp_path / "outside")
    files = [tmp_path / "corpus" / c.name for c in cases]
    files = [f for f in files if f.is_file() and not f.is_symlink() and f.stat().st_size < 20_000_000]
    before = studio.count()
    summary, failed, *_ = client.predict([handle_file(str(f)) for f in files], "hostile", "", api_name="/ingest")
    added, dups, n_failed = (int(x) for x in re.findall(r"(\d+) (?:added|already in the library|failed)", summary))
    assert added + dups + n_failed == len(files)
    assert studio.count() == before + added
    rows = failed["value"]["data"]  # what failed, then each duplicate with the library asset it matches
    assert len(rows) == n_failed + dups and all(reason for _, reason in rows)
    assert sum(reason.startswith("already in the library as ") for _, reason in rows) == dups
    assert "Traceback" not in str(failed)
    assert client.predict("anything", 3, ["hostile"], [], api_name="/search")  # still answering


def test_search_options_reach_the_backend(served) -> None:
    studio, client, _ = served
    # With a weightless model only the file-name match can put the chevrolet first (words are on by default).
    by_name = client.predict("chevrolet", 4, api_name="/search")
    assert by_name[0]["filename"] == "_chevrolet_celebirt_.png" and by_name[0]["words"] is True
    assert (by_name[0]["relevance"], by_name[0]["match"]) == (1.0, "words")  # the one score: order, label, cut-off
    assert [h["relevance"] for h in by_name] == sorted((h["relevance"] for h in by_name), reverse=True)
    assert not any(h["words"] for h in client.predict("chevrolet", 4, [], [], "", 0.5, False, api_name="/search"))
    cut = client.predict("chevrolet", 10, [], [], "", 0.5, False, 0.999, api_name="/search")
    assert cut == []  # no picture is that close to the text with random weights
    deduped = client.predict("chevrolet", 50, [], [], "", 0.5, False, 0.0, True, api_name="/search")
    plain = client.predict("chevrolet", 50, [], [], "", 0.5, False, 0.0, False, api_name="/search")
    assert len(deduped) < len(plain)  # the random model sees many near-identical vectors
    gallery, message = client.predict("chevrolet", None, 0.5, 4, [], [], api_name="/search_gallery")
    assert gallery[0]["caption"].endswith("best match · words") and "1 with matching words" in message
    assert all(item["caption"].endswith(" · picture") for item in gallery[1:])
    gallery, message = client.predict("chevrolet", None, 0.5, 10, [], [], False, 0.9, api_name="/search_gallery")
    assert gallery == [] and "10 results hidden by the cut" in message  # "Only the best": no picture is, here

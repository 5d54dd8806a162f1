"""Secrets, file access and many users at once, against the app served on loopback."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

import app as app_module
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, error_reply, image_reply, png_bytes

SECRET = "AIzaSECRET-do-not-leak-0b5e"


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def secure_app(tmp_path_factory: pytest.TempPathFactory, embedder):
    fake = FakeGemini()
    fake.start()
    studio = Studio(
        test_settings(tmp_path_factory.mktemp("sec"), gemini_api_key=SECRET, gemini_base_url=fake.base_url, gemini_retries=0),
        embedder=embedder,
    )
    studio.ingest_folder(SAMPLE / "food")
    with running_app(studio) as url:
        yield studio, url, fake
    fake.stop()


def test_api_key_never_leaves_the_server(secure_app, caplog: pytest.LogCaptureFixture) -> None:
    studio, url, fake = secure_app
    client = Client(url, verbose=False)
    for page in ("", "config", "gradio_api/info"):
        status, body = fetch(url + page)
        assert status == 200 and SECRET.encode() not in body, page
    fake.push(error_reply(400, "INVALID_ARGUMENT", f"API key not valid: {SECRET}"))
    with pytest.raises(Exception) as err:
        client.predict("a banana", [], "1:1", 1, api_name="/generate")
    assert SECRET not in str(err.value)
    fake.push(image_reply(png_bytes()))
    out = client.predict("a banana", [], "1:1", 1, api_name="/generate")
    saved = Path(out["images"][0])
    assert SECRET.encode() not in saved.read_bytes()
    client.predict([str(saved)], api_name="/save_generated")
    assert SECRET not in str(client.predict([], ["generated"], api_name="/library"))
    assert SECRET not in caplog.text
    assert fake.requests[-1].headers["x-goog-api-key"] == SECRET  # it did reach Google (the fake)


def test_only_app_folders_are_served(secure_app, tmp_path: Path) -> None:
    studio, url, _ = secure_app
    outside = tmp_path / "private.png"
    Image.new("RGB", (4, 4)).save(outside)
    preview = studio.preview(studio.get([studio.table().iloc[0]["id"]])[0])
    assert fetch(f"{url}gradio_api/file={preview}")[0] == 200
    for path in (outside, Path("/etc/passwd"), Path(studio.settings.milvus_uri), SAMPLE / "food" / sorted(p.name for p in (SAMPLE / "food").iterdir())[0]):
        status, _ = fetch(f"{url}gradio_api/file={path}")
        assert status in (403, 404), (path, status)


def test_share_without_auth_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert app_module.main(["--share"]) == 2
    assert "--auth" in capsys.readouterr().err


def test_many_searchers_and_an_uploader(secure_app, tmp_path: Path) -> None:
    studio, url, _ = secure_app
    deadline = time.monotonic() + 15
    errors: list[str] = []
    searches = [0]
    uploaded: list[str] = []

    def searcher(n: int) -> None:
        client = Client(url, verbose=False)
        queries = ["soup", "a red apple", "bread", "cake", "a cup of tea"]
        while time.monotonic() < deadline:
            try:
                hits = client.predict(queries[n % len(queries)], 5, [], [], api_name="/search")
                assert len(hits) == 5
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(f"search: {exc}")
                return

    def uploader() -> None:
        client = Client(url, verbose=False)
        i = 0
        while time.monotonic() < deadline and i < 20:
            path = tmp_path / f"up_{i}.png"
            Image.new("RGB", (48, 48), (i * 12 % 256, 80, 160)).save(path)
            try:
                result = client.predict([handle_file(str(path))], "load", [], [], api_name="/ingest")
                assert "1 added" in result[0], result[0]
                uploaded.append(path.name)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"upload: {exc}")
                return
            i += 1

    threads = [threading.Thread(target=searcher, args=(n,)) for n in range(8)] + [threading.Thread(target=uploader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert uploaded and searches[0] >= 8
    stored = {a["filename"] for a in Client(url, verbose=False).predict(["load"], [], api_name="/library")}
    assert stored == set(uploaded)


def test_a_full_queue_answers_at_once(tmp_path: Path, embedder) -> None:
    """More waiting requests than MAX_QUEUE: the extra one is refused in words, not left spinning."""
    from tests.fake_gemini import Reply

    with FakeGemini() as fake:
        slow = image_reply(png_bytes())
        fake.always(Reply(status=slow.status, body=slow.body, delay=4.0))
        settings = test_settings(tmp_path, gemini_api_key=SECRET, gemini_base_url=fake.base_url, max_queue=1)
        studio = Studio(settings, embedder=embedder)
        with running_app(studio) as url:
            client = Client(url, verbose=False)
            jobs = [client.submit("a slow banana", [], api_name="/generate") for _ in range(4)]  # 2 run, 1 waits
            started, finished = time.monotonic(), {}
            while len(finished) < len(jobs) and time.monotonic() - started < 60:
                finished |= {i: time.monotonic() - started for i, job in enumerate(jobs) if i not in finished and job.done()}
                time.sleep(0.05)
            refused = []
            for i, job in enumerate(jobs):
                try:
                    job.result(timeout=1)
                except Exception as exc:  # noqa: BLE001 - gradio_client raises its own AppError
                    refused.append((str(exc), finished[i]))
        studio.close()
    assert refused, "no request was refused although the queue holds one"
    assert all("Queue is full" in message for message, _ in refused), refused
    assert min(t for _, t in refused) < 4.0  # answered before the slow requests could finish


def test_the_folder_box_reads_only_under_library_roots(tmp_path: Path, embedder) -> None:
    root = tmp_path / "drive"
    (root / "shoes").mkdir(parents=True)
    (root / "shoes" / "one.png").write_bytes((SAMPLE / "food" / "honey.png").read_bytes())
    studio = Studio(test_settings(tmp_path / "data", library_roots=(root,)), embedder=embedder)
    try:
        with running_app(studio) as url:
            client = Client(url, verbose=False)
            with pytest.raises(Exception, match="Only folders under"):
                client.predict("/etc", api_name="/ingest_folder")
            assert "1 added" in client.predict(str(root / "shoes"), api_name="/ingest_folder")
            assert studio.count() == 1 and studio.stats()["by_folder"] == {"shoes": 1}
    finally:
        studio.close()

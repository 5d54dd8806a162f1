"""Secrets, file access and many users at once, against the app served on loopback."""

from __future__ import annotations

import threading
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


def client_for(url: str) -> Client:
    """A gradio client on loopback HTTP. ``ssl_verify=False``: no TLS here, and with it each of the client's
    requests built an SSL context from the CA bundle (tens of ms of CPU each)."""
    return Client(url, verbose=False, ssl_verify=False)


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def secure_app(tmp_path_factory: pytest.TempPathFactory, embedder):
    with FakeGemini() as fake:
        studio = Studio(
            test_settings(tmp_path_factory.mktemp("sec"), gemini_api_key=SECRET, gemini_base_url=fake.base_url,
                          gemini_retries=0),
            embedder=embedder,
        )
        try:
            studio.ingest_folder(SAMPLE / "food")
            with running_app(studio) as url:
                yield studio, url, fake
        finally:
            studio.close()


def test_api_key_never_leaves_the_server(secure_app, caplog: pytest.LogCaptureFixture) -> None:
    studio, url, fake = secure_app
    client = client_for(url)
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


def test_many_searchers_and_an_uploader(secure_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight searchers and an uploader at once: every call answers, every upload is stored, and searches
    answer while an upload is part-way (its first records written, not yet flushed), not after it.

    Fixed work, no clock: each searcher searches ``rounds`` times, the uploader uploads ``uploads`` files.
    The first upload waits part-way until every searcher has had an answer, so "searches are not stuck
    behind an upload" is seen directly rather than inferred from a count per second."""
    studio, url, _ = secure_app
    searchers, rounds, uploads = 8, 3, 5
    errors: list[str] = []
    answers: list[int] = []
    uploaded: list[str] = []
    lock = threading.Lock()
    holding = threading.Event()  # the first upload has written records and waits
    answered = threading.Event()  # every searcher had an answer meanwhile
    real_ingest = studio.ingest_uploads

    def ingest_uploads(paths, **options):  # the app's /ingest calls studio.ingest_uploads with a progress callback
        progress = options.pop("progress", None)

        def held(done: int, total: int, message: str) -> None:
            if not holding.is_set():
                holding.set()
                if not answered.wait(60):
                    errors.append("searches were not answered while an upload was part-way (60 s)")
            if progress:
                progress(done, total, message)

        return real_ingest(paths, progress=held, **options)

    monkeypatch.setattr(studio, "ingest_uploads", ingest_uploads)

    def searcher(n: int) -> None:
        client = client_for(url)
        queries = ["soup", "a red apple", "bread", "cake", "a cup of tea"]
        if not holding.wait(60):
            errors.append("the first upload never got part-way (60 s)")
            return
        for i in range(rounds):
            try:
                hits = client.predict(queries[(n + i) % len(queries)], 5, [], [], api_name="/search")
                assert len(hits) == 5
            except Exception as exc:  # noqa: BLE001
                errors.append(f"search: {exc}")
                return
            with lock:
                answers.append(n)
                if len(set(answers)) == searchers:
                    answered.set()

    def uploader() -> None:
        client = client_for(url)
        for i in range(uploads):
            path = tmp_path / f"up_{i}.png"
            Image.new("RGB", (48, 48), (i * 12 % 256, 80, 160)).save(path)
            try:
                result = client.predict([handle_file(str(path))], "load", [], [], api_name="/ingest")
                assert "1 added" in result[0], result[0]
                uploaded.append(path.name)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"upload: {exc}")
                return

    threads = [threading.Thread(target=searcher, args=(n,)) for n in range(searchers)] + [threading.Thread(target=uploader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a searcher or the uploader still runs after 120 s"
    assert not errors, errors[:3]
    assert len(answers) == searchers * rounds and len(uploaded) == uploads
    stored = {a["filename"] for a in client_for(url).predict(["load"], [], api_name="/library")}
    assert stored == set(uploaded)


def test_a_full_queue_answers_at_once(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """More waiting requests than MAX_QUEUE: the extra one is refused in words, not left spinning.

    Generation is held until the test lets it go (as a slow Gemini would hold it), so a request answered
    before that can only be a refusal, and it came while the others still ran: no clock involved."""
    release = threading.Event()
    with FakeGemini() as fake:
        fake.always(image_reply(png_bytes()))
        settings = test_settings(tmp_path, gemini_api_key=SECRET, gemini_base_url=fake.base_url, max_queue=1)
        studio = Studio(settings, embedder=embedder)
        real_generate = studio.generate

        def slow_generate(*args, **kwargs):  # the app's /generate calls studio.generate
            assert release.wait(60), "the test never released generation"
            return real_generate(*args, **kwargs)

        monkeypatch.setattr(studio, "generate", slow_generate)
        try:
            with running_app(studio) as url:
                client = client_for(url)
                jobs = [client.submit("a slow banana", [], api_name="/generate") for _ in range(4)]  # 2 run, 1 waits
                answered = threading.Event()
                for job in jobs:
                    job.add_done_callback(lambda _job: answered.set())
                assert answered.wait(60), "no request was answered in 60 s although the queue holds one"
                early = [i for i, job in enumerate(jobs) if job.done()]  # answered while generation was held
                release.set()
                said = []
                for job in jobs:
                    try:
                        job.result(timeout=60)
                        said.append("")
                    except Exception as exc:  # noqa: BLE001 - gradio_client raises its own AppError
                        said.append(str(exc) or type(exc).__name__)
        finally:
            release.set()
            studio.close()
    refused = [message for message in said if message]
    assert refused and all("Queue is full" in message for message in refused), said
    assert all("Queue is full" in said[i] for i in early), (early, said)  # refused at once, not after a wait
    assert len(refused) < len(jobs), said  # the requests it took were answered once generation went on


def test_the_folder_box_reads_only_under_library_roots(tmp_path: Path, embedder) -> None:
    root = tmp_path / "drive"
    (root / "shoes").mkdir(parents=True)
    (root / "shoes" / "one.png").write_bytes((SAMPLE / "food" / "honey.png").read_bytes())
    studio = Studio(test_settings(tmp_path / "data", library_roots=(root,)), embedder=embedder)
    try:
        with running_app(studio) as url:
            client = client_for(url)
            with pytest.raises(Exception, match="Only folders under"):
                client.predict("/etc", api_name="/ingest_folder")
            assert "1 added" in client.predict(str(root / "shoes"), api_name="/ingest_folder")
            assert studio.count() == 1 and studio.stats()["by_folder"] == {"shoes": 1}
    finally:
        studio.close()

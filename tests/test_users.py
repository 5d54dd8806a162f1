"""Several users on one app (``--users FILE``): each one's sessions, versions and history are theirs on
every endpoint, guessed ids included; the library is shared; failed sign-ins are slowed and logged.
The real app over loopback, the real SDK against the fake Gemini server."""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

import app as app_module
from rag.core import ConfigError
from rag.studio import Studio
from rag.users import Accounts, LoginThrottle
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes

KEY = "users-test-key"
ALICE, BOB = ("alice", "wonder-1"), ("bob", "builder-2")


def sign_in(url: str, user: str, password: str) -> int:
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=body), timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def team_app(tmp_path: Path, embedder, fake_gemini: FakeGemini):
    users = tmp_path / "users.txt"
    users.write_text(f"# the team\n{ALICE[0]}:{ALICE[1]}\n\n{BOB[0]}:{BOB[1]}\n")
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0,
                             users_file=str(users))
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(SAMPLE / "food")
    with running_app(studio) as url:
        yield studio, url
    studio.close()


def refused(client: Client, *args: object, api_name: str) -> str:
    with pytest.raises(Exception) as err:
        client.predict(*args, api_name=api_name)
    return str(err.value)


def test_another_users_sessions_are_not_there(team_app, fake_gemini: FakeGemini) -> None:
    studio, url = team_app
    alice, bob = Client(url, auth=ALICE, verbose=False), Client(url, auth=BOB, verbose=False)
    asset_id = studio.table().iloc[0]["id"]
    fake_gemini.push(image_reply(png_bytes()))
    made = alice.predict("a banana", [asset_id], "1:1", 1, api_name="/generate")
    sid, (vid,), (path,) = made["session_id"], made["version_ids"], made["images"]
    sent = len(fake_gemini.requests)

    assert [s["id"] for s in alice.predict(20, api_name="/sessions")] == [sid]
    assert bob.predict(20, api_name="/sessions") == []
    for guess in (sid, sid[:4], sid[:1]):  # a full id, and the short ids the CLI accepts
        assert "is not a session here" in refused(bob, guess, api_name="/session")
        assert "is not a session here" in refused(bob, guess, "make it red", api_name="/refine")
    assert "is not a session here" in refused(bob, "two bananas", [], "1:1", 1, "", "", sid, api_name="/generate")
    assert "is not a version" in refused(bob, [vid], api_name="/save_versions")
    assert "not images generated in your sessions" in refused(bob, [path], api_name="/save_generated")
    assert len(fake_gemini.requests) == sent  # nothing bob tried reached Gemini (or was paid for)
    assert bob.predict(50, "", "", api_name="/history")["attempts"] == []
    assert bob.predict(50, ALICE[0], "", api_name="/history")["attempts"] == []  # asking for alice's gives bob's own
    assert [a["user"] for a in alice.predict(50, "", "", api_name="/history")["attempts"]] == [ALICE[0]]

    assert alice.predict(sid, api_name="/session")["versions"][0]["id"] == vid  # the owner still can
    (saved,) = alice.predict([path], api_name="/save_generated")
    started = bob.predict(saved, api_name="/start_session")  # the library is shared: bob can edit alice's saved image
    assert started["user"] == BOB[0] and alice.predict(20, api_name="/sessions")[0]["id"] == sid


def test_studio_keeps_users_apart(team_app, fake_gemini: FakeGemini) -> None:
    studio, _ = team_app
    fake_gemini.push(image_reply(png_bytes()))
    run = studio.generate("a banana", user=ALICE[0])
    (version,) = run.versions
    with pytest.raises(Exception, match="not a session here"):
        studio.open_session(run.session_id, user=BOB[0])
    with pytest.raises(Exception, match="not a version"):
        studio.version(version.id, user=BOB[0])
    with pytest.raises(Exception, match="not a session here"):
        studio.refine(run.session_id, "red", from_version=version.id[:3], user=BOB[0])
    with pytest.raises(Exception, match="not a version"):
        studio.save_versions([version.id], user=BOB[0])
    assert studio.open_session(run.session_id)[0].user == ALICE[0]  # no sign-in (the CLI) sees everything
    assert studio.spend(user=BOB[0])["totals"] == [] and studio.spend()["today"] > 0


def test_failed_sign_ins_are_slowed_and_logged(team_app, caplog: pytest.LogCaptureFixture) -> None:
    _, url = team_app
    caplog.set_level(logging.WARNING, logger="banana.auth")
    assert sign_in(url, *ALICE) == 200
    for _ in range(5):
        assert sign_in(url, ALICE[0], "guess-123") == 400
    assert sign_in(url, *ALICE) == 429  # even the right password waits out the minute
    assert "failed sign-in as 'alice' from 127.0.0.1" in caplog.text
    assert "guess-123" not in caplog.text and ALICE[1] not in caplog.text


def test_accounts_file_errors_are_sentences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert Accounts.parse(["# c", "", "a:b:c"], "f") == {"a": "b:c"}  # a password may hold colons
    for lines, why in ((["nopassword"], "line 1: each line must look like user:password"),
                       (["a:1", "a:2"], "line 2: the user 'a' is listed twice")):
        with pytest.raises(ConfigError, match=why):
            Accounts.parse(lines, "f")
    settings = test_settings(tmp_path, users_file=str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="Cannot read the users file"):
        Accounts.from_settings(settings)
    (tmp_path / "empty.txt").write_text("# nobody yet\n")
    assert app_module.main(["--users", str(tmp_path / "empty.txt"), "--port", "1"]) == 1
    assert "lists nobody" in capsys.readouterr().err
    accounts = Accounts.from_settings(settings.with_(users_file="", auth="solo:pw"))
    assert accounts is not None and accounts.names == ["solo"] and accounts.check("solo", "pw")
    assert not accounts.check("solo", "PW") and not accounts.check("nobody", "pw")


def test_throttle_forgets_after_a_window() -> None:
    clock = [0.0]
    throttle = LoginThrottle(limit=2, window=60, now=lambda: clock[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait("a") == 60 and throttle.wait("b") == 0
    clock[0] = 30
    assert throttle.wait("a") == 30
    clock[0] = 61
    assert throttle.wait("a") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.wait("a") == 0


def test_a_forged_forwarded_address_is_not_believed(team_app, caplog: pytest.LogCaptureFixture) -> None:
    _, url = team_app
    caplog.set_level(logging.WARNING, logger="banana.auth")
    statuses = []
    for i in range(8):  # a new address in every request's header: without a trusted proxy it names nobody
        body = urllib.parse.urlencode({"username": BOB[0], "password": f"guess-{i}"}).encode()
        request = urllib.request.Request(url + "login", data=body, headers={"X-Forwarded-For": f"203.0.113.{i}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                statuses.append(reply.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert statuses == [400] * 5 + [429] * 3
    assert "203.0.113" not in caplog.text and caplog.text.count("failed sign-in as 'bob' from 127.0.0.1") == 5


def test_guesses_sent_at_once_are_counted_before_they_are_checked(team_app, caplog: pytest.LogCaptureFixture) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, url = team_app
    caplog.set_level(logging.WARNING, logger="banana.auth")
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda i: sign_in(url, ALICE[0], f"guess-{i}"), range(20)))
    assert statuses.count(400) == 5 and statuses.count(429) == 15, str(statuses)  # exactly the limit was checked
    assert caplog.text.count("failed sign-in as 'alice'") == 5


def test_an_account_guessed_at_from_many_addresses_waits_too() -> None:
    import asyncio

    from ui.auth import sign_in_options

    check = sign_in_options(Accounts({"alice": "wonder-1", "bob": "builder-2"}))["auth"]

    async def tries() -> list[bool]:  # every try from another address (as behind a trusted proxy)
        out = [await check("alice", f"guess-{i}") for i in range(10)]
        return [*out, await check("alice", "wonder-1"), await check("bob", "builder-2")]

    import ui.auth

    saved, ui.auth.FAILED_DELAY_S = ui.auth.FAILED_DELAY_S, 0.0
    try:
        results = asyncio.run(tries())
    finally:
        ui.auth.FAILED_DELAY_S = saved
    assert results == [False] * 10 + [False, True]  # alice's account waits out the minute; bob is not affected


def test_work_made_before_sign_in_belongs_to_the_team(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    from ui.session_view import recent_choices

    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    try:
        studio.ingest_folder(SAMPLE / "food")
        fake_gemini.always(image_reply(png_bytes()))
        before = studio.generate("made before anyone signs in")  # no sign-in: stored without an owner
        campaign = studio.start_campaign(studio.plan_campaign("An ad for {name}", folder="food", limit=2))
        bobs = studio.generate("bob's own", user=BOB[0])
        for user in (ALICE[0], BOB[0]):
            assert before.session_id in {s.id for s in studio.recent_sessions(user=user)}
            assert studio.open_session(before.session_id, user=user)[0].id == before.session_id
            assert [c.id for c in studio.campaigns(user=user)] == [campaign.id]
        assert bobs.session_id not in {s.id for s in studio.recent_sessions(user=ALICE[0])}  # still bob's alone
        studio.refine(before.session_id, "alice carries it on", user=ALICE[0])
        assert any("made before sign-in" in label for label, _ in recent_choices(studio, ALICE[0]))
        assert not any("made before sign-in" in label for label, _ in recent_choices(studio, ""))
    finally:
        studio.close()

"""Every endpoint of the app, as a hostile signed-in team member calls it (issue 25, point 10).

The walk reads the app's own API description (``view_api``), so an endpoint added later joins it
without a change here. Each text or list parameter gets paths outside the app (absolute, ``..``, a
file the attacker uploaded), control characters, a 1 MB string, a format spec and another user's ids;
each number a huge one. Every answer must be a sentence or a normal result, never "Something went
wrong"; no file outside the app's folders changes; memory stays bounded.
"""

from __future__ import annotations

import json
import resource
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes

ALICE, BOB = ("alice", "wonder-1"), ("bob", "builder-2")
SKIP = {"/lambda"}  # Gradio's own helper for the page, not an action
INTS = {"k", "n", "limit", "offset", "pool", "per_item", "auto_refs"}


def hostile_texts(uploaded: str, others: list[str]) -> list[str]:
    return ["/etc/passwd", "../../../../etc/passwd", uploaded, "a\x00b\x01\nc\td", "x" * 1_000_000,
            "{name:x>20000000}{name.__class__}", *others]


def upload(url: str, path: Path) -> str:
    """What Gradio's upload route answers: the file's absolute path on the server, which a client may then send."""
    with httpx.Client(base_url=url, follow_redirects=True) as http:
        http.post("login", data={"username": BOB[0], "password": BOB[1]}).raise_for_status()
        reply = http.post("gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        reply.raise_for_status()
        return reply.json()[0]


def client_for(url: str, auth: tuple[str, str]) -> Client:
    """A gradio client on loopback HTTP. ``ssl_verify=False``: no TLS here, and with it each of the client's
    requests built an SSL context from the CA bundle (tens of ms of CPU each, most of this walk's time)."""
    return Client(url, auth=auth, verbose=False, ssl_verify=False)


def call(client: Client, endpoint: str, args: dict[str, object]) -> str:
    """"" for a normal answer, else the message the client was given."""
    try:
        client.predict(api_name=endpoint, **args)
    except Exception as exc:  # noqa: BLE001 - the client raises its own AppError / ValueError kinds
        return str(exc) or type(exc).__name__
    return ""


def hostile_values(params: list[dict], texts: list[str]) -> list[tuple[str, object]]:
    """(parameter, value) pairs: each number huge or negative, each text (or list of texts) every hostile text."""
    out: list[tuple[str, object]] = []
    for p in params:
        name, kind = p["parameter_name"], p["python_type"]["type"]
        if name in INTS:
            out += [(name, 10**9), (name, -5)]
        elif "str" in kind and "filepath" not in kind and "Literal" not in kind:
            out += [(name, [t] if kind.startswith(("list", "None | list")) else t) for t in texts]
    return out


def base_args(params: list[dict]) -> dict[str, object]:
    """The least a call needs: required text is "x", lists empty, files none."""
    out: dict[str, object] = {}
    for p in params:
        if p.get("parameter_has_default"):
            continue
        kind = p["python_type"]["type"]
        out[p["parameter_name"]] = [] if kind.startswith("list") else None if "filepath" in kind else "x"
    return out


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, embedder):
    root = tmp_path_factory.mktemp("hostile-api")
    users = root / "users.txt"
    users.write_text(f"{ALICE[0]}:{ALICE[1]}\n{BOB[0]}:{BOB[1]}\n")
    with FakeGemini() as fake:
        fake.always(image_reply(png_bytes()))
        settings = test_settings(root / "data", gemini_api_key="hostile-key", gemini_base_url=fake.base_url,
                                 gemini_retries=0, users_file=str(users))
        studio = Studio(settings, embedder=embedder)
        studio.ingest_folder(SAMPLE / "food")
        reference = studio.table().iloc[0]["id"]  # indexed in place: its path is not a file the app serves
        made = studio.generate("alice's private idea", reference_ids=[reference], user=ALICE[0])
        (saved,) = studio.save_versions([made.versions[0].id], user=ALICE[0]).added
        with running_app(studio) as url:
            yield studio, url, [made.session_id, made.versions[0].id, saved.id], root
        studio.close()


def test_every_endpoint_answers_hostile_values_with_a_sentence(team) -> None:
    studio, url, alices, root = team
    canary = root / "outside" / "keep.txt"
    canary.parent.mkdir()
    canary.write_text("untouched")
    secret = root / "outside" / "upload.json"
    secret.write_text(json.dumps({"asset": {"path": str(canary)}, "file": str(canary)}))
    uploaded = upload(url, secret)
    client = client_for(url, BOB)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    calls = [(endpoint, {**base_args(info["parameters"]), name: value})
             for endpoint, info in endpoints.items() if endpoint not in SKIP
             for name, value in hostile_values(info["parameters"], hostile_texts(uploaded, alices))]
    with ThreadPoolExecutor(max_workers=4) as pool:  # four callers at once, as a small team would
        said = list(pool.map(lambda c: call(client, *c), calls))
    bad = [f"{endpoint} {sorted(args.items())!s:.80}: {why[:200]}" for (endpoint, args), why in zip(calls, said)
           if "Something went wrong" in why or "Traceback" in why]
    assert len(calls) > 300 and bad == [], "\n".join(bad)
    assert canary.read_text() == "untouched" and Path(uploaded).exists()  # nothing outside the app moved or went
    assert alices[0] not in {s.id for s in studio.recent_sessions(user=BOB[0])}
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 600, f"the walk grew the server by {grown_mb:.0f} MB"


def test_every_answer_reads_in_the_client(team) -> None:
    """Called as intended, every endpoint's answer is one the client can read: no ``path`` key at any depth
    that is not a served file (the client downloads those; a generated image's provenance once broke /asset)."""
    _, url, (session, version, saved), _ = team
    client = client_for(url, ALICE)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    ids = {"asset_id": saved, "session_id": session, "base_asset_id": saved, "ids": [saved], "version_ids": [version]}
    broken = []
    for endpoint, info in endpoints.items():
        if endpoint in SKIP or endpoint in ("/delete", "/move", "/ingest", "/ingest_folder"):
            continue
        args = {**base_args(info["parameters"]), **{k: v for k, v in ids.items()
                                                    if k in {p["parameter_name"] for p in info["parameters"]}}}
        said = call(client, endpoint, args)
        if said and ("403" in said or "download" in said.lower() or "Something went wrong" in said):
            broken.append(f"{endpoint}: {said[:200]}")
    assert broken == [], "\n".join(broken)

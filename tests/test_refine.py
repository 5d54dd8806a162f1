"""Budget, failures, models and History around a session; the CLI's and the API's generate, refine,
history and sessions. The real SDK talks to the fake Gemini server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client

from rag.core import BudgetExceeded, GenerationBlocked, GenerationError, ModelUnavailable, RateLimited
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import (
    FakeGemini,
    blocked_prompt_reply,
    error_reply,
    image_reply,
    png_bytes,
    rate_limit_reply,
    signed_reply,
    text_reply,
)

KEY = "refine-test-key-93b"
FLASH, PRO, LITE = "gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-lite-image"


@pytest.fixture
def flash_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=1)
    studio = Studio(settings, embedder=embedder)
    yield studio
    studio.close()


def outputs(studio: Studio) -> list[str]:
    folder = studio.settings.outputs_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_budget_refuses_before_any_call(flash_studio: Studio, fake_gemini: FakeGemini) -> None:
    flash_studio.settings = flash_studio.settings.with_(gemini_daily_budget_usd=0.1)
    fake_gemini.push(image_reply(png_bytes()))
    first = flash_studio.generate("a banana")  # $0.067 of $0.10: the automatic choice's price (Nano Banana 2, 1K)
    with pytest.raises(BudgetExceeded, match=r"budget of \$0\.10 set for this app has \$0\.067 spent.*about \$0\.067"):
        flash_studio.refine(first.session_id, "a second banana")
    assert len(fake_gemini.requests) == 1  # the server never saw the second request
    refused, made = flash_studio.history()
    assert (refused.outcome, refused.cost_usd, made.outcome) == ("refused", 0.0, "ok")
    assert "not sent" in refused.reason and flash_studio.spend()["today"] == pytest.approx(0.067)
    assert made.model == FLASH
    assert len(flash_studio.open_session(first.session_id)[1]) == 1


@pytest.mark.parametrize(
    ("replies", "error", "outcome", "why"),
    [
        ([blocked_prompt_reply("SAFETY")], GenerationBlocked, "blocked", "refused the prompt"),
        ([rate_limit_reply("0s"), rate_limit_reply("0s")], RateLimited, "failed", "rate limit"),
        ([error_reply(503, "UNAVAILABLE", "down"), error_reply(503, "UNAVAILABLE", "down")], GenerationError, "failed",
         "server error"),
    ],
    ids=["blocked", "429-after-retries", "outage"],
)
def test_a_failed_turn_changes_nothing_and_is_in_history(
    flash_studio: Studio, fake_gemini: FakeGemini, replies: list, error: type, outcome: str, why: str
) -> None:
    flash_studio.ingest_folder(SAMPLE / "food")
    fake_gemini.push(image_reply(png_bytes()))
    sid = flash_studio.generate("a banana").session_id
    before = (flash_studio.open_session(sid)[1], flash_studio.count(), outputs(flash_studio))
    fake_gemini.push(*replies)
    with pytest.raises(error):
        flash_studio.refine(sid, "make it ripe")
    assert (flash_studio.open_session(sid)[1], flash_studio.count(), outputs(flash_studio)) == before
    latest = flash_studio.history()[0]
    assert (latest.outcome, latest.images, latest.cost_usd, latest.prompt) == (outcome, 0, 0.0, "make it ripe")
    assert why in latest.reason and KEY not in latest.reason


def test_a_text_only_reply_is_recorded_and_makes_no_version(flash_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.push(text_reply("Which banana do you mean?"))
    run_ = flash_studio.generate("a banana")
    assert (run_.session_id, run_.versions, run_.paths) == ("", [], [])
    assert flash_studio.recent_sessions() == [] and outputs(flash_studio) == []
    (attempt,) = flash_studio.history()
    assert (attempt.outcome, attempt.reason, attempt.cost_usd) == ("text-only", "Which banana do you mean?", 0.0)


def test_models_listed_by_the_api_set_the_caps(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    fake_gemini.models = [LITE, PRO, FLASH]
    studio = Studio(test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0),
                    embedder=embedder)
    try:
        studio.ingest_folder(SAMPLE / "food")
        ids = list(studio.table()["id"][:4])
        assert [m.name for m in studio.models()] == [FLASH, PRO, LITE] and studio.model_list.listed
        caps = {m.name: (m.max_references, m.sizes) for m in studio.models()}
        assert caps == {FLASH: (14, ("512", "1K", "2K", "4K")), PRO: (14, ("1K", "2K", "4K")), LITE: (3, ("1K",))}
        with pytest.raises(GenerationError, match="at most 3 reference images; you picked 4"):
            studio.generate("four dishes", reference_ids=ids, model=LITE)
        fake_gemini.push(signed_reply(png_bytes(), b"s"))
        studio.generate("four dishes", reference_ids=ids, model=PRO, image_size="4K")
        (request,) = fake_gemini.requests
        assert len(request.inline()) == 4 and request.image_size() == "4K"
        (attempt,) = studio.history()  # the refused 4-on-Flash request was never an attempt: nothing could be paid
        assert (attempt.model, attempt.cost_usd) == (PRO, pytest.approx(0.24))
        assert len(fake_gemini.model_lists) == 1  # asked once, remembered
    finally:
        studio.close()


def test_without_a_model_list_the_catalogue_is_offered(flash_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.list_error = error_reply(403, "PERMISSION_DENIED", "This key may not list models.")
    names = [m.name for m in flash_studio.models()]
    assert names == [FLASH, PRO, LITE] and not flash_studio.model_list.listed  # nothing shut down is offered
    assert "did not list its models" in flash_studio.model_choice().reason
    fake_gemini.models = [PRO]  # the API still answers for Pro only: Flash has vanished while in use
    with pytest.raises(ModelUnavailable, match=f"no longer serves {FLASH}"):
        flash_studio.generate("a banana")


# -- the command line ------------------------------------------------------------------------------
def test_cli_generate_refine_history_sessions(fake_gemini: FakeGemini, tmp_path: Path, cli) -> None:
    env = {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": fake_gemini.base_url, "GEMINI_MODEL": PRO}
    data = tmp_path / "data"
    fake_gemini.push(signed_reply(png_bytes(color=(1, 2, 3)), b"cli-sig"), signed_reply(png_bytes(color=(4, 5, 6)), b"x"))
    made = cli(["generate", "a paper boat", "--size", "2K", "--json"], data, **env)
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    session, (v1,) = out["session"], out["versions"]
    assert v1["label"] == "v1" and Path(v1["path"]).is_file()

    refined = cli(["refine", session[:8], "make it red", "--from", "v1"], data, **env)
    assert refined.returncode == 0, refined.stderr
    lines = refined.stdout.splitlines()
    assert lines[0] == f"session {session}" and lines[1].startswith("v2 ")
    assert fake_gemini.requests[-1].signatures() == [b"cli-sig"] and fake_gemini.requests[-1].image_size() == "2K"

    history = json.loads(cli(["history", "--json"], data, **env).stdout)
    assert [a["outcome"] for a in history["attempts"]] == ["ok", "ok"] and history["today"] == pytest.approx(0.268)
    listed = cli(["sessions"], data, **env).stdout
    assert session in listed and "2 versions" in listed
    shown = cli(["sessions", session], data, **env).stdout
    assert "v2" in shown and "from v1" in shown and "'make it red'" in shown

    broke = cli(["refine", "nope", "x"], data, **env)
    assert broke.returncode == 1 and "is not a session here" in broke.stderr and KEY not in broke.stderr


# -- the API -----------------------------------------------------------------------------------------
def test_api_refine_sessions_history_models(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    fake_gemini.models = [FLASH, PRO]
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    fake_gemini.push(image_reply(png_bytes(color=(9, 9, 9))), image_reply(png_bytes(color=(8, 8, 8))))
    try:
        with running_app(studio) as url:
            client = Client(url, verbose=False)
            assert [m["name"] for m in client.predict(api_name="/models")] == [FLASH, PRO]
            made = client.predict("a kite", [], "16:9", 1, FLASH, "", "", api_name="/generate")
            refined = client.predict(made["session_id"], "make it fly higher", "", 1, api_name="/refine")
            assert refined["session_id"] == made["session_id"] and len(refined["version_ids"]) == 1
            assert fake_gemini.requests[-1].aspect_ratio() == "16:9" and fake_gemini.requests[-1].roles() == ["user", "model", "user"]
            session = client.predict(made["session_id"], api_name="/session")
            assert [v["seq"] for v in session["versions"]] == [1, 2]
            assert session["versions"][1]["parent_id"] == made["version_ids"][0]
            assert client.predict(5, api_name="/sessions")[0]["id"] == made["session_id"]
            history = client.predict(10, "", "", api_name="/history")
            assert [a["outcome"] for a in history["attempts"]] == ["ok", "ok"] and history["budget"] is None
            saved = client.predict(refined["version_ids"], api_name="/save_versions")
            assert len(saved) == 1 and studio.stats()["by_source"] == {"generated": 1}
    finally:
        studio.close()


def test_the_edit_this_hook_opens_a_session_on_the_generate_tab(flash_studio: Studio, fake_gemini: FakeGemini) -> None:
    """What the Library's asset page will call: ``edit(asset_id, request)`` returns the Generate tab's new state."""
    from types import SimpleNamespace

    from ui.common import md_escape
    from ui.generate import edit_asset_handler

    flash_studio.ingest_folder(SAMPLE / "food")
    asset = flash_studio.store.get([flash_studio.table().iloc[0]["id"]])[0]
    session_id, version_ids, current, strip, view, reply, save, save_all, box, button, prompt = edit_asset_handler(
        flash_studio)(asset.id, SimpleNamespace(username="ana"))
    assert prompt == ""  # the last session's prompt is not this edit's
    session, (original,) = flash_studio.open_session(session_id)
    assert (session.user, session.base_asset_id, version_ids, current) == ("ana", asset.id, [original.id], original.id)
    assert view.value["path"].endswith(asset.path.split("/")[-1]) and md_escape(asset.filename) in reply
    assert not save.interactive and button.interactive and "Refine original" in box.label  # already in the library
    assert fake_gemini.requests == []  # opening costs nothing


def test_generate_in_an_edit_this_session_sends_the_image_being_edited(flash_studio: Studio,
                                                                       fake_gemini: FakeGemini) -> None:
    flash_studio.ingest_folder(SAMPLE / "food")
    asset = flash_studio.store.get([flash_studio.table().iloc[0]["id"]])[0]
    session = flash_studio.start_session(base_asset_id=asset.id)
    fake_gemini.push(image_reply(png_bytes()))
    made = flash_studio.generate("the same dish on a picnic blanket", session_id=session.id)  # Generate, not Refine
    (request,) = fake_gemini.requests
    assert len(request.inline()) == 1 and [a.id for a in made.result.references] == [asset.id]  # the product is sent

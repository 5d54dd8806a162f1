"""Today's Gemini: the model comes from what the API lists, never a constant; vanished models are one sentence
with a way on; long conversations go through the Files API. Real SDK against the fake server on loopback."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.core import GenerationError, ModelUnavailable
from rag.generation import ModelList
from rag.generation.gemini import GeminiGenerator
from rag.generation.gemini_files import MAX_REQUEST_BYTES
from rag.generation.models import CATALOGUE, ListedModel, current_models, model_info, retired_models
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import TODAY, FakeGemini, Recorded, Reply, error_reply, signed_reply

KEY = "models-test-key-5d1"
FLASH, PRO, LITE = "gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-lite-image"
RETIRED = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview")


def noise_png(side: int, seed: int) -> bytes:
    """A PNG that does not compress: ``side`` 820 is about 2 MB, a real 1K-2K image's size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def studio_for(tmp_path: Path, embedder, fake: FakeGemini, **changes: object) -> Studio:
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake.base_url, gemini_retries=0, **changes)
    return Studio(settings, embedder=embedder)


# -- the catalogue and the choice ---------------------------------------------------------------------
def test_the_catalogue_knows_what_google_shut_down() -> None:
    today = date(2026, 12, 6)
    assert [m.name for m in current_models(today)] == [FLASH, PRO, LITE]
    assert {m.name: (m.shutdown, m.replacement) for m in retired_models(today)} == {
        "gemini-3.1-flash-image-preview": ("2026-06-25", FLASH), "gemini-3-pro-image-preview": ("2026-06-25", PRO),
        "gemini-2.5-flash-image": ("2026-10-02", FLASH)}
    assert not model_info("gemini-3-pro-image-preview").retired(date(2026, 6, 24))  # the day before, still in service
    dated = model_info("gemini-3-pro-image-001")  # a dated release: its family's caps, and not retired
    assert (dated.max_references, dated.sizes, dated.retired(today)) == (14, ("1K", "2K", "4K"), False)
    assert all(m.released for m in CATALOGUE) and MAX_REQUEST_BYTES == 100 * 2**20


def lister(*names: str) -> ModelList:
    return ModelList(lambda: [ListedModel(n, "", ("generateContent",)) for n in names], caption="auto")


def test_auto_prefers_ga_flash_then_pro_then_lite_then_anything_new_then_previews() -> None:
    assert lister(PRO, FLASH, "gemini-3.5-flash").choice().model.name == FLASH
    assert lister(LITE, PRO).choice().model.name == PRO
    assert lister(LITE, "gemini-9-flash-image-preview").choice().model.name == LITE
    assert lister("gemini-9-flash-image-preview", "gemini-4-flash-image").choice().model.name == "gemini-4-flash-image"
    only_retired = lister("gemini-2.5-flash-image")  # the API still lists it; Google has shut it down
    assert only_retired.all() == [] or only_retired.all()[0].name != "gemini-2.5-flash-image"
    assert only_retired.choice().model.name == FLASH
    assert "chosen automatically" in lister(FLASH).choice().reason


def test_captions_auto_picks_the_newest_flash_lite_text_model() -> None:
    listed = lister(FLASH, "gemini-2.5-flash-lite", "gemini-3.1-flash-lite", "gemini-3.5-flash", "gemini-3.1-flash-image")
    assert listed.caption_model() == "gemini-3.1-flash-lite"
    assert lister(FLASH, "gemini-3.5-flash").caption_model() == "gemini-3.5-flash"
    assert ModelList(lambda: [], caption="").caption_model() == ""  # off unless asked


@pytest.mark.parametrize("name", ["gemini-x/../y", "tunedModels/mine", "gemini\nflash", "x" * 200])
def test_a_model_name_is_checked_before_the_sdk_sees_it(name: str) -> None:
    with pytest.raises(GenerationError, match="is not a Gemini model name"):
        lister(FLASH).usable(name)


# -- the app on today's API -----------------------------------------------------------------------------
def test_default_settings_generate_on_nano_banana_2(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    studio = studio_for(tmp_path, embedder, fake_gemini)
    try:
        assert studio.settings.gemini_model == "auto"
        fake_gemini.push(signed_reply(noise_png(8, 1), b"s"))
        made = studio.generate("a paper boat")
        assert made.result.model == FLASH and fake_gemini.requests[0].model == FLASH
        (attempt,) = studio.history()
        assert (attempt.model, attempt.cost_usd) == (FLASH, pytest.approx(0.067))  # the resolved model's price
        enabled, why = studio.generation_status()
        assert enabled and "Nano Banana 2 (gemini-3.1-flash-image), chosen automatically" in why
    finally:
        studio.close()


def test_without_the_preferred_model_the_next_one_is_used(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    fake_gemini.models = [PRO]
    studio = studio_for(tmp_path, embedder, fake_gemini)
    try:
        fake_gemini.push(signed_reply(noise_png(8, 1), b"s"))
        assert studio.generate("a paper boat").result.model == PRO
        assert [r.model for r in fake_gemini.requests] == [PRO]
    finally:
        studio.close()


def test_when_listing_fails_the_catalogue_chooses(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    fake_gemini.list_error = error_reply(403, "PERMISSION_DENIED", "The caller may not list models.")
    studio = studio_for(tmp_path, embedder, fake_gemini)
    try:
        fake_gemini.push(signed_reply(noise_png(8, 1), b"s"))
        assert studio.generate("a paper boat").result.model == FLASH
        assert not studio.model_list.listed and "did not list its models" in studio.model_choice().reason
    finally:
        studio.close()


@pytest.mark.parametrize(("named", "said"), [
    ("gemini-2.5-flash-image", "gemini-2.5-flash-image was shut down by Google on 2026-10-02; "
                               "use Nano Banana 2 (gemini-3.1-flash-image) instead."),
    ("gemini-4-ultra-image", f"Gemini does not offer gemini-4-ultra-image to this API key; it offers {FLASH}, {PRO}."),
])
def test_a_named_model_that_cannot_be_used_is_refused_before_any_request(
        tmp_path: Path, embedder, fake_gemini: FakeGemini, named: str, said: str) -> None:
    studio = studio_for(tmp_path, embedder, fake_gemini, gemini_model=named)
    try:
        with pytest.raises(ModelUnavailable) as err:
            studio.generate("a paper boat")
        assert str(err.value) == said and studio.model_list.note() == said
        assert fake_gemini.requests == [] and studio.history() == []  # nothing sent, nothing that could be paid
        assert studio.model_list.default_choice() == FLASH  # the pickers start on a model that works
    finally:
        studio.close()


def test_a_model_that_vanishes_in_use_is_re_resolved(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    studio = studio_for(tmp_path, embedder, fake_gemini)
    try:
        fake_gemini.push(signed_reply(noise_png(8, 1), b"s"))
        studio.generate("one")
        fake_gemini.models = [PRO]  # Google turns Flash off between two clicks; the app's list is an hour old
        with pytest.raises(ModelUnavailable, match=f"no longer serves {FLASH}.*use Nano Banana 2"):
            studio.generate("two")
        fake_gemini.push(signed_reply(noise_png(8, 2), b"s"))
        assert studio.generate("three").result.model == PRO  # asked the API again, and moved on
        assert len(fake_gemini.model_lists) == 2
    finally:
        studio.close()


def test_a_session_whose_model_vanished_continues_on_a_new_branch(tmp_path: Path, embedder,
                                                                  fake_gemini: FakeGemini) -> None:
    studio = studio_for(tmp_path, embedder, fake_gemini)
    first, second = noise_png(16, 1), noise_png(16, 2)
    try:
        fake_gemini.push(signed_reply(first, b"flash-1"), signed_reply(second, b"flash-2"))
        v1 = studio.generate("a red cape").versions[0]
        v2 = studio.refine(v1.session_id, "gold trim").versions[0]
        fake_gemini.models = [PRO]
        studio.model_list.forget()  # the list an hour later
        with pytest.raises(ModelUnavailable) as err:
            studio.refine(v1.session_id, "now blue")
        assert str(err.value).startswith(f"v2 was made with {FLASH}, which Gemini no longer serves. Continue on "
                                          f"Nano Banana Pro ({PRO}): a new branch starts from v2's image")
        assert err.value.replacement == PRO and len(fake_gemini.requests) == 2
        assert studio.replacement_for(FLASH).name == PRO

        fake_gemini.push(signed_reply(noise_png(16, 3), b"pro-1"), signed_reply(noise_png(16, 4), b"pro-2"))
        v3 = studio.refine(v1.session_id, "now blue", continue_on=err.value.replacement).versions[0]
        sent = fake_gemini.requests[-1]
        assert sent.model == PRO and sent.roles() == ["user"] and sent.signatures() == []  # no Flash signatures
        assert len(sent.inline()) == 1 and [r["id"] for r in v3.references] == [v2.image_id]  # v2's image, sent
        assert (v3.parent_id, v3.model, v3.label) == (v2.id, PRO, "v3")
        studio.refine(v1.session_id, "darker")  # goes on with Pro: the conversation since the switch
        later = fake_gemini.requests[-1]
        assert later.roles() == ["user", "model", "user"] and later.signatures() == [b"pro-1"]
        _, versions = studio.open_session(v1.session_id)
        assert [v.label for v in versions] == ["v1", "v2", "v3", "v4"]  # nothing made before is lost or hidden
    finally:
        studio.close()


def test_a_batch_campaign_on_a_retired_model_is_refused_at_submit(tmp_path: Path, embedder,
                                                                  fake_gemini: FakeGemini) -> None:
    studio = studio_for(tmp_path, embedder, fake_gemini)
    try:
        studio.ingest_folder(SAMPLE / "food")
        plan = studio.plan_campaign("An ad photo of {name}", folder="food", batch=True, name="Retired", limit=2)
        campaign = studio.start_campaign(plan)
        fake_gemini.models = [PRO]
        studio.model_list.forget()
        with pytest.raises(ModelUnavailable, match=f"Gemini does not offer {FLASH}"):
            studio.submit_campaign_batch(campaign.id)
        assert fake_gemini.requests == [] and fake_gemini.batches == {} and studio.history() == []
    finally:
        studio.close()


# -- the command line --------------------------------------------------------------------------------
def test_cli_generates_on_todays_model_and_lists_models(tmp_path: Path, fake_gemini: FakeGemini, cli) -> None:
    env = {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": fake_gemini.base_url}  # GEMINI_MODEL unset
    data = tmp_path / "data"
    ref = tmp_path / "ref.png"
    ref.write_bytes(noise_png(32, 7))
    fake_gemini.push(signed_reply(noise_png(8, 1), b"s"))
    made = cli(["generate", "a paper boat on a pond", "--ref", str(ref), "--json"], data, **env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["model"] == FLASH
    assert [r.model for r in fake_gemini.requests] == [FLASH] and len(fake_gemini.requests[0].inline()) == 1
    assert not any(name in r.path for r in fake_gemini.requests for name in RETIRED)

    listed = json.loads(cli(["models", "--json", "--all"], data, **env).stdout)
    assert listed["default"]["model"] == FLASH and listed["listed_by_api"]
    assert [m["name"] for m in listed["models"]] == TODAY and listed["models"][0]["default"]
    assert listed["models"][0]["batch_prices"]["1K"] == pytest.approx(0.0335)
    assert {m["name"] for m in listed["retired"]} == set(RETIRED)
    shown = cli(["models", "--all"], data, **env).stdout
    assert "chosen automatically" in shown and "shut down 2026-10-02" in shown

    refused = cli(["generate", "x"], data, **env, GEMINI_MODEL="gemini-2.5-flash-image")
    assert refused.returncode != 0 and "shut down by Google on 2026-10-02" in refused.stderr
    assert len(fake_gemini.requests) == 1


# -- long conversations ------------------------------------------------------------------------------
class Conversation:
    """The fake's answers for a long session: a new image each turn, and what each request carried."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.seen: list[tuple[int, int, int]] = []  # (bytes, earlier images carried, signatures)

    def __call__(self, request: Recorded) -> Reply:
        images = len(request.inline()) + len(request.file_uris())
        self.seen.append((len(request.raw), images, len(request.signatures())))
        turn = len(self.seen)
        return signed_reply(noise_png(self.side, turn), f"sig-{turn}".encode())


def test_a_30_turn_session_with_2_mb_images_carries_the_whole_branch(tmp_path: Path, embedder) -> None:
    limit = 20 * 2**20  # the inline limit older pages documented (and some gateways keep): files carry the rest
    with FakeGemini(keep=2) as fake:
        settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake.base_url, gemini_retries=0)
        gen = GeminiGenerator(settings, max_request_bytes=limit)
        studio = Studio(settings, embedder=embedder, generator=gen)
        fake.route = conversation = Conversation(side=820)
        try:
            session = studio.generate("a red cape").session_id
            for turn in range(2, 31):
                assert studio.refine(session, f"change {turn}").versions
            assert len(studio.open_session(session)[1]) == 30
        finally:
            studio.close()
    sizes, carried, signatures = zip(*conversation.seen)
    assert len(sizes) == 30 and max(sizes) <= limit and 2 * 2**20 < min(sizes[1:])
    assert list(carried) == list(range(30)) and list(signatures) == list(range(30))  # every earlier image, each turn
    assert 0 < gen.files.uploads == len(fake.files) <= 29  # each earlier image uploaded once


def test_an_expired_upload_is_uploaded_again(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    settings = test_settings(tmp_path, gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    gen = GeminiGenerator(settings, max_request_bytes=80_000)
    studio = Studio(settings, embedder=embedder, generator=gen)
    fake_gemini.route = Conversation(side=110)  # ~48 KB images: two inline, the third goes by file
    try:
        session = studio.generate("a red cape").session_id
        studio.refine(session, "two")
        studio.refine(session, "three")
        (uri,) = fake_gemini.requests[-1].file_uris()
        fake_gemini.expire(f"files/{uri.rsplit('/', 1)[-1]}")  # 48 hours later, or deleted
        studio.refine(session, "four")
        gone, again = fake_gemini.requests[-2:]
        assert uri in gone.file_uris() and uri not in again.file_uris() and again.file_uris()
        assert again.signatures() == [b"sig-1", b"sig-2", b"sig-3"] and gen.files.uploads >= 2
        assert [a.outcome for a in studio.history()] == ["ok"] * 4  # the refused send cost nothing and said nothing
    finally:
        studio.close()

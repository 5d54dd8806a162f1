"""rag.generation.base, rag.generation.gemini and rag.generation.provenance against a fake Gemini server: the real google-genai SDK
over real HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import time
import traceback
from pathlib import Path

import pytest
from PIL import Image

from rag.core import Asset, Settings
from rag.core.errors import (
    GenerationBlocked,
    GenerationDisabled,
    GenerationError,
    GenerationTimeout,
    ModelUnavailable,
    RateLimited,
)
from rag.generation import ModelList, make_generator
from rag.generation.base import GeneratedImage, GenerationResult, ImageGenerator
from rag.generation.gemini import MAX_REFERENCE_BYTES, MAX_REFERENCE_SIDE, GeminiGenerator
from rag.generation.models import estimate_cost, max_references_for, model_info
from rag.generation.provenance import PROVENANCE_KEY, read_provenance, save_result
from rag.media import encode_reference
from tests.fake_gemini import (
    TODAY,
    FakeGemini,
    Reply,
    blocked_prompt_reply,
    candidate_reply,
    error_reply,
    finish_reply,
    image_part,
    image_reply,
    png_bytes,
    rate_limit_reply,
    text_reply,
)

KEY = "AIzaFAKE-test-key-0123456789abcdef"
FLASH = "gemini-3.1-flash-image"
MAX_PIXELS = Settings().max_image_pixels


@pytest.fixture
def settings(fake_gemini: FakeGemini, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        outputs_dir=tmp_path / "outputs",
        gemini_api_key=KEY,
        gemini_model=FLASH,
        gemini_base_url=fake_gemini.base_url,
        gemini_timeout_s=10.0,
        gemini_retries=2,
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def gen(settings: Settings, sleeps: list[float]) -> GeminiGenerator:
    return GeminiGenerator(settings, sleep=sleeps.append)


def make_asset(
    folder: Path, name: str, size: tuple[int, int] = (64, 48), color: tuple[int, ...] = (10, 120, 200), **save: object
) -> Asset:
    path = folder / name
    mode = "RGBA" if len(color) == 4 else "RGB"
    Image.new(mode, size, color).save(path, **save)  # type: ignore[arg-type]
    data = path.read_bytes()
    return Asset(
        id=hashlib.sha256(data).hexdigest(),
        path=str(path),
        filename=name,
        folder=str(folder),
        width=size[0],
        height=size[1],
        format=path.suffix.lstrip(".").upper(),
        bytes=len(data),
        created=0.0,
        source="upload",
    )


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def reference(path: str | Path) -> tuple[bytes, str]:
    """What GeminiGenerator sends for a reference file (re-encoded, within the settings' pixel limit)."""
    return encode_reference(path, max_side=MAX_REFERENCE_SIDE, max_bytes=MAX_REFERENCE_BYTES, max_pixels=MAX_PIXELS)


# ----------------------------------------------------------------------------- happy paths


def test_one_image(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    png = png_bytes((16, 16))
    fake_gemini.push(image_reply(png))
    result = gen.generate("a banana on a desk", [])
    assert isinstance(gen, ImageGenerator)
    assert [(i.data, i.mime_type) for i in result.images] == [(png, "image/png")]
    assert result.text == ""
    assert (result.prompt, result.model, result.aspect_ratio, result.references) == ("a banana on a desk", FLASH, "1:1", [])
    assert abs(result.created - time.time()) < 60
    assert len(fake_gemini.requests) == 1


def test_two_images_and_text_skip_thought_drafts(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    a, b, draft = png_bytes(color=(1, 2, 3)), png_bytes(color=(4, 5, 6)), png_bytes(color=(7, 8, 9))
    parts = [
        {"text": "thinking...", "thought": True},
        image_part(draft, thought=True),
        {"text": "Here you go."},
        image_part(a),
        image_part(b, "image/jpeg"),
    ]
    fake_gemini.push(candidate_reply(parts))
    result = gen.generate("two bananas", [])
    assert [(i.data, i.mime_type) for i in result.images] == [(a, "image/png"), (b, "image/jpeg")]
    assert result.text == "Here you go."


def test_n_makes_n_calls(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(image_reply(png_bytes(color=(1, 1, 1))), image_reply(png_bytes(color=(2, 2, 2))))
    result = gen.generate("bananas", [], n=2)
    assert len(result.images) == 2 and len(fake_gemini.requests) == 2
    with pytest.raises(GenerationError, match="between 1 and"):
        gen.generate("bananas", [], n=50)


def test_partial_failure_keeps_paid_images(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(image_reply(png_bytes()), finish_reply("IMAGE_SAFETY"))
    result = gen.generate("bananas", [], n=2)
    assert len(result.images) == 1
    assert "Stopped after 1 of 2" in result.text and "IMAGE_SAFETY" in result.text


def test_text_only_reply(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(text_reply("I can describe it, but which banana?"))
    result = gen.generate("banana", [])
    assert result.images == [] and result.text == "I can describe it, but which banana?"


def test_no_image_finish_with_text_returns_reply(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(finish_reply("NO_IMAGE", text="I could not draw that."))
    result = gen.generate("banana", [])
    assert result.images == [] and result.text == "I could not draw that."


def test_no_image_and_no_text_is_an_error(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(finish_reply("NO_IMAGE"))
    with pytest.raises(GenerationError, match="neither an image nor text") as err:
        gen.generate("banana", [])
    assert not isinstance(err.value, GenerationBlocked)


# ----------------------------------------------------------------------------- refusals


def test_blocked_prompt(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(blocked_prompt_reply("PROHIBITED_CONTENT"))
    with pytest.raises(GenerationBlocked, match="PROHIBITED_CONTENT"):
        gen.generate("something bad", [])


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT"])
def test_safety_finish_is_blocked(fake_gemini: FakeGemini, gen: GeminiGenerator, reason: str) -> None:
    # Even if the model attached an image, a safety finish must not hand it out.
    fake_gemini.push(candidate_reply([image_part(png_bytes())], finish=reason))
    with pytest.raises(GenerationBlocked, match=reason):
        gen.generate("banana", [])


# ----------------------------------------------------------------------------- retries / timeouts


def test_429_honours_retry_info_then_succeeds(
    fake_gemini: FakeGemini, gen: GeminiGenerator, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_gemini.push(rate_limit_reply("2.5s"), image_reply(png_bytes()))
    result = gen.generate("banana", [])
    assert len(result.images) == 1
    assert len(fake_gemini.requests) == 2
    assert sleeps == [2.5]
    assert KEY not in caplog.text


def test_retry_info_delay_is_capped(fake_gemini: FakeGemini, settings: Settings, sleeps: list[float]) -> None:
    gen = GeminiGenerator(settings, sleep=sleeps.append, max_delay=5.0)
    fake_gemini.push(rate_limit_reply("3600s"), image_reply(png_bytes()))
    gen.generate("banana", [])
    assert sleeps == [5.0]


def test_429_forever_is_rate_limited(fake_gemini: FakeGemini, gen: GeminiGenerator, sleeps: list[float]) -> None:
    fake_gemini.always(rate_limit_reply(None))
    with pytest.raises(RateLimited, match="after 3 attempts"):
        gen.generate("banana", [])
    assert len(fake_gemini.requests) == 3  # gemini_retries=2
    assert sleeps == [1.0, 2.0]  # exponential backoff


def test_500_every_time_is_bounded(fake_gemini: FakeGemini, gen: GeminiGenerator, sleeps: list[float]) -> None:
    fake_gemini.always(error_reply(500, "INTERNAL", "An internal error has occurred."))
    with pytest.raises(GenerationError, match="server error") as err:
        gen.generate("banana", [])
    assert not isinstance(err.value, RateLimited)
    assert len(fake_gemini.requests) == 3
    assert sleeps == [1.0, 2.0]


def test_503_then_success(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.push(error_reply(503, "UNAVAILABLE", "The model is overloaded."), image_reply(png_bytes()))
    assert len(gen.generate("banana", []).images) == 1


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (error_reply(400, "INVALID_ARGUMENT", "Request contains an invalid argument."), "rejected the request"),
        (error_reply(404, "NOT_FOUND", "models/x is not found"), "no longer serves"),
        (error_reply(403, "PERMISSION_DENIED", "Permission denied."), "rejected the app's API key"),
    ],
)
def test_client_errors_are_not_retried(
    fake_gemini: FakeGemini, gen: GeminiGenerator, reply: Reply, needle: str
) -> None:
    fake_gemini.push(reply)
    with pytest.raises(GenerationError, match=needle):
        gen.generate("banana", [])
    assert len(fake_gemini.requests) == 1


def test_slow_reply_times_out(fake_gemini: FakeGemini, settings: Settings, sleeps: list[float]) -> None:
    gen = GeminiGenerator(settings.with_(gemini_timeout_s=1.0), sleep=sleeps.append)
    # The reply would come after a minute (the fake's stop cuts that wait short): the call can only have
    # ended by giving up itself, and no reply had been sent when it did.
    fake_gemini.push(Reply(200, {"candidates": []}, delay=60.0))
    with pytest.raises(GenerationTimeout, match="GEMINI_TIMEOUT_S"):
        gen.generate("banana", [])
    assert fake_gemini.answered == []
    assert len(fake_gemini.requests) == 1 and sleeps == []  # a timeout is not retried


# ----------------------------------------------------------------------------- the request


def test_request_wire_format(fake_gemini: FakeGemini, gen: GeminiGenerator, tmp_path: Path) -> None:
    photo = make_asset(tmp_path, "photo.jpg", size=(2000, 1000), color=(200, 30, 30), quality=95)
    logo = make_asset(tmp_path, "logo.png", size=(40, 30), color=(0, 255, 0, 128))
    fake_gemini.push(image_reply(png_bytes()))
    result = gen.generate("put the logo on the photo", [photo, logo], aspect_ratio="16:9")
    assert result.references == [photo, logo]

    (req,) = fake_gemini.requests
    assert req.method == "POST"
    assert req.path == f"/v1beta/models/{FLASH}:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert req.texts() == ["put the logo on the photo"]
    assert req.aspect_ratio() == "16:9"
    modalities = req.generation_config().get("responseModalities") or req.generation_config()["response_modalities"]
    assert set(modalities) == {"IMAGE", "TEXT"}

    sent = req.inline()
    assert [mime for mime, _ in sent] == ["image/jpeg", "image/png"]
    assert [data for _, data in sent] == [reference(photo.path)[0], reference(logo.path)[0]]
    assert decode(sent[0][1]).size == (1536, 768)  # downscaled, aspect kept
    small = decode(sent[1][1])
    assert small.size == (40, 30) and small.mode == "RGBA" and small.getpixel((0, 0)) == (0, 255, 0, 128)
    assert KEY not in json.dumps(req.body)


def test_reference_exif_orientation_and_opaque_alpha(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (40, 20), (0, 0, 255)).save(path, exif=exif)
    data, mime = reference(path)
    assert mime == "image/jpeg" and decode(data).size == (20, 40)

    opaque = tmp_path / "opaque.png"
    Image.new("RGBA", (10, 10), (1, 2, 3, 255)).save(opaque)
    assert reference(opaque)[1] == "image/jpeg"  # alpha channel but nothing transparent


def test_api_version_in_path(fake_gemini: FakeGemini, settings: Settings) -> None:
    gen = GeminiGenerator(settings.with_(gemini_api_version="v1", gemini_model="gemini-3-pro-image"))
    fake_gemini.push(image_reply(png_bytes()))
    gen.generate("banana", [])
    assert fake_gemini.requests[0].path == "/v1/models/gemini-3-pro-image:generateContent"


def test_too_many_references(fake_gemini: FakeGemini, gen: GeminiGenerator, tmp_path: Path) -> None:
    refs = [make_asset(tmp_path, f"r{i}.png", color=(i, i, i)) for i in range(15)]
    with pytest.raises(GenerationError, match="at most 14 reference images"):
        gen.generate("banana", refs)
    assert fake_gemini.requests == []
    assert (max_references_for(FLASH), max_references_for("gemini-2.5-flash-image")) == (14, 3)
    assert max_references_for("models/gemini-3-pro-image") == 14 and max_references_for("mystery") == 3


def test_missing_reference_file(fake_gemini: FakeGemini, gen: GeminiGenerator, tmp_path: Path) -> None:
    ref = make_asset(tmp_path, "gone.png")
    Path(ref.path).unlink()
    with pytest.raises(GenerationError, match="gone.png is missing"):
        gen.generate("banana", [ref])
    assert fake_gemini.requests == []


def test_bad_aspect_ratio_and_empty_prompt(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    with pytest.raises(GenerationError, match="aspect ratio"):
        gen.generate("banana", [], aspect_ratio="7:3")
    with pytest.raises(GenerationError, match="prompt"):
        gen.generate("   ", [])
    assert fake_gemini.requests == []


# ----------------------------------------------------------------------------- key handling


def test_no_key_disables_generation(tmp_path: Path) -> None:
    for s in (Settings(), Settings(gemini_api_key="   ")):
        with pytest.raises(GenerationDisabled, match="no Gemini API key yet") as off:
            make_generator(s)
        assert off.value.setting == "GEMINI_API_KEY" and "GEMINI_API_KEY" not in str(off.value)
        with pytest.raises(GenerationDisabled):
            GeminiGenerator(s)


@pytest.mark.parametrize(
    "reply",
    [
        error_reply(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}. Please pass a valid API key."),
        error_reply(500, "INTERNAL", f"boom at https://x/models?key={KEY}"),
        rate_limit_reply(None),
        blocked_prompt_reply("SAFETY"),
        Reply(200, {"candidates": []}, delay=4.0),
    ],
    ids=["400-echo", "500-url", "429", "blocked", "timeout"],
)
def test_key_never_in_errors(
    fake_gemini: FakeGemini, settings: Settings, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gen = GeminiGenerator(settings.with_(gemini_timeout_s=1.0, gemini_retries=1), sleep=lambda s: None)
    fake_gemini.always(reply)
    with pytest.raises(GenerationError) as err:
        gen.generate("banana", [])
    shown = "".join(traceback.format_exception(err.value)) + repr(err.value) + caplog.text
    assert KEY not in shown
    assert KEY not in repr(settings)
    if reply.status in (400, 500):  # these two echo the key; we keep the message, minus the key
        assert "[redacted]" in str(err.value)


# ----------------------------------------------------------------------------- saving


def test_save_result_and_read_provenance(fake_gemini: FakeGemini, gen: GeminiGenerator, tmp_path: Path) -> None:
    ref = make_asset(tmp_path, "ref.png", color=(9, 9, 9))
    png = png_bytes((12, 10), (250, 220, 40))
    fake_gemini.push(image_reply(png, text="A banana, as asked."))
    result = gen.generate("a banana ✨", [ref], aspect_ratio="4:3")
    out = tmp_path / "outputs"

    (path,) = save_result(result, out, max_pixels=MAX_PIXELS)
    data = path.read_bytes()
    assert path.parent == out and path.name == f"a-banana-{hashlib.sha256(data).hexdigest()[:8]}.png"  # readable
    assert [p.name for p in out.iterdir()] == [path.name]  # no temp files left
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (12, 10) and img.convert("RGB").getpixel((0, 0)) == (250, 220, 40)
        chunk = json.loads(img.text[PROVENANCE_KEY])  # a real PNG text chunk

    prov = read_provenance(path)
    assert prov == chunk
    assert prov["prompt"] == "a banana ✨" and prov["model"] == FLASH and prov["aspect_ratio"] == "4:3"
    assert prov["text"] == "A banana, as asked." and prov["created"] == result.created
    assert prov["references"] == [{"id": ref.id, "path": ref.path, "filename": "ref.png"}]
    assert KEY not in data.decode("latin-1")

    assert save_result(result, out, max_pixels=MAX_PIXELS) == [path]  # same content, same name, no duplicate
    assert read_provenance(ref.path) is None
    assert read_provenance(tmp_path / "nope.png") is None


def test_failed_generation_writes_nothing(fake_gemini: FakeGemini, gen: GeminiGenerator, settings: Settings) -> None:
    fake_gemini.push(finish_reply("IMAGE_SAFETY"))
    with pytest.raises(GenerationBlocked):
        save_result(gen.generate("banana", []), settings.outputs_dir, max_pixels=MAX_PIXELS)
    assert not settings.outputs_dir.exists()

    good = GeneratedImage(png_bytes(), "image/png")
    bad = GenerationResult([good, GeneratedImage(b"not an image", "image/png")], "", "p", FLASH, "1:1", [], 0.0)
    with pytest.raises(GenerationError, match="could not be decoded"):
        save_result(bad, settings.outputs_dir, max_pixels=MAX_PIXELS)
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())

    empty = GenerationResult([], "just text", "p", FLASH, "1:1", [], 0.0)
    assert save_result(empty, settings.outputs_dir, max_pixels=MAX_PIXELS) == []


def test_estimate_cost() -> None:
    assert estimate_cost(1, FLASH) == pytest.approx(0.067)
    assert estimate_cost(4, FLASH) == pytest.approx(0.268)
    assert model_info(FLASH).estimate(2, "4K", batch=True) == pytest.approx(0.151)  # Batch mode: half price
    assert estimate_cost(1, "gemini-3-pro-image") > estimate_cost(1, FLASH)
    assert estimate_cost(0, FLASH) == 0.0


def test_unreachable_api_is_a_clear_error(settings: Settings, sleeps: list[float]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gen = GeminiGenerator(settings.with_(gemini_base_url=f"http://127.0.0.1:{port}"), sleep=sleeps.append)
    with pytest.raises(GenerationError, match="Could not reach the Gemini API"):
        gen.generate("banana", [])
    assert sleeps == [1.0, 2.0]


# ----------------------------------------------------------------------------- models, sizes, turns


def test_models_list_keeps_the_image_models_and_their_caps(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.models = ["gemini-4-flash-image", "gemini-2.5-flash-image", "gemini-3-pro-image", FLASH]
    listed = {m.name: m for m in ModelList(gen.models).all()}
    # the preferred first; no text or embedding model; nothing Google has shut down, even when the API lists it
    assert list(listed) == [FLASH, "gemini-3-pro-image", "gemini-4-flash-image"]
    assert (listed[FLASH].max_references, listed[FLASH].sizes) == (14, ("512", "1K", "2K", "4K"))
    assert (listed["gemini-3-pro-image"].max_references, listed["gemini-3-pro-image"].sizes) == (14, ("1K", "2K", "4K"))
    unknown = listed["gemini-4-flash-image"]
    assert not unknown.known and unknown.max_references == 3 and unknown.price() >= listed[FLASH].price()
    assert fake_gemini.requests == [] and len(fake_gemini.model_lists) == 1


def test_sizes_and_ratios_follow_the_model(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    fake_gemini.models = [*TODAY, "gemini-3.1-flash-lite-image"]
    fake_gemini.push(image_reply(png_bytes()), image_reply(png_bytes()), image_reply(png_bytes()))
    gen.generate("banana", [], model="gemini-3-pro-image", image_size="4K")
    gen.generate("banana", [], aspect_ratio="1:8", model="gemini-3.1-flash-image", image_size="512")
    gen.generate("banana", [], model="gemini-3.1-flash-lite-image")
    pro, flash31, lite = fake_gemini.requests
    assert pro.path.endswith("/gemini-3-pro-image:generateContent") and pro.image_size() == "4K"
    assert (flash31.image_size(), flash31.aspect_ratio()) == ("512", "1:8")
    assert lite.image_size() is None  # Flash-Lite Image makes 1K only and is sent no size
    with pytest.raises(GenerationError, match="1:8"):
        gen.generate("banana", [], aspect_ratio="1:8", model="gemini-3-pro-image")  # not a Pro ratio
    with pytest.raises(GenerationError, match="not '8K'"):
        gen.generate("banana", [], model="gemini-3-pro-image", image_size="8K")
    assert len(fake_gemini.requests) == 3
    assert estimate_cost(1, "gemini-3-pro-image", "4K") == pytest.approx(0.24)
    assert estimate_cost(2, "gemini-3-pro-image", "2K") == pytest.approx(0.268)


def test_a_vanished_model_is_one_sentence_naming_the_replacement(fake_gemini: FakeGemini, settings: Settings) -> None:
    gen = GeminiGenerator(settings.with_(gemini_model="gemini-2.0-flash-preview-image-generation"))
    with pytest.raises(ModelUnavailable) as err:
        gen.generate("banana", [])
    assert str(err.value) == ("Gemini no longer serves gemini-2.0-flash-preview-image-generation (404 NOT_FOUND); "
                              "use Nano Banana 2 (gemini-3.1-flash-image) instead.")
    assert err.value.replacement == "gemini-3.1-flash-image"
    assert len(fake_gemini.requests) == 1  # a 404 is not retried


def test_history_goes_first_and_the_reply_comes_back_whole(fake_gemini: FakeGemini, gen: GeminiGenerator) -> None:
    from tests.fake_gemini import signed_reply

    first = png_bytes(color=(10, 20, 30))
    fake_gemini.push(signed_reply(first, b"sig-1", text="A first try."))
    one = gen.generate("a red cape", [], model="gemini-3-pro-image")
    (reply,) = one.replies
    assert [p.get("thought") for p in reply.content["parts"]] == [True, None, None]  # the thought part is kept
    assert reply.content["role"] == "model" and reply.text == "A first try." and len(reply.images) == 1

    fake_gemini.push(image_reply(png_bytes(color=(1, 1, 1))))
    gen.generate("now blue", [], model="gemini-3-pro-image", history=[one.request, reply.content])
    second = fake_gemini.requests[-1]
    assert second.roles() == ["user", "model", "user"]
    assert second.texts() == ["a red cape", "Planning the edit.", "A first try.", "now blue"]
    assert second.signatures() == [b"sig-1"] and [data for _, data in second.inline()] == [first]
    assert set(second.modalities()) == {"IMAGE", "TEXT"} and second.image_size() == "1K"  # config sent again


def test_retries_are_announced(fake_gemini: FakeGemini, gen: GeminiGenerator, sleeps: list[float]) -> None:
    said: list[str] = []
    fake_gemini.push(rate_limit_reply("4s"), error_reply(503, "UNAVAILABLE", "busy"), image_reply(png_bytes()))
    gen.generate("banana", [], notify=said.append)
    assert said == [
        "Gemini is busy (429 RESOURCE_EXHAUSTED); retrying in 4 s (attempt 2 of 3).",
        "Gemini is busy (503 UNAVAILABLE); retrying in 2 s (attempt 3 of 3).",
    ]
    assert sleeps == [4.0, 2.0]


"""Optional captions (CAPTION_MODEL): planned with a cost, sent through the real google-genai SDK to
the fake Gemini server, stored in the record's text and found by word search, recorded in History."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.clip import ClipEmbedder
from rag.core import BananaError
from rag.library.captions import INSTRUCTION, cost_per_image, parse_caption
from rag.studio import Studio
from tests.conftest import test_settings
from tests.fake_gemini import FakeGemini, text_reply
from tests.test_words import distractors, png_with_text

MODEL = "gemini-3.1-flash-lite"  # what CAPTION_MODEL=auto picks from the fake's list


def test_parse_caption_keeps_one_line() -> None:
    assert parse_caption("Description: A red kite.\nTags: kite, red, sky") == "A red kite. Tags: kite, red, sky"
    assert parse_caption("just words") == "just words" and parse_caption("") == ""


def test_captions_are_off_without_a_model(studio: Studio) -> None:
    with pytest.raises(BananaError, match="CAPTION_MODEL"):
        studio.caption_plan()


def test_images_without_words_are_captioned_and_found(tmp_path: Path, embedder: ClipEmbedder, fake_gemini: FakeGemini) -> None:
    settings = test_settings(tmp_path / "data", caption_model="auto", gemini_api_key="AIzaFAKE-key-0123456789",
                             gemini_base_url=fake_gemini.base_url, gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    try:
        distractors(tmp_path / "in", n=3)
        png_with_text(tmp_path / "in" / "worded.png", 7, "Already described")
        studio.ingest_folder(tmp_path / "in")
        chosen = studio.caption_plan()
        assert len(chosen.ids) == 3 and chosen.model == MODEL  # the one with embedded words is left alone
        assert chosen.estimate_usd == pytest.approx(3 * cost_per_image(MODEL)) and "about $" in chosen.summary()
        fake_gemini.push(text_reply("Description: A quokka on a surfboard.\nTags: quokka, surf"),
                         text_reply("Description: Plain noise.\nTags: noise"),
                         text_reply("Description: More noise.\nTags: static"))
        assert studio.caption(chosen) == 3
        sent = fake_gemini.requests[-1]
        assert INSTRUCTION in sent.texts() and len(sent.inline()) == 1 and sent.model == MODEL
        top = studio.search("quokka", k=1)[0]
        assert top.words and top.asset.meta["caption"] == "A quokka on a surfboard. Tags: quokka, surf"
        (attempt,) = studio.history()
        assert attempt.model == MODEL and attempt.outcome == "ok" and attempt.cost_usd == pytest.approx(chosen.estimate_usd)
        assert studio.caption_plan().ids == []
    finally:
        studio.close()

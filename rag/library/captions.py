"""Optional captions from a Gemini text model for images that carry no words (``python -m rag caption``).

Off unless ``CAPTION_MODEL`` and a key are set. The run is planned first (which images, what it
should cost), recorded in History like a generation (the daily budget applies), and each caption
(a one-line description and tags) is stored in the record's ``meta["caption"]``, which word search
reads with the rest of the record's text (:func:`rag.store.words.asset_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rag.core import Asset, BananaError, GenerationError, ImageError, Settings
from rag.generation import ImageGenerator, SessionStore
from rag.store import VectorStore, asset_from_row

INSTRUCTION = ("Describe this image for an asset library search in one line, then give up to 8 short tags. "
               "Answer exactly as two lines:\nDescription: ...\nTags: tag, tag, tag")
# USD per million tokens (input, output), from Google's price list. All four are shut down now
# (https://ai.google.dev/gemini-api/docs/deprecations, checked 2026-12-07), and today's Flash-Lite prices could not be
# read on Google's own pricing page from here; so a model not listed is priced at the dearest rate listed, which
# overstates a Flash-Lite caption's cost: the budget refuses early rather than late.
PRICES = {"gemini-2.5-flash-lite": (0.10, 0.40), "gemini-2.5-flash": (0.30, 2.50), "gemini-2.0-flash": (0.10, 0.40),
          "gemini-2.5-pro": (1.25, 10.0)}
TOKENS_IN, TOKENS_OUT = 258 + 60, 80  # an image of at most 768 px, the instruction; a two-line answer
_TAGS = re.compile(r"^\s*tags\s*:\s*", re.IGNORECASE)
_DESCRIPTION = re.compile(r"^\s*description\s*:\s*", re.IGNORECASE)


def cost_per_image(model: str) -> float:
    """Estimated USD to caption one image with ``model``."""
    name = model.removeprefix("models/")
    price_in, price_out = next((p for m, p in PRICES.items() if name.startswith(m)), max(PRICES.values()))
    return (TOKENS_IN * price_in + TOKENS_OUT * price_out) / 1e6


def needs_caption(asset: Asset) -> bool:
    """No words besides its file name: no embedded text, tags, prompt or caption."""
    return not any(asset.meta.get(k) for k in ("embedded", "tags", "prompt", "caption"))


@dataclass
class CaptionPlan:
    model: str
    ids: list[str] = field(default_factory=list)

    @property
    def estimate_usd(self) -> float:
        return len(self.ids) * cost_per_image(self.model)

    def summary(self) -> str:
        return (f"{len(self.ids)} images have no words; captioning them with {self.model} costs about "
                f"${self.estimate_usd:.4f}.")


def plan(store: VectorStore, model: str, limit: int = 0) -> CaptionPlan:
    """Which images a caption run with ``model`` would describe, and its estimated cost ("" model: captions are off)."""
    if not model:
        raise BananaError("Captions are off: set CAPTION_MODEL to auto (the newest Flash-Lite text model your key "
                          "can use) or to a Gemini text model, and GEMINI_API_KEY, then run `python -m rag caption`.")
    found = CaptionPlan(model=model)
    for rows in store.iter_records():
        found.ids += [a.id for a in map(asset_from_row, rows) if needs_caption(a)]
    found.ids = found.ids[:limit] if limit > 0 else found.ids
    return found


def parse_caption(text: str) -> str:
    """"Description: a red car. / Tags: car, red" -> "a red car. Tags: car, red" (one line)."""
    description, tags = "", ""
    for line in text.splitlines():
        if _TAGS.match(line):
            tags = _TAGS.sub("", line).strip()
        elif line.strip() and not description:
            description = _DESCRIPTION.sub("", line).strip()
    return " ".join(x for x in (description, f"Tags: {tags}" if tags else "") if x)[:1000]


def run(chosen: CaptionPlan, store: VectorStore, generator: ImageGenerator, sessions: SessionStore, settings: Settings,
        *, user: str = "", progress: Callable[[int, int], None] | None = None) -> int:
    """Caption the planned images, one request each; recorded in History as one attempt. Returns how many."""
    each = cost_per_image(chosen.model)
    attempt = sessions.begin_attempt(
        user=user, session_id="", parent_id="", model=chosen.model, image_size="", references=[],
        prompt=f"Captions for {len(chosen.ids)} images (word search)", requested=len(chosen.ids),
        estimate=chosen.estimate_usd, budget=settings.gemini_daily_budget_usd)
    done, reason = 0, ""
    try:
        for asset in store.get(chosen.ids):
            try:
                caption = parse_caption(generator.describe(asset, INSTRUCTION, chosen.model))
            except ImageError:  # its file is gone or unreadable: nothing to describe, nothing paid
                caption = ""
            if caption:
                vector = store.vectors([asset.id]).get(asset.id)
                if vector is not None:
                    store.upsert([replace(asset, meta={**asset.meta, "caption": caption})], np.stack([vector]))
            done += 1
            if progress:
                progress(done, len(chosen.ids))
    except GenerationError as exc:
        reason = str(exc)
        raise
    finally:
        store.flush()
        sessions.end_attempt(attempt, outcome="ok" if not reason else "failed", images=0, cost=done * each,
                             reason=reason or f"{done} images captioned")
    return done

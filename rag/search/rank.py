"""Ranking for search: one relevance from pictures and words, prompt ensembles, collapsing near-duplicates.

Relevance is the one score a person reads, and the one that orders, labels and cuts the results (an
order from one formula and a label from another told people a word match was a "loose match" while
it ranked first). It is 0-1 and calibrated on the library, so it means the same for any CLIP model,
whose raw cosines differ (ViT-B-32 puts text and images at ~0.2-0.35, images and images at ~0.5-1):

* the picture side says how unusual a result's cosine is for this query: how many standard
  deviations it stands above what a typical image of the library scores (the query's mean cosine
  over the library, rag/store/moments.py), FULL_MATCH_SIGMAS of them counting as a full match. So
  "related" (0.5) is 2.5 deviations above typical, "close" (0.75) 3.75, and a search nothing answers
  well says so instead of calling its least bad picture the best match;
* the words side is the share of the query's words the result holds (all of them: 1), or its BM25
  over the best word match's when that is more (BM25 weighs rare words up and long texts down, so
  the file whose words answer best is a full word match even when no file holds every word);
* relevance is their probabilistic OR, 1 - (1 - picture) (1 - words): either kind of evidence alone
  can make a close match, and both together make a closer one.

Ties (two results both at 1) go to the one with more of both, then to the higher BM25, then to the
closer picture. Ensembles and collapsing are options of :class:`rag.search.query.Query`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.clip import Embedder
from rag.store import Candidates, VectorStore

# A cosine this many standard deviations above the library's typical one is a full picture match. Chance
# alone puts a library's best unrelated image about sqrt(2 ln n) deviations up (3.0 for 100 images, 3.7
# for 1,000, 4.3 for 10,000), so "close" (0.75: 3.75) and "best" (0.9: 4.5) stand above what chance gives.
FULL_MATCH_SIGMAS = 5.0
# Relevance bands: what a result is called, and what each choice of the cut-off keeps.
BEST, CLOSE, RELATED = 0.9, 0.75, 0.5
CUES = ((BEST, "best match"), (CLOSE, "close match"), (RELATED, "related"), (0.0, "loose match"))
WORDS_AND_PICTURE, WORDS, PICTURE = "words and picture", "words", "picture"  # what matched
PICTURE_EVIDENCE = 0.5  # a word match whose picture side is at least this also matched by picture
# The cut-off's choices, in words (the Search tab's control; ``--min-score`` takes the numbers).
CUTOFFS = (("All results", 0.0), ("Related or closer", RELATED), ("Only close matches", CLOSE), ("Only the best", BEST))

# Prompt templates averaged by ``Query(ensemble=True)``: CLIP's zero-shot recipe (average the
# normalised text embeddings of one phrase in several templates, then renormalise), with
# templates chosen for an asset library of drawings, icons and photos. The query itself is one.
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a photo of {}.",
    "a drawing of {}.",
    "a clip art illustration of {}.",
    "an icon of {}.",
    "a cartoon of {}.",
    "a black and white drawing of {}.",
    "a colourful illustration of {}.",
)

DEDUPE_COSINE = 0.97  # hits at least this close to a better-ranked hit are collapsed


# -- prompt ensembles -------------------------------------------------------------------------
def ensemble_text_vector(embedder: Embedder, text: str, templates: Sequence[str] = ENSEMBLE_TEMPLATES) -> np.ndarray:
    """The mean of the normalised embeddings of ``text`` in each template, renormalised."""
    prompts = list(dict.fromkeys(t.format(text) for t in templates))
    vecs = embedder.embed_texts(prompts)
    mean = np.asarray(vecs, dtype=np.float32).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


# -- relevance ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranked:
    """One candidate, ranked: its cosine (``score``), its relevance (0-1), what matched, and its BM25."""

    id: str
    score: float
    relevance: float
    match: str
    words: bool = False
    bm25: float = 0.0


def relevance_cue(relevance: float) -> str:
    """What a result of this relevance is called: "best match", "close match", "related" or "loose match"."""
    return next(cue for floor, cue in CUES if relevance >= floor - 1e-9)


def picture_side(found: Candidates) -> dict[str, float]:
    """Each candidate's picture side, 0-1: how far its cosine stands above what a typical image of the
    library scores for this query, in standard deviations, FULL_MATCH_SIGMAS of them being 1. Without
    those figures (an empty library), where it falls between the weakest candidate (0) and the best (1)."""
    if not found.cosines:
        return {}
    best = max(found.cosines.values())
    if found.typical is not None and found.spread is not None and found.spread > 1e-6:
        floor, unit = found.typical, FULL_MATCH_SIGMAS * found.spread
    else:
        floor = min((s for _, s in found.pictures), default=best)
        unit = best - floor
    if unit < 1e-6:  # one image, or all alike: the best ones are the match
        return {i: float(s >= best - 1e-6) for i, s in found.cosines.items()}
    return {i: float(np.clip((s - floor) / unit, 0.0, 1.0)) for i, s in found.cosines.items()}


def rank(found: Candidates) -> list[Ranked]:
    """Every candidate by relevance, best first (see the module's docstring for the formula)."""
    pictures = picture_side(found)
    top = max((b for b, _ in found.words.values()), default=0.0) or 1.0
    scored = []
    for i, cosine in found.cosines.items():
        p, (bm25, share) = pictures[i], found.words.get(i, (0.0, 0.0))
        w = max(share, bm25 / top)
        matched = i in found.words
        kind = (WORDS_AND_PICTURE if p >= PICTURE_EVIDENCE else WORDS) if matched else PICTURE
        item = Ranked(i, cosine, round(1.0 - (1.0 - p) * (1.0 - w), 4), kind, matched, bm25)
        scored.append(((-item.relevance, -(p + w), -bm25, -cosine), item))
    scored.sort(key=lambda pair: pair[0])
    return [item for _, item in scored]


# -- near-duplicates ----------------------------------------------------------------------------
def collapse_near_duplicates(store: VectorStore, ranked: Sequence[Ranked], threshold: float = DEDUPE_COSINE,
                             limit: int | None = None) -> list[Ranked]:
    """Drop each result whose vector has cosine >= ``threshold`` with a better-ranked kept one (up to ``limit`` kept)."""
    if len(ranked) < 2:
        return list(ranked)
    vectors = store.vectors([r.id for r in ranked])
    kept: list[Ranked] = []
    kept_vecs: list[np.ndarray] = []
    for item in ranked:
        v = vectors.get(item.id)
        if v is None:
            continue
        if kept_vecs and float(np.max(np.stack(kept_vecs) @ v)) >= threshold:
            continue
        kept.append(item)
        kept_vecs.append(v)
        if limit is not None and len(kept) >= limit:
            break
    return kept

"""The words of an asset that full-text search reads, and the word syntax of a search.

Milvus analyses the ``text`` field and scores it with BM25 (see :mod:`rag.store.schema`). Milvus Lite's
analyzer has no stemmer (a server's ``english`` analyzer has one), so words are stemmed here with
the Snowball English stemmer before Milvus sees them, the same way on Lite and on a server: the
field holds ``" campaign acm spring "`` and a search for "campaigns" asks for ``campaign``. File
names are split first (``RedBird_02`` is red, bird, 02), which no analyzer does.

Query syntax people know from search engines: ``"exact phrase"`` must appear, ``-word`` pushes
results away from a concept (its CLIP text embedding is subtracted) and drops exact matches.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from rag.core import Asset, BananaError
from rag.store.filters import text_filter

MAX_TEXT_BYTES = 16000  # the schema's max_length is 16384; a little room for multi-byte cuts
MAX_QUERY_CHARS = 1000  # CLIP reads 77 tokens; words past a page of text only cost time
MAX_NEGATIVE_WORDS = 10  # each -word is one CLIP text encode
# Milvus drops these before BM25 scores a query or a record (the analyzer's stop filter).
STOP_WORDS = tuple(
    """a an and are as at be by for from in into is it of on or that the this to with""".split()
)
_SPLIT = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')
_NEGATIVE = re.compile(r"(?:(?<=\s)|^)-([^\W_][\w'-]*)", re.UNICODE)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{2,5}$")


@functools.cache
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """Lower-case stemmed words: ``"RedBird_02 campaigns"`` -> ``['red', 'bird', '02', 'campaign']``."""
    raw = [w.lower() for w in _WORD.findall(_SPLIT.sub(" ", str(text or "")))]
    return _stemmer().stemWords(raw) if raw else []


def _field(parts: list[str]) -> str:
    joined = " ".join(w for part in parts for w in words(part))
    if len(joined.encode("utf-8")) > MAX_TEXT_BYTES:
        joined = joined.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return f" {joined} "


def asset_text(asset: Asset) -> str:
    """What word search reads of an asset: its file name, folder, tags, the words embedded in the
    file, a generated image's prompt, a caption and the text printed in the picture (OCR), as stemmed words
    between single spaces."""
    meta = asset.meta
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    parts = [_EXTENSION.sub("", asset.filename), asset.folder.replace("/", " "), *map(str, tags)]
    parts += [str(meta.get(k) or "") for k in ("embedded", "prompt", "caption", "ocr")]
    return _field(parts)


@dataclass(frozen=True)
class WordQuery:
    """A search text taken apart: what CLIP reads, what BM25 reads, and what must (not) appear."""

    clip_text: str = ""  # the text without quotes and -words, for the CLIP text tower
    terms: tuple[str, ...] = ()  # stemmed words BM25 looks for
    phrases: tuple[tuple[str, ...], ...] = field(default=())  # stemmed phrases that must appear
    negatives: tuple[str, ...] = ()  # words as typed, to push away from (CLIP) and exclude (exact)

    @property
    def sparse_text(self) -> str:
        return " ".join(t for t in self.terms if t not in STOP_WORDS)

    def filter(self) -> str:
        """Phrases that must appear and negative words that must not, as one Milvus expression (a
        :class:`rag.store.filters.Filter`, which Lite's copy in memory applies too)."""
        return text_filter(self.phrases, [words(w) for w in self.negatives])


def parse_words(text: str) -> WordQuery:
    """``'acme "spring campaign" -red'``: CLIP reads "acme spring campaign", BM25 its words, the
    phrase must appear and records with the word red are dropped. Each ``-word`` costs a CLIP encode,
    so a query is bounded before any work: :data:`MAX_QUERY_CHARS`, :data:`MAX_NEGATIVE_WORDS`."""
    text = str(text or "")
    if len(text) > MAX_QUERY_CHARS:
        raise BananaError(f"A search can be at most {MAX_QUERY_CHARS:,} characters; this one has {len(text):,}.")
    negatives = tuple(dict.fromkeys(_NEGATIVE.findall(text)))
    if len(negatives) > MAX_NEGATIVE_WORDS:
        raise BananaError(f"A search can leave out at most {MAX_NEGATIVE_WORDS} words (-word); this one has "
                          f"{len(negatives)}.")
    positive = _NEGATIVE.sub(" ", text)
    phrases = tuple(tuple(words(p)) for p in _PHRASE.findall(positive) if words(p))
    clip_text = " ".join(positive.replace('"', " ").split())
    terms = tuple(dict.fromkeys(words(clip_text)))
    return WordQuery(clip_text=clip_text, terms=terms, phrases=phrases, negatives=negatives)

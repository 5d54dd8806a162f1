"""BM25 over the library's words in memory, for Milvus Lite.

Milvus Lite's BM25 walks every stored row in Python before it scores (the same duplicate and
tombstone masks as its vector search): ~20-40 ms at 10k images and ~200-260 ms at 100k, for what
is a few dictionary lookups. The words it scores are already ours: :func:`rag.store.words.asset_text`
stems them and joins them with spaces, and Lite's analyzer (``\\w+``, lower case, the stop words of
:mod:`rag.store.schema`) only splits them again. So the in-memory copy of the vectors
(:mod:`rag.store.lite_mirror`) keeps an inverted index of those words beside them, scored with the
formula and parameters of Milvus Lite's own (k1 = 1.5, b = 0.75, Lucene's idf). Document
frequencies are the library's live records; Lite counts them per segment, deleted rows included, so
on a library written in many batches the scores here are what Lite's would be after a compaction.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from rag.store.words import STOP_WORDS

K1, B = 1.5, 0.75  # Milvus Lite's BM25 defaults (bm25_k1, bm25_b; a server's k1 is 1.2)
_TOKEN = re.compile(r"\w+", re.UNICODE)  # Lite's standard tokenizer
_STOP = frozenset(STOP_WORDS)


def tokens(text: str) -> list[str]:
    """The terms Milvus' analyzer (rag.store.schema.ANALYZER) takes from a text."""
    return [t for t in _TOKEN.findall(str(text or "").lower()) if t not in _STOP]


class WordIndex:
    """Term frequencies by record id, with the postings BM25 needs; not thread-safe (the mirror locks)."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[str, int]] = {}  # term -> {id: term frequency}
        self._terms: dict[str, tuple[tuple[str, ...], int]] = {}  # id -> (its distinct terms, length)
        self._length = 0  # of every record, in terms

    def __len__(self) -> int:
        return len(self._terms)

    def put(self, id_: str, text: str) -> None:
        self.remove(id_)
        counts = Counter(tokens(text))
        length = sum(counts.values())
        self._terms[id_] = (tuple(counts), length)
        self._length += length
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[id_] = tf

    def remove(self, id_: str) -> None:
        known = self._terms.pop(id_, None)
        if known is None:
            return
        terms, length = known
        self._length -= length
        for term in terms:
            posting = self._postings[term]
            del posting[id_]
            if not posting:
                del self._postings[term]

    def holding(self, term: str) -> Iterable[str]:
        """The ids of the records that hold ``term`` (a term as :func:`tokens` gives it)."""
        return self._postings.get(term, {}).keys()

    def terms(self, id_: str) -> frozenset[str]:
        """The distinct terms of one record (none when it is not held)."""
        known = self._terms.get(id_)
        return frozenset(known[0]) if known else frozenset()

    def scores(self, text: str, among: AbstractSet[str] | None = None) -> dict[str, float]:
        """BM25 of every record that holds a word of ``text`` (each query word counts as often as it occurs),
        or only of those ``among`` (the statistics stay the library's, as Milvus' filtered search keeps them)."""
        n = len(self._terms)
        if not n:
            return {}
        avgdl = self._length / n or 1.0
        scores: dict[str, float] = {}
        for term, weight in Counter(tokens(text)).items():
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = math.log((n - len(posting) + 0.5) / (len(posting) + 0.5) + 1.0) * weight
            held = posting.items() if among is None else ((i, posting[i]) for i in posting.keys() & among)
            for id_, tf in held:
                norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * self._terms[id_][1] / avgdl))
                scores[id_] = scores.get(id_, 0.0) + idf * norm
        return scores


def best(scores: dict[str, float], k: int) -> list[str]:
    """The ``k`` best-scored ids, best first (ties in the order they were scored)."""
    return [i for i, _ in heapq.nlargest(k, scores.items(), key=lambda kv: kv[1])]

"""Re-ranking helpers for search: prompt ensembles, filename/folder keywords fused with the vector
ranking (reciprocal rank fusion), and collapsing near-duplicate results.

Each helper is switched on by an option of :class:`rag.search.Query`; with every option off,
search is exactly one vector query to the store, as before.

Keyword scoring is done here, in process, rather than with Milvus' own BM25 functions: Milvus
Lite 3.2.2 does run them, but they need an analysed text field plus a sparse-vector field in the
collection schema, which existing libraries do not have. Instead the store is asked for the
records whose file or folder name contains a query word (``like "%word%"``, scanned by Milvus
with the search's folder/source filter applied), and those, plus the vector candidates, are
scored with BM25 over their name tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .embedder import Embedder
from .filters import quote
from .store import VectorStore
from .types import Asset, Hit

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

RRF_K = 60  # the usual reciprocal-rank-fusion constant
BM25_K1, BM25_B = 1.2, 0.75
LEXICAL_LIMIT = 2000  # most keyword candidates fetched from the store per query
DEDUPE_COSINE = 0.97  # hits at least this close to a better-ranked hit are collapsed

STOPWORDS = frozenset(
    """a an the of and or with in on at for to from by some this that these those its it is are be
    my our your their his her me us them i we you he she they no not very into onto over under
    about as than then so such""".split()
)
# Words that describe the medium, not the subject: in a query they say nothing about file names.
GENERIC = frozenset(
    """image images picture pictures photo photos photograph drawing drawings drawn illustration
    illustrations clipart icon icons graphic graphics vector png jpg jpeg svg""".split()
)
_CLIP_ART = re.compile(r"\bclip[\s_-]*arts?\b", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_SPLIT = re.compile(r"[\W_]+", re.UNICODE)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{2,5}$")


def stem(word: str) -> str:
    """A light plural stemmer (birds -> bird, boxes -> box, berries -> berry); enough for names."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case stemmed word tokens: ``RedBird_02.png`` -> ``['red', 'bird']``."""
    text = _CAMEL.sub(" ", text)
    out = []
    for raw in _SPLIT.split(text):
        word = raw.lower()
        if len(word) < 2 or word.isdigit():
            continue
        out.append(stem(word))
    return out


def query_terms(text: str) -> list[str]:
    """The words of a search that can match a name: no stopwords, no 'clip art', 'picture', ..."""
    text = _CLIP_ART.sub(" ", text)
    terms = [t for t in tokenize(text) if t not in STOPWORDS and t not in GENERIC]
    return list(dict.fromkeys(terms))


def asset_terms(asset: Asset) -> list[str]:
    """Tokens of an asset's file name (without extension) and folder path."""
    return tokenize(_EXTENSION.sub("", asset.filename)) + tokenize(asset.folder)


# -- prompt ensembles -------------------------------------------------------------------------
def ensemble_text_vector(embedder: Embedder, text: str, templates: Sequence[str] = ENSEMBLE_TEMPLATES) -> np.ndarray:
    """The mean of the normalised embeddings of ``text`` in each template, renormalised."""
    prompts = list(dict.fromkeys(t.format(text) for t in templates))
    vecs = embedder.embed_texts(prompts)
    mean = np.asarray(vecs, dtype=np.float32).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


# -- keyword scoring ----------------------------------------------------------------------------
def keyword_filter(terms: Iterable[str]) -> str:
    """Records whose file name or folder contains one of ``terms`` (as typed, Capitalised or UPPER)."""
    clauses = []
    for term in terms:
        # A stem need not be a substring of every word it stands for (berries -> berry): match on
        # the stem without a final y; the exact token check comes after, in process.
        term = term[:-1] if term.endswith("y") and len(term) > 3 else term
        for variant in dict.fromkeys((term, term.capitalize(), term.upper())):
            pattern = quote(f"%{variant}%")
            clauses.append(f"filename like {pattern}")
            clauses.append(f"folder like {pattern}")
    return " or ".join(clauses)


@dataclass
class Bm25:
    """BM25 over a set of token lists, with document frequencies given (or counted from ``docs``)."""

    docs: dict[str, list[str]]
    n_docs: int
    df: dict[str, int]

    def score(self, terms: Sequence[str]) -> dict[str, float]:
        if not self.docs:
            return {}
        avgdl = sum(len(d) for d in self.docs.values()) / len(self.docs) or 1.0
        n = max(self.n_docs, len(self.docs))
        idf = {t: math.log(1.0 + (n - self.df.get(t, 0) + 0.5) / (self.df.get(t, 0) + 0.5)) for t in terms}
        scores: dict[str, float] = {}
        for doc_id, tokens in self.docs.items():
            s = 0.0
            for t in terms:
                tf = tokens.count(t)
                if tf:
                    s += idf[t] * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * len(tokens) / avgdl))
            if s > 0:
                scores[doc_id] = s
        return scores


def keyword_candidates(
    store: VectorStore, terms: Sequence[str], filter: str, limit: int = LEXICAL_LIMIT
) -> list[Asset]:
    """Assets (under ``filter``) whose name or folder contains a query word, at most ``limit``."""
    if not terms:
        return []
    expr = f"({keyword_filter(terms)})"
    if filter:
        expr = f"({filter}) and {expr}"
    return store.page(0, limit, expr)


def rrf(rankings: Sequence[tuple[float, Sequence[str]]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: ``sum(weight / (k + rank))`` over the rankings each id appears in."""
    fused: dict[str, float] = {}
    for weight, ids in rankings:
        for rank, doc_id in enumerate(ids, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return fused


def hybrid_rerank(
    store: VectorStore,
    vector: np.ndarray,
    hits: Sequence[Hit],
    text: str,
    filter: str = "",
    *,
    keyword_weight: float = 1.0,
    limit: int = LEXICAL_LIMIT,
) -> list[Hit]:
    """Fuse the vector ranking of ``hits`` with a BM25 ranking of file/folder names by RRF.

    Candidates are the vector hits plus the records whose names contain a query word; those not
    among the vector hits get their cosine from their stored vectors, so every candidate has a
    true vector rank. Scores stay cosine similarities; only the order changes.
    """
    terms = query_terms(text)
    if not terms:
        return list(hits)
    keyword_assets = keyword_candidates(store, terms, filter, limit)
    by_id: dict[str, Asset] = {h.asset.id: h.asset for h in hits}
    cosine: dict[str, float] = {h.asset.id: h.score for h in hits}
    for asset in keyword_assets:
        by_id.setdefault(asset.id, asset)
    missing = [i for i in by_id if i not in cosine]
    if missing:
        found = store.vectors(missing)
        q = np.asarray(vector, dtype=np.float32)
        for doc_id in missing:
            if doc_id in found:
                cosine[doc_id] = float(np.dot(found[doc_id], q))
            else:  # deleted between the two calls
                by_id.pop(doc_id)
    docs = {doc_id: asset_terms(a) for doc_id, a in by_id.items()}
    # Every record holding a query word (as a substring) came back, so document frequencies
    # counted over the candidates are the library's (unless ``limit`` cut the list short).
    df = {t: sum(1 for d in docs.values() if t in d) for t in terms}
    n_docs = store.count(filter) if keyword_assets else len(docs)
    bm25 = Bm25(docs=docs, n_docs=n_docs, df=df).score(terms)
    vector_order = sorted(by_id, key=lambda i: -cosine[i])
    keyword_order = sorted(bm25, key=lambda i: (-bm25[i], -cosine[i]))
    fused = rrf([(1.0, vector_order), (keyword_weight, keyword_order)])
    order = sorted(by_id, key=lambda i: (-fused[i], -cosine[i]))
    return [Hit(asset=by_id[i], score=cosine[i]) for i in order]


# -- near-duplicates ----------------------------------------------------------------------------
def collapse_near_duplicates(store: VectorStore, hits: Sequence[Hit], threshold: float = DEDUPE_COSINE) -> list[Hit]:
    """Drop each hit whose vector has cosine >= ``threshold`` with a better-ranked kept hit."""
    if len(hits) < 2:
        return list(hits)
    vectors = store.vectors([h.asset.id for h in hits])
    kept: list[Hit] = []
    kept_vecs: list[np.ndarray] = []
    for hit in hits:
        v = vectors.get(hit.asset.id)
        if v is None:
            continue
        if kept_vecs and float(np.max(np.stack(kept_vecs) @ v)) >= threshold:
            continue
        kept.append(hit)
        kept_vecs.append(v)
    return kept

"""Plain records passed between the store, search, generation and the UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SOURCES: tuple[str, ...] = ("upload", "folder", "generated")


@dataclass(frozen=True)
class Asset:
    """One image in the library. ``id`` is the sha256 of the file's bytes."""

    id: str
    path: str
    filename: str
    folder: str
    width: int
    height: int
    format: str
    bytes: int
    created: float
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    """A search result: an asset, its similarity score (cosine, higher is closer), whether its words
    (file name, tags, embedded text, prompt) matched the query's, and the one score that orders,
    labels and cuts results: ``relevance`` (0-1, relative to the query's best match; rag/search/rank.py)
    with what matched (``match``: "words and picture", "words" or "picture")."""

    asset: Asset
    score: float
    words: bool = False
    relevance: float = 0.0
    match: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.asset.to_dict(), "score": self.score, "words": self.words, "relevance": self.relevance,
                "match": self.match}

"""Rebuild the library's collection beside the old one, then swap: ``python -m rag reindex``.

Two reasons to rebuild: a collection made before word search has no text field (vectors are copied,
the text is computed), and a new CLIP model must never mix its vectors with the old one's (every
file is embedded again). Either way the old collection keeps answering until the new one holds
every record; a crash before that leaves it untouched (the next run starts over), and a crash
during the swap is finished when the library is next opened (:meth:`rag.store.swap.CollectionSwap.finish`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rag.clip import Embedder
from rag.core import Asset, BananaError, ImageError, Settings
from rag.media import decode, file_text
from rag.store import REBUILD_SUFFIX, MilvusStore, asset_from_row

Progress = Callable[[int, int], None]  # (records done, records in all)


@dataclass
class ReindexReport:
    """What a rebuild did: records copied (vectors kept), re-embedded, and those left out (with why)."""

    copied: int = 0
    embedded: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    word_search: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        done = f"{self.embedded} re-embedded" if self.embedded else f"{self.copied} copied (vectors kept)"
        lost = f", {len(self.left_out)} left out (file missing or unreadable)" if self.left_out else ""
        words = "word search on" if self.word_search else "word search unavailable on this Milvus"
        return f"Re-indexed: {done}{lost}; {words} ({self.seconds:.1f} s)."


def _with_file_text(asset: Asset) -> Asset:
    """The record with the words embedded in its file, for records made before they were read."""
    if "embedded" in asset.meta:
        return asset
    text = file_text(asset.path)
    return replace(asset, meta={**asset.meta, "embedded": text}) if text else asset


def _embedded(embedder: Embedder, settings: Settings, assets: list[Asset], report: ReindexReport) -> tuple[list[Asset], np.ndarray]:
    kept, prepared = [], []
    for asset in assets:
        try:
            decoded = decode(asset.path, background=settings.background, max_pixels=settings.max_image_pixels)
        except ImageError as exc:
            report.left_out.append((asset.path, str(exc)))
            continue
        kept.append(asset)
        prepared.append(embedder.prepare(decoded.image))
    report.embedded += len(kept)
    return kept, embedder.encode_prepared(prepared)


def _copy(new: MilvusStore, rows: list[dict[str, Any]], embed: Callable[..., Any] | None,
          report: ReindexReport) -> None:
    assets = [_with_file_text(asset_from_row(r)) for r in rows]
    if embed is None:
        vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32)
        report.copied += len(assets)
    else:
        assets, vectors = embed(assets)
    if assets:
        new.upsert(assets, vectors)


def _refuse_partial(report: ReindexReport) -> None:
    """Re-embedding cannot keep a record whose file is unreadable (its old vector is another model's):
    rather than drop records because a drive is unmounted, stop before the swap unless told to."""
    path, reason = report.left_out[0]
    raise BananaError(
        f"{len(report.left_out)} files could not be read to re-embed them (e.g. {path}: {reason}); the library is "
        "unchanged. Make them readable and run reindex again, or add --drop-missing to leave those records out."
    )


def reindex(settings: Settings, embedder: Embedder, *, re_embed: bool = False, batch: int = 256,
            drop_missing: bool = False, progress: Progress | None = None) -> ReindexReport:
    """Rebuild ``settings.collection`` with a text field and, when the model changed (or
    ``re_embed``), with vectors from ``embedder``; swap it in once complete."""
    start, report = time.perf_counter(), ReindexReport()
    old = MilvusStore(settings, embedder.dim, embedder.name, strict=False)
    try:
        re_embed = re_embed or old.stored_dim != embedder.dim or bool(old.model and old.model != embedder.name)
        name = settings.collection + REBUILD_SUFFIX
        old.drop_collection(name)  # what an interrupted run left: start over
        new = old.sibling(name)
        embed = (lambda assets: _embedded(embedder, settings, assets, report)) if re_embed else None
        total, done = old.count(), 0
        for rows in old.iter_records(batch=batch, with_vectors=not re_embed):
            _copy(new, rows, embed, report)
            done += len(rows)
            if progress:
                progress(done, total)
        new.flush()
        if report.left_out and not drop_missing:
            _refuse_partial(report)
        for precision in (embedder.precision if re_embed else old.precision).split("+"):
            new.record_precision(precision)
        new.mark_complete()
        old.swap_in(name)
        report.word_search = old.full_text
    finally:
        old.close()
    report.seconds = time.perf_counter() - start
    return report

"""An asset's page: its record, how it was made, what it was made from and what was made from it;
and the page's edits (tags, folder), which rewrite the record with its stored vector.

Parents are the ``meta["parents"]`` ids a generated image was saved with; children are found by
one filtered Milvus query on that field (:func:`rag.store.filters.parents_filter`), never by a scan.
A folder is a label on the record: moving an asset never moves or creates a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rag.core import Asset, BananaError
from rag.generation import estimate_cost
from rag.store import VectorStore, parents_filter

MAX_CHILDREN = 200
MAX_FOLDER_CHARS = 120
MAX_TAG_CHARS = 40
MAX_TAGS = 30


@dataclass
class AssetDetails:
    """Everything an asset's page shows."""

    asset: Asset
    parents: list[Asset] = field(default_factory=list)
    missing_parents: list[str] = field(default_factory=list)  # ids not in the library
    # missing ids that are versions of its session never saved, as "v1 of session X": not lost, just not added
    unsaved_parents: dict[str, str] = field(default_factory=dict)
    children: list[Asset] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return tags_of(self.asset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset.to_dict(), "tags": self.tags, "generation": self.generation,
            "parents": [a.id for a in self.parents] + self.missing_parents, "missing_parents": self.missing_parents,
            "unsaved_parents": self.unsaved_parents,
            "parent_assets": [a.to_dict() for a in self.parents],
            "children": [a.id for a in self.children], "child_assets": [a.to_dict() for a in self.children],
        }


def tags_of(asset: Asset) -> list[str]:
    tags = asset.meta.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def parent_ids(asset: Asset) -> list[str]:
    parents = asset.meta.get("parents") or []
    return [str(p) for p in parents] if isinstance(parents, list) else []


def generation_info(asset: Asset) -> dict[str, Any]:
    """How a generated image was made, from the provenance it was saved with ({} for other images)."""
    meta = asset.meta
    provenance = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else {}
    if asset.source != "generated" and not provenance:
        return {}
    model = str(meta.get("model") or provenance.get("model") or "")
    session = provenance.get("session") or meta.get("session") or {}
    if not isinstance(session, dict):
        session = {"id": session}
    info = {
        "prompt": str(meta.get("prompt") or provenance.get("prompt") or ""),
        "model": model,
        "aspect_ratio": provenance.get("aspect_ratio", ""),
        "image_size": provenance.get("image_size") or f"{asset.width}×{asset.height}",
        "cost_usd": provenance.get("cost_usd", estimate_cost(1, model) if model else None),
        "session": session.get("id") or provenance.get("session_id") or "",
        "version": session.get("version") or provenance.get("session_version") or "",
        "created": provenance.get("created_iso", ""),
        "model_text": provenance.get("text", ""),
    }
    return {k: v for k, v in info.items() if v not in ("", None)}


def children(store: VectorStore, asset_id: str, limit: int = MAX_CHILDREN) -> list[Asset]:
    """Everything generated with ``asset_id`` as a reference, newest first: one filtered query."""
    found = store.page(0, limit, parents_filter(asset_id))
    return sorted(found, key=lambda a: (-a.created, a.id))


def details(store: VectorStore, asset_id: str) -> AssetDetails:
    """The asset's page: the record, its parents (in the order they were given) and its children."""
    (asset,) = store.get([asset_id]) or [None]
    if asset is None:
        raise BananaError("That image is no longer in the library (deleted, or moved to the Trash).")
    wanted = parent_ids(asset)
    parents = store.get(wanted)
    found = {a.id for a in parents}
    return AssetDetails(
        asset=asset, parents=parents, missing_parents=[p for p in wanted if p not in found],
        children=children(store, asset_id), generation=generation_info(asset),
    )


def clean_folder(name: str) -> str:
    """A folder label a user typed, made safe: "/" separates levels (a backslash counts as one),
    blank levels go; ".." or "." levels, control characters and names over MAX_FOLDER_CHARS are refused."""
    text = _short_printable(str(name or "").replace("\\", "/").strip(), "folder name")
    if not text.strip("/ "):
        raise BananaError("Type a folder name (for example: products/shoes).")
    levels = [level.strip() for level in text.split("/") if level.strip()]
    if any(level in (".", "..") for level in levels):
        raise BananaError('A folder name cannot contain "." or ".." levels; use plain names like products/shoes.')
    return "/".join(levels)


def campaign_tag(name: str) -> str:
    """The tag a campaign's saved images carry (``campaign:NAME``), within the tag rules whatever the name."""
    words = " ".join("".join(ch if ch.isprintable() else " " for ch in str(name)).split())
    return f"campaign:{words}"[:MAX_TAG_CHARS].rstrip()


def clean_campaign_name(name: str) -> str:
    """A campaign name a user typed, held to a folder name's rules; "" when blank (a name is made up)."""
    return _short_printable(str(name or "").strip(), "campaign name")


def campaign_folder(name: str) -> str:
    """The folder a campaign's saved images go to, "campaigns/NAME": the name as one level (a slash in it
    becomes a dash, a name of dots "campaign"), within the folder rules whatever the name."""
    level = "".join(ch if ch.isprintable() and ch not in "/\\" else "-" for ch in str(name or "")).strip(" .") or "campaign"
    return f"campaigns/{level}"[:MAX_FOLDER_CHARS].rstrip()


def _short_printable(text: str, what: str) -> str:
    """``text`` if it has at most MAX_FOLDER_CHARS printable characters, else the sentence saying which rule."""
    if len(text) > MAX_FOLDER_CHARS:
        raise BananaError(f"A {what} can be at most {MAX_FOLDER_CHARS} characters; this one has {len(text)}.")
    if any(not ch.isprintable() for ch in text):
        raise BananaError(f"A {what} cannot contain control characters such as line breaks or tabs.")
    return text


def clean_tags(tags: str | Sequence[str] | None) -> list[str]:
    """Tags from a comma-separated text or a list: trimmed, blank ones dropped, case-insensitive
    duplicates merged (the first spelling wins); too many or too long is refused with a sentence."""
    items = tags.split(",") if isinstance(tags, str) else list(tags or [])
    out: dict[str, str] = {}
    for item in items:
        tag = re.sub(r"\s+", " ", str(item)).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS or any(not ch.isprintable() for ch in tag):
            raise BananaError(f"A tag is a short word or phrase of at most {MAX_TAG_CHARS} printable characters: {tag[:50]!r}.")
        out.setdefault(tag.casefold(), tag)
    if len(out) > MAX_TAGS:
        raise BananaError(f"An image can have at most {MAX_TAGS} tags; {len(out)} were given.")
    return list(out.values())


def rewrite(store: VectorStore, ids: Sequence[str], change: Callable[[Asset], Asset]) -> list[Asset]:
    """Store ``change(asset)`` for each id, with the asset's stored vector (no re-embedding)."""
    assets = store.get(ids)
    if not assets:
        return []
    vectors = store.vectors([a.id for a in assets])
    changed = [change(a) for a in assets if a.id in vectors]
    if changed:
        store.upsert(changed, np.stack([vectors[a.id] for a in changed]))
    return changed


def retag(store: VectorStore, ids: Sequence[str], tags: str | Sequence[str] | None, *, keep: bool) -> list[Asset]:
    """Set (or, with ``keep``, add) tags on assets; returns the changed records."""
    clean = clean_tags(tags)

    def change(asset: Asset) -> Asset:
        merged = clean_tags([*tags_of(asset), *clean]) if keep else clean
        meta = {k: v for k, v in asset.meta.items() if k != "tags"}
        return replace(asset, meta={**meta, "tags": merged} if merged else meta)

    return _flushed(store, rewrite(store, ids, change) if clean or not keep else [])


def move(store: VectorStore, ids: Sequence[str], folder: str) -> list[Asset]:
    """Relabel assets with another folder (checked by :func:`clean_folder`); files stay where they are."""
    target = clean_folder(folder)
    return _flushed(store, rewrite(store, ids, lambda a: replace(a, folder=target)))


def _flushed(store: VectorStore, changed: list[Asset]) -> list[Asset]:
    if changed:
        store.flush()  # a change the user made survives a restart
    return changed

"""Milvus filter expressions built from what a user chose (folders, sources, tags...), safely quoted.

Milvus Lite refuses filter templating (``{param}``), so values are written into the expression
as JSON-quoted literals, which the filter grammar reads back exactly.

Tags, the model and the parents of a generated image live in the record's ``meta`` JSON (no
schema change, so libraries made before them keep working); ``json_contains`` filters on them
work on Milvus Lite 3.2 and on a Milvus server alike (tested on both in tests/test_store_server.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rag.core import BananaError


def quote(value: str) -> str:
    """A Milvus string literal (the filter grammar accepts JSON-style escapes, but not of control characters:
    those are refused here with a sentence, where Milvus would fail the whole search)."""
    text = str(value)
    if any(not ch.isprintable() and ch not in "\t\n\r" for ch in text):  # JSON's own escapes Milvus reads
        raise BananaError(f"{text[:40]!r} cannot be searched for: names, tags and words to filter by cannot contain "
                          "control characters.")
    return json.dumps(text, ensure_ascii=False)


def one_of(field: str, values: Sequence[str]) -> str:
    """Records whose ``field`` is one of ``values``."""
    return f"{field} in [{', '.join(quote(v) for v in values)}]"


def parents_filter(asset_id: str) -> str:
    """Records generated with ``asset_id`` as a reference ("made from this")."""
    return f'json_contains(meta["parents"], {quote(asset_id)})'


def build_filter(
    folders: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    *,
    tags: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    added_after: float | None = None,
    added_before: float | None = None,
) -> str:
    """A filter expression from the UI's/CLI's choices; empty choices mean 'no restriction'.

    Several values of one kind match any of them (a folder OR another); kinds combine with AND.
    """
    parts = []
    if folders:
        parts.append(one_of("folder", folders))
    if sources:
        parts.append(one_of("source", sources))
    if tags:
        parts.append(f'json_contains_any(meta["tags"], [{", ".join(quote(t) for t in tags)}])')
    if models:  # Lite refuses `in` on a JSON key
        parts.append("(" + " or ".join(f'meta["model"] == {quote(m)}' for m in models) + ")")
    if added_after is not None:
        parts.append(f"created >= {float(added_after)!r}")
    if added_before is not None:
        parts.append(f"created < {float(added_before)!r}")
    return " and ".join(parts)

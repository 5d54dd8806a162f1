"""Milvus filter expressions built from what a user chose (folders, sources), safely quoted.

Milvus Lite refuses filter templating (``{param}``), so values are written into the expression
as JSON-quoted literals, which the filter grammar reads back exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def quote(value: str) -> str:
    """A Milvus string literal (the filter grammar accepts JSON-style escapes)."""
    return json.dumps(str(value), ensure_ascii=False)


def build_filter(folders: Sequence[str] | None = None, sources: Sequence[str] | None = None) -> str:
    """A filter expression from the UI's/CLI's choices; empty choices mean 'no restriction'."""
    parts = []
    if folders:
        parts.append(f"folder in [{', '.join(quote(f) for f in folders)}]")
    if sources:
        parts.append(f"source in [{', '.join(quote(s) for s in sources)}]")
    return " and ".join(parts)

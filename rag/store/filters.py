"""Milvus filter expressions built from what a user chose (folders, sources, tags...), safely quoted.

Milvus Lite refuses filter templating (``{param}``), so values are written into the expression
as JSON-quoted literals, which the filter grammar reads back exactly.

Tags, the model and the parents of a generated image live in the record's ``meta`` JSON (no
schema change, so libraries made before them keep working); ``json_contains`` filters on them
work on Milvus Lite 3.2 and on a Milvus server alike (tested on both in tests/test_store_server.py).

The filters a search builds (:func:`build_filter`, :func:`text_filter`, :func:`joined`) are
:class:`Filter` strings: the expression Milvus reads, carrying the same conditions as
:class:`Clause` values, so that Lite's copy in memory (rag/store/lite_fields.py) can apply them
without walking Lite's rows. Any other string (a hand-written expression, or a ``Filter`` changed by a
string operation, which gives a plain ``str``) carries none and goes to Milvus.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rag.core import BananaError

CLAUSE_FIELDS = ("folder", "source", "tags", "model", "after", "before", "phrase", "without")


@dataclass(frozen=True)
class Clause:
    """One condition of a filter: ``field`` is one of :data:`CLAUSE_FIELDS`. ``values``: the folders
    (subfolders included), sources, tags or models of which a record needs one, or a phrase's stemmed
    words that its text must (``phrase``) or must not (``without``) hold in a row; ``bound``: the
    ``created`` time it must be at or after (``after``) or before (``before``)."""

    field: str
    values: tuple[str, ...] = ()
    bound: float = 0.0


class Filter(str):
    """A Milvus filter expression that also carries its conditions as :class:`Clause` values, all of
    which a record must meet; "" keeps every record."""

    clauses: tuple[Clause, ...]

    def __new__(cls, expression: str = "", clauses: Sequence[Clause] = ()) -> Filter:
        made = super().__new__(cls, expression)
        made.clauses = tuple(clauses)
        return made


def joined(*filters: str) -> str:
    """Every one of ``filters`` (blanks ignored), as one expression; a :class:`Filter` when they all are."""
    kept = [f for f in filters if f]
    expression = " and ".join(f"({f})" for f in kept)
    if all(isinstance(f, Filter) for f in kept):
        return Filter(expression, [c for f in kept for c in f.clauses])  # type: ignore[union-attr]
    return expression


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


def folder_names(folders: Sequence[str]) -> list[str]:
    """The folders chosen, as stored (no leading or trailing "/"), blanks dropped."""
    return [name for f in folders if (name := str(f).strip().strip("/").strip())]


def in_folders(folders: Sequence[str]) -> str:
    """Records in any of ``folders`` or in a folder below one: a folder holds its subfolders ("spring
    launch" holds "spring launch/food", not "spring launchpad"). "Below X" is a range, not a ``like``
    pattern, so no name needs its wildcards escaped: every name that starts with "X/" sorts at or
    after "X/" and before "X0" ("0" follows "/"), on Lite and on a server alike."""
    names = folder_names(folders)
    below = [f"(folder >= {quote(name + '/')} and folder < {quote(name + '0')})" for name in names]
    return "(" + " or ".join([one_of("folder", names), *below]) + ")" if names else ""


def within(folder: str, folders: Sequence[str]) -> bool:
    """Whether ``folder`` is one of ``folders`` (as :func:`folder_names` gives them) or below one:
    :func:`in_folders` for a record in memory."""
    return any(folder == name or folder.startswith(name + "/") for name in folders)


def _contains(stems: Sequence[str]) -> str:
    return f"text like {quote('% ' + ' '.join(stems) + ' %')}"


def text_filter(phrases: Sequence[Sequence[str]], without: Sequence[Sequence[str]]) -> Filter:
    """Records whose words (rag/store/words.py: stemmed, between single spaces) hold each of ``phrases``
    and none of ``without``, each a run of stemmed words in that order."""
    kept, dropped = [tuple(p) for p in phrases if p], [tuple(w) for w in without if w]
    parts = [_contains(p) for p in kept] + [f"not ({_contains(w)})" for w in dropped]
    return Filter(" and ".join(parts), [Clause("phrase", p) for p in kept] + [Clause("without", w) for w in dropped])


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
) -> Filter:
    """A filter expression from the UI's/CLI's choices; empty choices mean 'no restriction'.

    Several values of one kind match any of them (a folder OR another); kinds combine with AND. A folder
    includes its subfolders.
    """
    parts, clauses = [], []
    if folders and (tree := in_folders(folders)):
        parts.append(tree)
        clauses.append(Clause("folder", tuple(folder_names(folders))))
    if sources:
        parts.append(one_of("source", sources))
        clauses.append(Clause("source", tuple(map(str, sources))))
    if tags:
        parts.append(f'json_contains_any(meta["tags"], [{", ".join(quote(t) for t in tags)}])')
        clauses.append(Clause("tags", tuple(map(str, tags))))
    if models:  # Lite refuses `in` on a JSON key
        parts.append("(" + " or ".join(f'meta["model"] == {quote(m)}' for m in models) + ")")
        clauses.append(Clause("model", tuple(map(str, models))))
    if added_after is not None:
        parts.append(f"created >= {float(added_after)!r}")
        clauses.append(Clause("after", bound=float(added_after)))
    if added_before is not None:
        parts.append(f"created < {float(added_before)!r}")
        clauses.append(Clause("before", bound=float(added_before)))
    return Filter(" and ".join(parts), clauses)

"""The fields a search filters on, held beside Lite's vectors in memory, and filters applied to them.

A search with a folder, source or tag, a date, a quoted phrase or a ``-word`` went to Milvus Lite,
which walks every stored row in Python before it filters (~310 ms at 100k images). The copy of the
vectors (rag/store/lite_mirror.py) keeps these columns beside them, row for row, and applies the
:class:`rag.store.filters.Clause` values that come with a :class:`rag.store.filters.Filter` at array
speed: text fields as small integer codes (a filter looks at the few distinct folders, then at every
row's code at once), tags as row sets, the date as a float array. Phrases and ``-words`` start from
the word index's postings and check the candidates' text, so they cost what the word costs, not
what the library costs. What each clause keeps is exactly what Milvus' expression keeps (see
:mod:`rag.store.filters`); tests/test_speed.py compares the two on random filters.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from itertools import repeat
from typing import Any

import numpy as np

from rag.store.filters import Clause, within
from rag.store.lite_words import tokens

Holding = Callable[[str], AbstractSet[str]]  # a term -> the ids of the records whose words hold it


class _Codes:
    """One text field as an integer per row, and the distinct values those integers stand for."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._code: dict[str, int] = {}

    def code(self, value: str) -> int:
        found = self._code.get(value)
        if found is None:
            found = self._code[value] = len(self.values)
            self.values.append(value)
        return found

    def where(self, keep: Callable[[str], bool]) -> np.ndarray:
        """The codes of the values ``keep`` accepts."""
        return np.asarray([c for c, v in enumerate(self.values) if keep(v)], dtype=np.int32)


def _meta(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = {}
    return meta if isinstance(meta, dict) else {}


class FieldColumns:
    """Folder, source, model, tags, date added and words of each row of the mirror's matrix; rows move as
    the matrix's do. Not thread-safe: the mirror holds its lock around every call."""

    FIELDS = ("folder", "source", "created", "meta")  # what a record must bring, besides its words

    def __init__(self) -> None:
        self.complete = True  # every row came with its fields (a write without them turns filters to Milvus)
        self.worded = True  # and with its words (a collection without them leaves phrases to Milvus)
        self._codes = {name: _Codes() for name in ("folder", "source", "model")}
        self._columns = {name: np.zeros(0, dtype=np.int32) for name in self._codes}
        self._created = np.zeros(0, dtype=np.float64)
        self._tags: list[tuple[str, ...]] = []
        self._texts: list[str] = []
        self._tagged: dict[str, set[int]] = {}  # tag -> rows

    def set(self, row: int, record: Mapping[str, Any] | None, text: str | None) -> None:
        """Hold ``record``'s fields at ``row`` (the next free row, or one already held)."""
        if record is None:
            self.complete = False
            record = {}
        if text is None:
            self.worded = False
        if row == len(self._tags):
            self._grow(row + 1)
            self._tags.append(())
            self._texts.append("")
        meta = _meta(record)
        model, tags = meta.get("model"), meta.get("tags")
        values = {"folder": record.get("folder"), "source": record.get("source"),
                  "model": model if isinstance(model, str) else None}
        for name, value in values.items():
            self._columns[name][row] = self._codes[name].code(value) if isinstance(value, str) else -1
        self._created[row] = float(record.get("created") or 0.0)
        self._retag(row, tuple(dict.fromkeys(t for t in tags if isinstance(t, str))) if isinstance(tags, list) else ())
        self._texts[row] = str(text or "")

    def _grow(self, size: int) -> None:
        if size <= len(self._created):
            return
        capacity = max(1024, 2 * len(self._created), size)
        for name, column in self._columns.items():
            self._columns[name] = np.concatenate([column, np.full(capacity - len(column), -1, dtype=np.int32)])
        self._created = np.concatenate([self._created, np.zeros(capacity - len(self._created))])

    def _retag(self, row: int, tags: tuple[str, ...]) -> None:
        for tag in self._tags[row]:
            rows = self._tagged[tag]
            rows.discard(row)
            if not rows:
                del self._tagged[tag]
        self._tags[row] = tags
        for tag in tags:
            self._tagged.setdefault(tag, set()).add(row)

    def remove(self, row: int) -> None:
        """Drop ``row``: the last row moves into its place, as in the mirror's matrix."""
        last = len(self._tags) - 1
        tags = self._tags[last]
        self._retag(last, ())
        if row != last:
            for column in self._columns.values():
                column[row] = column[last]
            self._created[row] = self._created[last]
            self._texts[row] = self._texts[last]
            self._retag(row, tags)
        self._tags.pop()
        self._texts.pop()

    def mask(self, clauses: Sequence[Clause], holding: Holding, row_of: Mapping[str, int]) -> np.ndarray | None:
        """Which rows meet every clause, as a boolean array; None when they cannot be told here
        (a clause of a kind this copy does not hold, or rows written without their fields)."""
        if not self.complete:
            return None
        n = len(self._tags)
        keep = np.ones(n, dtype=bool)
        for clause in sorted(clauses, key=lambda c: c.field in ("phrase", "without")):  # words last, on fewer rows
            found = self._clause(clause, keep, holding, row_of)
            if found is None:
                return None
            keep &= found
        return keep

    def _clause(self, clause: Clause, keep: np.ndarray, holding: Holding, row_of: Mapping[str, int]) -> np.ndarray | None:
        """The rows that meet ``clause``; a phrase or ``-word`` looks only at the rows still kept."""
        values, n = clause.values, len(keep)
        if clause.field == "folder":
            return self._coded("folder", n, lambda v: within(v, values))
        if clause.field in ("source", "model"):
            return self._coded(clause.field, n, lambda v: v in values)
        if clause.field == "after":
            return self._created[:n] >= clause.bound
        if clause.field == "before":
            return self._created[:n] < clause.bound
        if clause.field == "tags":
            return self._rows(n, set().union(*(self._tagged.get(t, ()) for t in values)))
        if clause.field in ("phrase", "without") and self.worded:
            found = self._rows(n, self._holding(values, keep, holding, row_of))
            return found if clause.field == "phrase" else ~found
        return None

    def _coded(self, name: str, n: int, keep: Callable[[str], bool]) -> np.ndarray:
        return np.isin(self._columns[name][:n], self._codes[name].where(keep))

    @staticmethod
    def _rows(n: int, rows: Iterable[int] | np.ndarray) -> np.ndarray:
        keep = np.zeros(n, dtype=bool)
        keep[rows if isinstance(rows, np.ndarray) else np.fromiter(rows, dtype=np.int64)] = True
        return keep

    def _holding(self, stems: Sequence[str], keep: np.ndarray, holding: Holding, row_of: Mapping[str, int]) -> np.ndarray:
        """The rows of ``keep`` whose words hold ``stems`` in a row (Milvus: ``text like "% a b %"``): the
        records the word index gives for every term of the run, each checked for the run itself."""
        needle = " " + " ".join(stems) + " "
        terms = set(tokens(needle))
        rows = np.arange(len(keep))  # a run of stop words only, which the index leaves out: every row
        if terms:
            postings = sorted((holding(t) for t in terms), key=len)
            ids = set(postings[0]).intersection(*postings[1:])
            rows = np.fromiter(map(row_of.__getitem__, ids), dtype=np.int64, count=len(ids))
        rows = rows[keep[rows]]
        texts = map(self._texts.__getitem__, rows.tolist())  # map, not a loop: C speed at 100k rows
        return rows[np.fromiter(map(operator.contains, texts, repeat(needle)), dtype=bool, count=len(rows))]

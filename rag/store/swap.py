"""The rebuild-and-swap half of :class:`rag.store.milvus.MilvusStore`, for :mod:`rag.library.reindex`.

A rebuilt collection is filled beside the live one (``sibling``), marked complete, and swapped in by
two renames; a crash between them is finished (or undone) the next time the library opens.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from rag.store import lite_mirror

if TYPE_CHECKING:
    from typing import Self

COMPLETE_PROPERTY = "banana.reindex_complete"  # set on a rebuilt collection once every record is in
REBUILD_SUFFIX, OLD_SUFFIX = "__rebuild", "__old"  # rag/library/reindex.py: the new collection, the old one while they swap


class CollectionSwapMixin:
    client: Any
    collection: str
    strict: bool
    _db: str
    _warm: bool
    _current_model: str
    _listeners: list[Any]

    if TYPE_CHECKING:
        def _call(self, action: str, *, write: bool = False) -> AbstractContextManager[None]: ...
        def _ensure_collection(self, model_name: str) -> None: ...

    def _finish_swap(self) -> None:
        """Complete (or undo) a swap that ``reindex`` began and a crash interrupted: a finished new
        collection takes the name; an unfinished one leaves the old collection where it was."""
        names = set(self.client.list_collections())
        new, old = self.collection + REBUILD_SUFFIX, self.collection + OLD_SUFFIX
        if self.collection not in names and new in names and self._complete(new):
            lite_mirror.forget(self._db)
            self.client.rename_collection(new, self.collection)
        elif self.collection not in names and old in names:
            self.client.rename_collection(old, self.collection)
        if old in names and self.collection in set(self.client.list_collections()):
            self.client.drop_collection(old)

    def _complete(self, name: str) -> bool:
        props = self.client.describe_collection(name).get("properties") or {}
        return str(props.get(COMPLETE_PROPERTY) or "") == "yes"

    def sibling(self, collection: str) -> Self:
        """The same database's ``collection`` (created if missing), sharing this store's connection."""
        other = copy.copy(self)
        other.collection, other._listeners, other.strict, other._warm = collection, [], True, False
        with other._call("open the new collection"):
            other._ensure_collection(self._current_model)
        return other

    def mark_complete(self) -> None:
        """Note on a rebuilt collection that every record is in (a crash after this still swaps)."""
        with self._call("mark the rebuilt collection complete"):
            self.client.alter_collection_properties(self.collection, properties={COMPLETE_PROPERTY: "yes"})

    def drop_collection(self, name: str) -> None:
        lite_mirror.forget(self._db, name)
        with self._call(f"drop the collection {name}"):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    def swap_in(self, rebuilt: str) -> None:
        """Make ``rebuilt`` this store's collection: the old one is renamed aside, then dropped."""
        old = self.collection + OLD_SUFFIX
        lite_mirror.forget(self._db)
        with self._call("switch to the rebuilt collection"):
            self.client.release_collection(self.collection)
            self.client.rename_collection(self.collection, old)
            self.client.rename_collection(rebuilt, self.collection)
            self.client.drop_collection(old)
            self._ensure_collection(self._current_model)

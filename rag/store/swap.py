"""Rebuild-and-swap of a store's collection, for :mod:`rag.library.reindex`.

A rebuilt collection is filled beside the live one (``MilvusStore.sibling``), marked complete, and
swapped in by two renames; a crash between them is finished (or undone) the next time the library
opens (:meth:`CollectionSwap.finish`).
"""

from __future__ import annotations

from rag.store import lite_mirror
from rag.store.connection import MilvusConnection

COMPLETE_PROPERTY = "banana.reindex_complete"  # set on a rebuilt collection once every record is in
REBUILD_SUFFIX, OLD_SUFFIX = "__rebuild", "__old"  # rag/library/reindex.py: the new collection, the old one while they swap


class CollectionSwap:
    """The renames that put a rebuilt collection in the place of ``collection``, through the store's connection."""

    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self.connection, self.collection = connection, collection

    def finish(self) -> None:
        """Complete (or undo) a swap that ``reindex`` began and a crash interrupted: a finished new
        collection takes the name; an unfinished one leaves the old collection where it was.
        Called with the connection held, as the collection opens."""
        client = self.connection.client
        names = set(client.list_collections())
        new, old = self.collection + REBUILD_SUFFIX, self.collection + OLD_SUFFIX
        if self.collection not in names and new in names and self._complete(new):
            lite_mirror.forget(self.connection.db)
            client.rename_collection(new, self.collection)
        elif self.collection not in names and old in names:
            client.rename_collection(old, self.collection)
        if old in names and self.collection in set(client.list_collections()):
            client.drop_collection(old)

    def _complete(self, name: str) -> bool:
        props = self.connection.client.describe_collection(name).get("properties") or {}
        return str(props.get(COMPLETE_PROPERTY) or "") == "yes"

    def mark_complete(self) -> None:
        """Note on ``collection`` (a rebuilt one) that every record is in: a crash after this still swaps."""
        with self.connection.call("mark the rebuilt collection complete"):
            self.connection.client.alter_collection_properties(self.collection, properties={COMPLETE_PROPERTY: "yes"})

    def drop(self, name: str) -> None:
        """Drop the collection ``name`` of this database, if there is one, and its copy in memory."""
        lite_mirror.forget(self.connection.db, name)
        with self.connection.call(f"drop the collection {name}"):
            if self.connection.client.has_collection(name):
                self.connection.client.drop_collection(name)

    def swap_in(self, rebuilt: str) -> None:
        """Rename ``collection`` aside, ``rebuilt`` in its place, and drop the old one; the copies of the
        database in memory go first (they hold the old vectors). The caller opens the collection again."""
        old = self.collection + OLD_SUFFIX
        lite_mirror.forget(self.connection.db)
        with self.connection.call("switch to the rebuilt collection"):
            client = self.connection.client
            client.release_collection(self.collection)
            client.rename_collection(self.collection, old)
            client.rename_collection(rebuilt, self.collection)
            client.drop_collection(old)

"""Review links, the items each one shows and what reviewers said, in the sessions database (``sessions.db``).

The tables live beside the sessions and campaigns they point at, written through
:meth:`rag.generation.SessionStore.write` (one connection, lock and transaction rules, as
:mod:`rag.campaigns.records` does). A link keeps only its token's hash and its password's hash
(:mod:`rag.reviews.tokens`). What a link shows is fixed when it is made (``review_items``), so a link
never shows more than its owner chose; a note says who (a name the reviewer typed), when, and what:
approved, rejected, or a comment. Owner lookups take ``user`` (:func:`rag.generation.visible_to`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from rag.core import BananaError
from rag.generation import SessionStore, new_id, visible_to

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_links (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    user TEXT NOT NULL, kind TEXT NOT NULL, source_id TEXT NOT NULL, title TEXT NOT NULL, expires REAL NOT NULL,
    revoked REAL NOT NULL DEFAULT 0, password TEXT NOT NULL DEFAULT '', comments INTEGER NOT NULL,
    downloads INTEGER NOT NULL, watermark INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS review_links_by_source ON review_links(kind, source_id);
CREATE TABLE IF NOT EXISTS review_items (link_id TEXT NOT NULL REFERENCES review_links(id), n INTEGER NOT NULL,
    kind TEXT NOT NULL, ref TEXT NOT NULL, image_id TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (link_id, n));
CREATE INDEX IF NOT EXISTS review_items_by_image ON review_items(image_id);
CREATE TABLE IF NOT EXISTS review_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, link_id TEXT NOT NULL
    REFERENCES review_links(id), n INTEGER NOT NULL, created REAL NOT NULL, reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL, comment TEXT NOT NULL, accepted REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS review_notes_by_link ON review_notes(link_id, n);
"""
KINDS = ("campaign", "session", "images")  # what a link shares
VERDICTS = ("approved", "rejected", "")  # "": a comment alone
MAX_NOTES = 5000  # one link's notes: a reviewer cannot fill the disk


@dataclass(frozen=True)
class ReviewLink:
    """One link: what it shares (``kind``, ``source_id``, ``title``), until when, and what a reviewer may do."""

    id: str
    created: float
    user: str
    kind: str
    source_id: str
    title: str
    expires: float
    revoked: float = 0.0
    password: str = field(default="", repr=False)  # scrypt hash, "" for none
    comments: bool = False  # reviewers may approve, reject and comment (else: view only)
    downloads: bool = False  # the originals may be downloaded (else: previews only)
    watermark: bool = False  # previews carry "For review — <title>"

    def state(self, now: float | None = None) -> str:
        """active, expired or revoked."""
        if self.revoked:
            return "revoked"
        return "expired" if self.expires <= (time.time() if now is None else now) else "active"

    def to_dict(self) -> dict[str, object]:
        """The link as the API and ``--json`` show it: never its password's hash."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "password"},
                "protected": bool(self.password), "state": self.state()}


@dataclass(frozen=True)
class SharedItem:
    """Image ``n`` of a link: a session version (``kind`` version) or a library asset (``kind`` asset)."""

    link_id: str
    n: int
    kind: str
    ref: str
    image_id: str  # the library id the image has (or would have, saved): the asset page finds its notes by it
    label: str


@dataclass(frozen=True)
class ReviewNote:
    """What one reviewer said about one item, and when; ``accepted`` is when the owner took the verdict over."""

    id: int
    link_id: str
    n: int
    created: float
    reviewer: str
    verdict: str
    comment: str
    accepted: float = 0.0


class ReviewStore:
    """Review records over a :class:`SessionStore`'s connection; thread-safe like it."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        sessions.set_up(_SCHEMA, "set up review links")

    def create(self, link: ReviewLink, token_hash: str, items: Sequence[tuple[str, str, str, str]]) -> ReviewLink:
        """A new link and its items (``(kind, ref, image_id, label)``, numbered from 1) in one transaction."""
        row = {**{f.name: getattr(link, f.name) for f in fields(link)}, "id": link.id or new_id()}
        with self.sessions.write("record the review link") as db:
            db.execute("INSERT INTO review_links (id, token_hash, created, user, kind, source_id, title, expires, revoked,"
                       " password, comments, downloads, watermark) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (row["id"], token_hash, row["created"], row["user"], row["kind"], row["source_id"], row["title"],
                        row["expires"], row["revoked"], row["password"], int(row["comments"]), int(row["downloads"]),
                        int(row["watermark"])))
            db.executemany("INSERT INTO review_items VALUES (?, ?, ?, ?, ?, ?)",
                           [(row["id"], n, *item) for n, item in enumerate(items, start=1)])
        return self.link(row["id"])

    def by_token_hash(self, token_hash: str) -> ReviewLink | None:
        rows = self.sessions.read("SELECT * FROM review_links WHERE token_hash = ?", (token_hash,))
        return _link(rows[0]) if rows else None

    def link(self, ref: str, user: str | None = None) -> ReviewLink:
        """A link by id or unique id prefix; another user's reads as not found."""
        where, args = visible_to(user)
        rows = self.sessions.read(f"SELECT * FROM review_links WHERE id LIKE ? || '%' AND {where} LIMIT 2",
                                  (_prefix(ref), *args))
        if len(rows) != 1:
            why = "matches several review links; give more of it" if rows else "is not a review link here"
            raise BananaError(f"{ref[:64]!r} {why}. `python -m rag shares` lists them.")
        return _link(rows[0])

    def links(self, limit: int = 50, user: str | None = None, kind: str = "", source_id: str = "") -> list[ReviewLink]:
        """Links newest first; only those sharing ``kind``/``source_id`` when given."""
        where, args = visible_to(user)
        if kind:
            where, args = f"{where} AND kind = ? AND source_id = ?", [*args, kind, source_id]
        rows = self.sessions.read(f"SELECT * FROM review_links WHERE {where} ORDER BY created DESC LIMIT ?",
                                  (*args, int(limit)))
        return [_link(r) for r in rows]

    def revoke(self, link_id: str) -> None:
        with self.sessions.write("revoke the review link") as db:
            db.execute("UPDATE review_links SET revoked = ? WHERE id = ? AND revoked = 0", (time.time(), link_id))

    def items(self, link_id: str) -> list[SharedItem]:
        rows = self.sessions.read("SELECT * FROM review_items WHERE link_id = ? ORDER BY n", (link_id,))
        return [SharedItem(**dict(r)) for r in rows]

    def item(self, link_id: str, n: int) -> SharedItem | None:
        rows = self.sessions.read("SELECT * FROM review_items WHERE link_id = ? AND n = ?", (link_id, int(n)))
        return SharedItem(**dict(rows[0])) if rows else None

    def add_notes(self, link_id: str, notes: Sequence[tuple[int, str, str, str]]) -> int:
        """Record ``(n, reviewer, verdict, comment)`` notes; refused past :data:`MAX_NOTES` for one link."""
        now = time.time()
        with self.sessions.write("record the review") as db:
            held = db.execute("SELECT COUNT(*) FROM review_notes WHERE link_id = ?", (link_id,)).fetchone()[0]
            if held + len(notes) > MAX_NOTES:
                raise BananaError("This link holds as many notes as it can; ask whoever sent it for a new one.")
            db.executemany("INSERT INTO review_notes (link_id, n, created, reviewer, verdict, comment) VALUES"
                           " (?, ?, ?, ?, ?, ?)", [(link_id, n, now, who, verdict, text) for n, who, verdict, text in notes])
        return len(notes)

    def notes(self, link_id: str) -> list[ReviewNote]:
        """A link's notes, oldest first: its history."""
        rows = self.sessions.read("SELECT * FROM review_notes WHERE link_id = ? ORDER BY id", (link_id,))
        return [ReviewNote(**dict(r)) for r in rows]

    def notes_on(self, *, kind: str = "", source_id: str = "", image_id: str = "",
                 user: str | None = None) -> list[tuple[ReviewNote, SharedItem, ReviewLink]]:
        """Every note on the links sharing ``kind``/``source_id``, or on the image ``image_id`` in any link ``user``
        may see, oldest first, each with its item and link."""
        where, args = visible_to(user, "l.user")
        if image_id:
            where, args = f"{where} AND i.image_id = ?", [*args, image_id]
        else:
            where, args = f"{where} AND l.kind = ? AND l.source_id = ?", [*args, kind, source_id]
        rows = self.sessions.read(
            "SELECT n.*, i.kind AS i_kind, i.ref AS i_ref, i.image_id AS i_image_id, i.label AS i_label, l.id AS l_id"
            " FROM review_notes n JOIN review_items i ON i.link_id = n.link_id AND i.n = n.n"
            f" JOIN review_links l ON l.id = n.link_id WHERE {where} ORDER BY n.id LIMIT {MAX_NOTES}", args)
        links = {r["l_id"]: self.link(r["l_id"]) for r in rows}
        return [(_note(r), SharedItem(r["link_id"], r["n"], r["i_kind"], r["i_ref"], r["i_image_id"], r["i_label"]),
                 links[r["l_id"]]) for r in rows]

    def accept(self, note_ids: Sequence[int]) -> None:
        """Mark notes as taken over by the owner (their verdict is now the campaign's)."""
        with self.sessions.write("record the accepted review") as db:
            db.executemany("UPDATE review_notes SET accepted = ? WHERE id = ?", [(time.time(), int(i)) for i in note_ids])


def _prefix(ref: str) -> str:
    """An id prefix safe inside LIKE (ids are hex): anything else matches nothing."""
    text = str(ref).strip()
    return text if text and all(c in "0123456789abcdef" for c in text) else "-"


def _note(row: sqlite3.Row) -> ReviewNote:
    return ReviewNote(**{f.name: row[f.name] for f in fields(ReviewNote)})


def _link(row: sqlite3.Row) -> ReviewLink:
    data = {f.name: row[f.name] for f in fields(ReviewLink)}
    return ReviewLink(**{**data, **{k: bool(data[k]) for k in ("comments", "downloads", "watermark")}})

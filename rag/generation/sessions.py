"""Sessions, versions and every paid attempt, in one SQLite database in ``BANANA_DATA_DIR``.

With :mod:`rag.campaigns.records` (which writes its tables through :meth:`SessionStore.write` and
:meth:`SessionStore.read`, so both share one connection, lock and transaction rules), the only
module that speaks SQL. A *session* is a tree of *versions*; each generated version
belongs to a *turn*: the user's Content that was sent and the model's Content that came back, kept
verbatim (thought signatures included) so a later turn can send the conversation again, after a
restart too. Every paid *attempt* and the daily budget are :mod:`rag.generation.attempts`, on the
same connection. WAL mode lets the app and the CLI share the file; writes that check the budget run
in ``BEGIN IMMEDIATE`` transactions, so two requests can never both squeeze under the cap.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.core import BananaError, os_error_text
from rag.generation.attempts import Attempt, AttemptLedger
from rag.generation.base import Content

SCHEMA_VERSION = 1
FILE_NAME = "sessions.db"
_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, user TEXT NOT NULL,
    title TEXT NOT NULL, base_asset_id TEXT NOT NULL DEFAULT '');
CREATE TABLE turns (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id), parent_id TEXT,
    created REAL NOT NULL, user TEXT NOT NULL, instruction TEXT NOT NULL, model TEXT NOT NULL,
    aspect_ratio TEXT NOT NULL, image_size TEXT NOT NULL, refs TEXT NOT NULL, request TEXT NOT NULL,
    reply TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE versions (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id),
    turn_id TEXT REFERENCES turns(id), parent_id TEXT, seq INTEGER NOT NULL, created REAL NOT NULL,
    path TEXT NOT NULL, image_id TEXT NOT NULL, cost_usd REAL NOT NULL);
CREATE INDEX versions_by_session ON versions(session_id, seq);
CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, day TEXT NOT NULL,
    user TEXT NOT NULL, session_id TEXT NOT NULL, parent_id TEXT NOT NULL, model TEXT NOT NULL,
    image_size TEXT NOT NULL, prompt TEXT NOT NULL, refs TEXT NOT NULL, requested INTEGER NOT NULL,
    images INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL, outcome TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', version_ids TEXT NOT NULL DEFAULT '[]');
CREATE INDEX attempts_by_day ON attempts(day, user);
"""
_VERSION_SQL = """SELECT v.*, t.instruction, t.model, t.aspect_ratio, t.image_size, t.refs, t.text, t.user,
    c.label AS text_check FROM versions v LEFT JOIN turns t ON t.id = v.turn_id
    LEFT JOIN text_checks c ON c.version_id = v.id"""
# The text check of a version's picture (rag/generation/text_check.py); made on open, so older files get it too.
_TEXT_CHECKS = """CREATE TABLE IF NOT EXISTS text_checks (version_id TEXT PRIMARY KEY REFERENCES versions(id),
    verdict TEXT NOT NULL, label TEXT NOT NULL, asked TEXT NOT NULL, found TEXT NOT NULL)"""
_SESSION_SQL = """SELECT s.*, COUNT(v.id) AS n_versions, COALESCE(SUM(v.cost_usd), 0) AS cost_usd
    FROM sessions s LEFT JOIN versions v ON v.session_id = s.id"""


def _why(exc: Exception) -> str:
    """A database or OS error in words; a full disk reads as it does everywhere else in the app."""
    if isinstance(exc, OSError):
        return os_error_text(exc)
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        return "the disk is full; free some space and try again"
    return str(exc)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


EDIT_PREFIX = "Edit "
REGION_PREFIX = "region: "
"""How a region edit's instruction starts (rag/generation/region_edit.py). Its turn sent the model a crop, not
the picture, so a refinement of its picture starts afresh from the picture and no conversation reaches past it."""


@dataclass(frozen=True)
class Session:
    id: str
    created: float
    updated: float
    user: str
    title: str
    base_asset_id: str = ""
    n_versions: int = 0
    cost_usd: float = 0.0

    @staticmethod
    def edit_title(filename: str) -> str:
        """The title of an "Edit this" session: what History and the session list show."""
        return EDIT_PREFIX + filename

    @property
    def edited_file(self) -> str:
        """The library file an "Edit this" session started from ("" for other sessions)."""
        return self.title.removeprefix(EDIT_PREFIX) if self.base_asset_id and self.title.startswith(EDIT_PREFIX) else ""


@dataclass(frozen=True)
class Version:
    """One image of a session. ``seq`` 0 is a library image the session started from (no turn)."""

    id: str
    session_id: str
    seq: int
    parent_id: str | None
    turn_id: str | None
    created: float
    path: str
    image_id: str  # sha256 of the file: the id the library gives it
    cost_usd: float
    instruction: str = ""
    model: str = ""
    aspect_ratio: str = ""
    image_size: str = ""
    references: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    user: str = ""
    text_check: str = ""  # "text as asked", "text differs: '...'", "no text found"; "" when the prompt quoted nothing

    @property
    def label(self) -> str:
        return "original" if self.turn_id is None else f"v{self.seq}"


def _statements(schema: str) -> list[str]:
    return [statement for statement in schema.split(";") if statement.strip()]


class SessionStore:
    """The database: open once per process; every method is thread-safe and speaks in records.

    Its attempts and the budget are kept by ``self.ledger`` (:class:`rag.generation.attempts.AttemptLedger`), on
    this connection; the methods below of the same names hand over to it.
    """

    def __init__(self, data_dir: str | Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._now = now
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise BananaError(f"The sessions database at {self.path} could not be opened ({_why(exc)}).") from None
        with self.write("set up") as db:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise BananaError(f"The sessions database at {self.path} was written by a newer Banana Studio; upgrade.")
            if found == 0:
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute(_TEXT_CHECKS)
        self.ledger = AttemptLedger(self.write, self.read, now)

    def spent(self, day: str | None = None) -> float:
        return self.ledger.spent(day)

    def begin_attempt(self, **request: Any) -> int:
        return self.ledger.begin_attempt(**request)

    def end_attempt(self, attempt_id: int, **outcome: Any) -> None:
        self.ledger.end_attempt(attempt_id, **outcome)

    def attempts(self, limit: int = 200, *, user: str | None = None, day: str | None = None) -> list[Attempt]:
        return self.ledger.attempts(limit, user=user, day=day)

    def totals(self, days: int = 30, user: str | None = None) -> list[dict[str, Any]]:
        return self.ledger.totals(days, user)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One transaction that takes the write lock at once (so a budget check and its insert are atomic)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BananaError(f"The sessions database at {self.path} could not {doing} ({_why(exc)}).") from None

    def set_up(self, schema: str, doing: str) -> None:
        """Run ``schema``'s statements (``;``-separated, each ``IF NOT EXISTS``) in one transaction: how the records
        that share this database (campaigns, review links) make their tables."""
        with self.write(doing) as db:
            for statement in _statements(schema):
                db.execute(statement)

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise BananaError(f"The sessions database at {self.path} could not be read ({_why(exc)}).") from None

    # -- sessions and versions
    def new_session(self, *, user: str, title: str, base_asset_id: str = "") -> Session:
        now = self._now()
        session = Session(new_id(), now, now, user, title.strip()[:200], base_asset_id)
        with self.write("start a session") as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                       (session.id, now, now, user, session.title, base_asset_id))
        return session

    def session(self, ref: str, owner: str = "") -> Session:
        """A session by id or unique id prefix (what the CLI prints); with ``owner``, only that user's.

        Another user's session reads exactly like one that does not exist, so ids cannot be probed.
        """
        mine, args = visible_to(owner, "s.user")
        rows = self.read(f"{_SESSION_SQL} WHERE s.id LIKE ? || '%' AND {mine} GROUP BY s.id LIMIT 2",
                         [ref.strip() or "?", *args])
        if len(rows) != 1:
            why = "matches several sessions; give more of it" if rows else "is not a session here"
            raise BananaError(f"{ref!r} {why}. `python -m rag sessions` lists them.")
        return Session(**dict(rows[0]))

    def sessions(self, limit: int = 20, user: str | None = None) -> list[Session]:
        """The most recently used sessions first (:func:`visible_to` ``user``)."""
        where, args = visible_to(user, "s.user")
        rows = self.read(f"{_SESSION_SQL} WHERE {where} GROUP BY s.id ORDER BY s.updated DESC LIMIT ?", [*args, limit])
        return [Session(**dict(r)) for r in rows]

    def versions(self, session_id: str) -> list[Version]:
        return [_version(r) for r in self.read(f"{_VERSION_SQL} WHERE v.session_id = ? ORDER BY v.seq", (session_id,))]

    def version(self, ref: str, session_id: str | None = None, owner: str = "") -> Version:
        """A version by id or unique prefix; within ``session_id`` also by label (``v3``, ``3``, ``original``).

        With ``owner``, only versions of that user's sessions, as :meth:`session`.
        """
        ref = ref.strip()
        if session_id is not None:
            for v in self.versions(self.session(session_id, owner).id):
                if ref in (v.id, v.label, str(v.seq)):
                    return v
        mine, args = _owned_versions(owner)
        rows = self.read(f"{_VERSION_SQL} WHERE v.id LIKE ? || '%' {mine} LIMIT 2", [ref or "?", *args])
        if len(rows) != 1 or (session_id is not None and rows[0]["session_id"] != session_id):
            raise BananaError(f"{ref!r} is not a version of {'this session' if session_id else 'any session'}.")
        return _version(rows[0])

    def versions_at(self, paths: Sequence[str], owner: str = "") -> list[Version]:
        """The versions whose image files are ``paths`` (what /generate returned); with ``owner``, that user's only."""
        mine, args = _owned_versions(owner)
        marks = ", ".join("?" * len(paths))
        return [_version(r) for r in self.read(f"{_VERSION_SQL} WHERE v.path IN ({marks}) {mine}", [*paths, *args])]

    def add_original(self, session_id: str, *, path: str, image_id: str) -> Version:
        """The library image an "Edit this" session starts from: version 0, with no turn behind it."""
        with self.write("add the original") as db:
            vid = new_id()
            db.execute("INSERT INTO versions VALUES (?, ?, NULL, NULL, 0, ?, ?, ?, 0)",
                       (vid, session_id, self._now(), path, image_id))
        return self.version(vid)

    def add_turn(self, session_id: str, parent_id: str | None, *, user: str, instruction: str, model: str,
                 aspect_ratio: str, image_size: str, references: list[dict[str, Any]], request: Content,
                 reply: Content, text: str, images: Sequence[tuple[str, str, float]]) -> list[Version]:
        """One answered request and its images (``(path, image_id, cost)``) as new versions, in one transaction."""
        now, turn_id = self._now(), new_id()
        ids = [new_id() for _ in images]
        with self.write("record the new version") as db:
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (turn_id, session_id, parent_id, now, user, instruction, model, aspect_ratio, image_size,
                        json.dumps(references), json.dumps(request), json.dumps(reply), text))
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM versions WHERE session_id = ?", (session_id,)).fetchone()[0]
            for i, (vid, (path, image_id, cost)) in enumerate(zip(ids, images), start=1):
                db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (vid, session_id, turn_id, parent_id, seq + i, now, path, image_id, cost))
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        return [self.version(vid) for vid in ids]

    def record_text_checks(self, checks: dict[str, tuple[str, str, list[str], list[str]]]) -> None:
        """Each version's text check: ``{version_id: (verdict, label, asked, found)}`` (a new check replaces one)."""
        with self.write("record the text check") as db:
            db.executemany("INSERT OR REPLACE INTO text_checks VALUES (?, ?, ?, ?, ?)",
                           [(vid, verdict, label, json.dumps(asked), json.dumps(found))
                            for vid, (verdict, label, asked, found) in checks.items()])

    def history(self, version_id: str | None) -> list[Content]:
        """The conversation that led to a version, oldest turn first, back to where its model changed (a turn that
        continued on another model sent the earlier image as its reference; signatures belong to their model) or
        to a region edit (its turn was about a crop)."""
        turns: list[Content] = []
        model = None  # the newest turn's
        while version_id:
            rows = self.read("SELECT v.parent_id, t.request, t.reply, t.model, t.instruction FROM versions v"
                             " LEFT JOIN turns t ON t.id = v.turn_id WHERE v.id = ?", (version_id,))
            if not rows or rows[0]["request"] is None or model not in (None, rows[0]["model"]):
                break
            if rows[0]["instruction"].startswith(REGION_PREFIX):
                break
            model = rows[0]["model"]
            turns[:0] = [json.loads(rows[0]["request"]), json.loads(rows[0]["reply"])]
            version_id = rows[0]["parent_id"]
        return turns


def visible_to(viewer: str | None, column: str = "user") -> tuple[str, list[str]]:
    """The SQL condition and arguments for what ``viewer`` may see of sessions and campaigns: without sign-in
    ("" or None) everything; a user their own and the team's (stored without an owner, before sign-in)."""
    return (f"({column} = ? OR {column} = '')", [viewer]) if viewer else ("1", [])


def _owned_versions(owner: str) -> tuple[str, list[str]]:
    """The SQL that keeps a version query to the sessions ``owner`` may see."""
    where, args = visible_to(owner)
    return (f"AND v.session_id IN (SELECT id FROM sessions WHERE {where})", args) if owner else ("", [])


def _version(row: sqlite3.Row) -> Version:
    data = dict(row)
    refs = json.loads(data.pop("refs") or "[]")
    return Version(**{k: ("" if v is None and k not in ("parent_id", "turn_id") else v) for k, v in data.items()},
                   references=refs)

"""Every paid attempt and the daily budget: the ``attempts`` table of the sessions database.

An *attempt* is one click that could cost money, with its outcome; the day's attempts are the
budget. :class:`rag.generation.sessions.SessionStore` owns an :class:`AttemptLedger` and hands it its one
connection (``write``, ``read``) and clock, so a budget check and its insert run in one ``BEGIN IMMEDIATE``
transaction and two requests can never both squeeze under the cap.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from rag.core import BudgetExceeded


def day_of(ts: float) -> str:
    """The local calendar day of a timestamp: the budget's and History's unit."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


@dataclass(frozen=True)
class Attempt:
    """One request that could cost money: who, what, and how it ended (``pending`` while it runs)."""

    id: int
    created: float
    day: str
    user: str
    session_id: str
    parent_id: str
    model: str
    image_size: str
    prompt: str
    references: list[dict[str, Any]]
    requested: int
    images: int
    cost_usd: float
    outcome: str  # ok, text-only, blocked, failed, refused, pending
    reason: str
    version_ids: list[str]


class AttemptLedger:
    """The attempts and their spend; the database and clock are :class:`rag.generation.sessions.SessionStore`'s."""

    def __init__(self, write: Callable[[str], AbstractContextManager[sqlite3.Connection]],
                 read: Callable[..., list[sqlite3.Row]], now: Callable[[], float]) -> None:
        self.write, self.read, self._now = write, read, now

    def spent(self, day: str | None = None) -> float:
        """USD of a day's attempts (today's by default), running ones at their estimate."""
        rows = self.read("SELECT COALESCE(SUM(cost_usd), 0) FROM attempts WHERE day = ?", (day or day_of(self._now()),))
        return float(rows[0][0])

    def begin_attempt(self, *, user: str, session_id: str, parent_id: str, model: str, image_size: str, prompt: str,
                      references: list[dict[str, Any]], requested: int, estimate: float, budget: float | None) -> int:
        """Record a request before it is sent, at its estimated cost; refuse it if that would pass ``budget`` today."""
        now = self._now()
        row = (now, day_of(now), user, session_id, parent_id, model, image_size, prompt, json.dumps(references), requested)
        sql = ("INSERT INTO attempts (created, day, user, session_id, parent_id, model, image_size, prompt, refs,"
               " requested, cost_usd, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        refusal = ""
        with self.write("check the budget") as db:
            spent = db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM attempts WHERE day = ?", (row[1],)).fetchone()[0]
            if budget is not None and spent + estimate > budget + 1e-9:
                # Plain words: the web page shows this (History too); the CLI adds the setting's name
                refusal = (f"Today's budget of ${budget:.2f} set for this app has ${spent:.3f} spent; this request "
                           f"would cost about ${estimate:.3f}, so it was not sent. Try again tomorrow, ask for fewer "
                           "or smaller images, or ask whoever runs the app to raise the budget.")
                db.execute(sql, (*row, 0.0, "refused", refusal))
                attempt_id = 0
            else:
                attempt_id = int(db.execute(sql, (*row, estimate, "pending", "")).lastrowid or 0)
        if refusal:
            raise BudgetExceeded(refusal)
        return attempt_id

    def end_attempt(self, attempt_id: int, *, outcome: str, images: int, cost: float, reason: str = "",
                    version_ids: Sequence[str] = (), session_id: str = "") -> None:
        """How a request ended: its outcome, what it returned and cost, and (for a first turn) its new session."""
        with self.write("record how the request ended") as db:
            db.execute("UPDATE attempts SET outcome = ?, images = ?, cost_usd = ?, reason = ?, version_ids = ?,"
                       " session_id = CASE WHEN ? = '' THEN session_id ELSE ? END WHERE id = ?",
                       (outcome, images, cost, reason[:2000], json.dumps(list(version_ids)), session_id, session_id,
                        attempt_id))

    def attempts(self, limit: int = 200, *, user: str | None = None, day: str | None = None) -> list[Attempt]:
        """The newest attempts first, optionally for one user or day."""
        clauses = [(c, a) for c, a in (("user = ?", user), ("day = ?", day)) if a is not None]
        where = ("WHERE " + " AND ".join(c for c, _ in clauses)) if clauses else ""
        rows = self.read(f"SELECT * FROM attempts {where} ORDER BY id DESC LIMIT ?", [*(a for _, a in clauses), limit])
        return [_attempt(r) for r in rows]

    def totals(self, days: int = 30, user: str | None = None) -> list[dict[str, Any]]:
        """Spend per day and user, newest day first: requests, images, USD; optionally one user's."""
        mine, args = (" AND user = ?", [user]) if user is not None else ("", [])
        rows = self.read("SELECT day, user, COUNT(*) AS requests, SUM(images) AS images, ROUND(SUM(cost_usd), 4) AS cost_usd"
                          f" FROM attempts WHERE day >= ?{mine} GROUP BY day, user ORDER BY day DESC, user",
                          [day_of(self._now() - days * 86400), *args])
        return [dict(r) for r in rows]


def _attempt(row: sqlite3.Row) -> Attempt:
    data = dict(row)
    data["references"] = json.loads(data.pop("refs"))
    data["version_ids"] = json.loads(data["version_ids"])
    return Attempt(**data)

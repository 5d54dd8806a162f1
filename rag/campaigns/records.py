"""Campaigns, their items and the review of their images, in the sessions database (``sessions.db``).

A campaign lives beside the sessions, versions and attempts it makes, in the same SQLite file and
through the same connection, lock and transactions as :class:`rag.generation.sessions.SessionStore`, so a
restart finds it where it stopped. Its tables are created here, on first use, so the sessions
schema stays as it is. Every lookup takes ``user``
(:func:`rag.generation.sessions.visible_to`): none checks nothing; a name sees that user's campaigns and the
team's from before sign-in, and another user's read as "not found", as sessions do.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from rag.core import BananaError
from rag.generation import SessionStore, differs, new_id, visible_to

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (id TEXT PRIMARY KEY, created REAL NOT NULL, user TEXT NOT NULL,
    name TEXT NOT NULL, source TEXT NOT NULL, template TEXT NOT NULL, model TEXT NOT NULL, image_size TEXT NOT NULL,
    aspect_ratios TEXT NOT NULL, per_item INTEGER NOT NULL, shared_refs TEXT NOT NULL, mode TEXT NOT NULL,
    status TEXT NOT NULL, batch_job TEXT NOT NULL DEFAULT '', batch_state TEXT NOT NULL DEFAULT '',
    estimate_usd REAL NOT NULL DEFAULT 0, batch_attempt INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS campaigns_by_user ON campaigns(user, created);
CREATE TABLE IF NOT EXISTS campaign_items (campaign_id TEXT NOT NULL REFERENCES campaigns(id), seq INTEGER NOT NULL,
    asset_id TEXT NOT NULL, asset_name TEXT NOT NULL, aspect_ratio TEXT NOT NULL, prompt TEXT NOT NULL,
    status TEXT NOT NULL, session_id TEXT NOT NULL DEFAULT '', version_ids TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (campaign_id, seq));
CREATE TABLE IF NOT EXISTS campaign_reviews (version_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL
    REFERENCES campaigns(id), verdict TEXT NOT NULL, saved_id TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS campaign_leases (campaign_id TEXT PRIMARY KEY, holder TEXT NOT NULL, since REAL NOT NULL,
    expires REAL NOT NULL);
"""
LEASE_S = 120.0  # a runner renews its lease as it goes; one whose process died lets go after this long
ITEM_STATES = ("pending", "running", "done", "failed")
VERDICTS = ("approved", "rejected", "")


@dataclass(frozen=True)
class Campaign:
    """One prompt template over many assets; ``status``: planned, running, done, cancelled, stopped, batch."""

    id: str
    created: float
    user: str
    name: str
    source: str  # how the assets were chosen, in words ("folder food")
    template: str
    model: str
    image_size: str
    aspect_ratios: list[str]
    per_item: int
    shared_refs: list[str]
    mode: str  # now or batch
    status: str
    batch_job: str = ""
    batch_state: str = ""
    estimate_usd: float = 0.0
    batch_attempt: int = 0  # the History attempt a Batch job is billed to, ended when the job ends


@dataclass(frozen=True)
class Item:
    """One request of a campaign: a source asset at one aspect ratio, its prompt, and the versions it made."""

    campaign_id: str
    seq: int
    asset_id: str
    asset_name: str
    aspect_ratio: str
    prompt: str
    status: str
    session_id: str = ""
    version_ids: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class CampaignReview:
    """A campaign as its review shows it: items, each image's verdict, counts per state and the cost so far.

    One record, so the app, the API and the CLI count and choose the same way (which items "Regenerate
    rejected" sends again, how many are done)."""

    campaign: Campaign
    items: list[Item]
    verdicts: dict[str, tuple[str, str]]  # version id -> (verdict, saved asset id)
    counts: dict[str, int]  # item state -> how many
    spent: float  # USD so far, regenerations and the Batch job included
    text_checks: dict[str, str] = field(default_factory=dict)  # version id -> its text check, in words

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "failed"]

    @property
    def rejected(self) -> list[Item]:
        """Items whose latest image was rejected: what "Regenerate rejected" sends again."""
        return [i for i in self.items if i.version_ids and self.verdicts.get(i.version_ids[-1], ("",))[0] == "rejected"]

    @property
    def unreviewed(self) -> list[str]:
        """Version ids with no verdict yet, in review order: what "Approve the rest" approves."""
        return [v for i in self.items for v in i.version_ids if not self.verdicts.get(v, ("",))[0]]

    @property
    def to_save(self) -> list[str]:
        """Version ids approved and not saved yet: what "Save approved to library" adds."""
        return approved_unsaved(self.verdicts)

    @property
    def text_differs(self) -> list[Item]:
        """Items whose latest image does not read as the prompt's quoted text: "regenerate where text differs"."""
        return [i for i in self.items if i.version_ids and differs(self.text_checks.get(i.version_ids[-1], ""))]


def approved_unsaved(verdicts: dict[str, tuple[str, str]]) -> list[str]:
    """Of a campaign's verdicts (version id -> (verdict, saved asset id)), the approved images not saved yet."""
    return [v for v, (verdict, saved) in verdicts.items() if verdict == "approved" and not saved]


class CampaignStore:
    """Campaign records over a :class:`SessionStore`'s connection; thread-safe like it."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        sessions.set_up(_SCHEMA, "set up campaigns")

    def create(self, campaign: Campaign, items: list[tuple[str, str, str, str]]) -> Campaign:
        """A new campaign and its items (``(asset_id, asset_name, aspect_ratio, prompt)``) in one transaction."""
        row = {**vars(campaign), "id": campaign.id or new_id()}
        with self.sessions.write("record the campaign") as db:
            db.execute(f"INSERT INTO campaigns VALUES ({', '.join('?' * len(row))})", _encoded(row))
            db.executemany("INSERT INTO campaign_items (campaign_id, seq, asset_id, asset_name, aspect_ratio, prompt,"
                           " status) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                           [(row["id"], i, *item) for i, item in enumerate(items, start=1)])
        return self.campaign(row["id"])

    def take_lease(self, campaign_id: str, holder: str, ttl_s: float = LEASE_S) -> None:
        """Become (or stay) the campaign's one runner, across threads and processes, or a sentence saying since
        when another one is. In one write transaction, so two callers can never both hold it."""
        now = time.time()
        with self.sessions.write("take the campaign") as db:
            row = db.execute("SELECT holder, since, expires FROM campaign_leases WHERE campaign_id = ?",
                             (campaign_id,)).fetchone()
            if row is not None and row["holder"] != holder and row["expires"] > now and not _gone(row["holder"]):
                since = time.strftime("%H:%M", time.localtime(row["since"]))
                raise BananaError(f"This campaign is already running (since {since}); wait for that run to finish.")
            since = row["since"] if row is not None and row["holder"] == holder else now
            db.execute("INSERT OR REPLACE INTO campaign_leases VALUES (?, ?, ?, ?)",
                       (campaign_id, holder, since, now + ttl_s))

    def release_lease(self, campaign_id: str, holder: str) -> None:
        with self.sessions.write("let go of the campaign") as db:
            db.execute("DELETE FROM campaign_leases WHERE campaign_id = ? AND holder = ?", (campaign_id, holder))

    def campaign(self, ref: str, user: str | None = None) -> Campaign:
        """A campaign by id or unique id prefix; another user's reads as not found."""
        where, args = visible_to(user)
        rows = self.sessions.read(f"SELECT * FROM campaigns WHERE id LIKE ? || '%' AND {where} LIMIT 2",
                                  (ref.strip() or "?", *args))
        if len(rows) != 1:
            why = "matches several campaigns; give more of it" if rows else "is not a campaign here"
            raise BananaError(f"{ref!r} {why}. `python -m rag campaigns` lists them.")
        return _campaign(rows[0])

    def campaigns(self, limit: int = 50, user: str | None = None) -> list[Campaign]:
        where, args = visible_to(user)
        rows = self.sessions.read(f"SELECT * FROM campaigns WHERE {where} ORDER BY created DESC LIMIT ?", (*args, limit))
        return [_campaign(r) for r in rows]

    def items(self, campaign_id: str) -> list[Item]:
        rows = self.sessions.read("SELECT * FROM campaign_items WHERE campaign_id = ? ORDER BY seq", (campaign_id,))
        return [Item(**{**dict(r), "version_ids": json.loads(r["version_ids"])}) for r in rows]

    def review_of(self, campaign: Campaign) -> CampaignReview:
        items = self.items(campaign.id)
        return CampaignReview(campaign, items, self.verdicts(campaign.id), self.counts(campaign.id),
                              self.spent(campaign.id), self.text_checks([v for i in items for v in i.version_ids]))

    def text_checks(self, version_ids: list[str]) -> dict[str, str]:
        """The text check of each of these versions that has one (rag/generation/text_check.py), in words."""
        found: dict[str, str] = {}
        for start in range(0, len(version_ids), 500):
            chunk = version_ids[start:start + 500]
            rows = self.sessions.read(f"SELECT version_id, label FROM text_checks WHERE version_id IN "
                                      f"({', '.join('?' * len(chunk))})", chunk)
            found |= {r["version_id"]: r["label"] for r in rows}
        return found

    def counts(self, campaign_id: str) -> dict[str, int]:
        rows = self.sessions.read("SELECT status, COUNT(*) FROM campaign_items WHERE campaign_id = ? GROUP BY status",
                                   (campaign_id,))
        return {state: 0 for state in ITEM_STATES} | {r[0]: r[1] for r in rows}

    def spent(self, campaign_id: str) -> float:
        """What the campaign has cost so far: every attempt of its items' sessions (regenerations included) and
        its Batch job's, at the price History records."""
        rows = self.sessions.read(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM attempts WHERE session_id IN (SELECT session_id FROM campaign_items"
            " WHERE campaign_id = ? AND session_id != '') OR id = (SELECT batch_attempt FROM campaigns WHERE id = ?)",
            (campaign_id, campaign_id))
        return round(float(rows[0][0]), 4)

    def set_status(self, campaign_id: str, status: str, **batch: str | int) -> None:
        """The campaign's state; ``batch_job``, ``batch_state`` and ``batch_attempt`` too when given."""
        unknown = set(batch) - {"batch_job", "batch_state", "batch_attempt"}
        if unknown:
            raise TypeError(f"unknown campaign field(s): {', '.join(sorted(unknown))}")
        sets = ["status = ?", *(f"{k} = ?" for k in batch)]
        with self.sessions.write("update the campaign") as db:
            db.execute(f"UPDATE campaigns SET {', '.join(sets)} WHERE id = ?", (status, *batch.values(), campaign_id))

    def update_item(self, campaign_id: str, seq: int, *, status: str, session_id: str | None = None,
                    version_ids: list[str] | None = None, error: str = "") -> None:
        """An item's progress; ``session_id`` and ``version_ids`` are kept unless given."""
        with self.sessions.write("update the campaign item") as db:
            db.execute("UPDATE campaign_items SET status = ?, error = ?, session_id = COALESCE(?, session_id),"
                       " version_ids = COALESCE(?, version_ids) WHERE campaign_id = ? AND seq = ?",
                       (status, error[:2000], session_id, None if version_ids is None else json.dumps(version_ids),
                        campaign_id, seq))

    def verdicts(self, campaign_id: str) -> dict[str, tuple[str, str]]:
        """``{version_id: (verdict, saved asset id)}`` for the reviewed images of a campaign."""
        rows = self.sessions.read("SELECT * FROM campaign_reviews WHERE campaign_id = ?", (campaign_id,))
        return {r["version_id"]: (r["verdict"], r["saved_id"]) for r in rows}

    def review(self, campaign_id: str, version_id: str, verdict: str, saved_id: str | None = None) -> None:
        if verdict not in VERDICTS:
            raise BananaError(f"A verdict is approved or rejected, not {verdict!r}.")
        with self.sessions.write("record the review") as db:
            db.execute("INSERT INTO campaign_reviews VALUES (?, ?, ?, COALESCE(?, '')) ON CONFLICT(version_id) DO UPDATE"
                       " SET verdict = excluded.verdict, saved_id = COALESCE(?, saved_id)",
                       (version_id, campaign_id, verdict, saved_id, saved_id))


def lease_holder() -> str:
    """A new holder's name: this machine, this process, and a part of its own (two runs of one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def _gone(holder: str) -> bool:
    """Whether a lease's holder was a process on this machine that has ended (killed, crashed): its lease is void
    at once, so a Resume after a crash need not wait for it to lapse."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        pass
    return False


def _encoded(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(json.dumps(v) if isinstance(v, list) else v for v in row.values())


def _campaign(row: sqlite3.Row) -> Campaign:
    data = dict(row)
    for name in ("aspect_ratios", "shared_refs"):
        data[name] = json.loads(data[name])
    return Campaign(**data)

"""Review links: a campaign, a session or chosen library images shown outside the team, and what reviewers say.

:class:`ReviewService` is ``Studio.reviews``. The owner's side (``share``, ``links``, ``revoke``, ``history``,
``feedback``, ``pending``, ``accept``) takes ``user`` like every lookup (None: the CLI, no check). The reviewer's side
(``door``, ``admit``, ``sheet``, ``image``, ``original``, ``note``) knows only a link's token: every failure
of it is :class:`rag.reviews.LinkNotValid`, one sentence for unknown, revoked, expired and a wrong password.
The records are :mod:`rag.reviews.store`, in the sessions database.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core import Asset, BananaError, Settings
from rag.generation import SessionStore, new_id, version_asset
from rag.media import watermarked
from rag.reviews import (
    LinkNotValid,
    ReviewLink,
    ReviewNote,
    ReviewStore,
    SharedItem,
    check_password,
    hash_password,
    new_token,
    token_hash,
    well_formed,
)
from rag.store import VectorStore
from rag.studio.campaigns import CampaignService
from rag.studio.sessions import GenerationService

DEFAULT_DAYS = 7
MAX_ITEMS = 500  # one link; as many as a campaign covers
MAX_NAME, MAX_COMMENT = 80, 2000
_ACT = re.compile(r"(\d{1,4}):(approved|rejected|comment)")
Feedback = tuple[ReviewNote, SharedItem, ReviewLink]


@dataclass(frozen=True)
class Share:
    """A new link and its token: the token is shown once, here; the database keeps only its hash."""

    link: ReviewLink
    token: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.link.to_dict(), "url": self.url, "token": self.token,
                "expires": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.link.expires))}


@dataclass(frozen=True)
class Sheet:
    """What a reviewer's page shows: the link, its images, and every note on them so far."""

    link: ReviewLink
    items: list[SharedItem]
    notes: list[ReviewNote]

    def verdict(self, n: int) -> ReviewNote | None:
        """The latest approval or rejection of item ``n``."""
        return next((x for x in reversed(self.notes) if x.n == n and x.verdict), None)

    def comments(self, n: int) -> list[ReviewNote]:
        return [x for x in self.notes if x.n == n and x.comment]


class ReviewService:
    """Review links over the sessions database, given the collaborators they use.

    ``sessions`` and ``store`` are getters (opened on first use); ``preview`` is Studio's ``preview``;
    ``campaigns`` and ``generation`` are the services that know whose campaigns and sessions are whose.
    A password-protected link lets a browser in on a pass (an HMAC of the link under a secret of this
    process), so the password is asked once per browser and a restart asks again.
    """

    def __init__(self, settings: Callable[[], Settings], sessions: Callable[[], SessionStore],
                 store: Callable[[], VectorStore], preview: Callable[..., Path | None], campaigns: CampaignService,
                 generation: GenerationService) -> None:
        self._settings = settings
        self._sessions = sessions
        self._store = store
        self._preview = preview
        self._campaigns = campaigns
        self._generation = generation
        self._secret = secrets.token_bytes(32)
        self._records: ReviewStore | None = None

    def records(self) -> ReviewStore:
        """The review tables, on the sessions database as it is now (reopened after a close)."""
        sessions = self._sessions()
        if self._records is None or self._records.sessions is not sessions:
            self._records = ReviewStore(sessions)
        return self._records

    # -- the owner's side -----------------------------------------------------------------------
    def share(self, *, campaign: str = "", session: str = "", ids: Sequence[str] = (), days: float = DEFAULT_DAYS,
              password: str = "", comments: bool = False, downloads: bool = False, watermark: bool = False,
              user: str | None = None, base_url: str = "") -> Share:
        """A new link to a campaign's results, a session's versions or library images (exactly one of them)."""
        days = self._days(days)
        kind, source_id, title, owner, items = self._what(campaign, session, ids, user)
        now = time.time()
        link = ReviewLink(id=new_id(), created=now, user=owner if user is None else user, kind=kind,
                          source_id=source_id, title=title[:120], expires=now + days * 86400,
                          password=hash_password(password or ""), comments=bool(comments), downloads=bool(downloads),
                          watermark=bool(watermark))
        token = new_token()
        return Share(self.records().create(link, token_hash(token), items), token, self.url(token, base_url))

    def url(self, token: str, base_url: str = "") -> str:
        """Where a reviewer opens the link: the public address set for this app, else ``base_url`` (the address
        the owner's browser used), else the app's own host and port."""
        settings = self._settings()
        host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        base = settings.public_url or base_url or f"http://{host}:{settings.port}"
        return f"{base.rstrip('/')}/review/{token}"

    def links(self, limit: int = 50, *, user: str | None = None, campaign: str = "", session: str = "") -> list[ReviewLink]:
        """Links newest first; only a campaign's or a session's when one is named."""
        kind, source = ("campaign", campaign) if campaign else ("session", session) if session else ("", "")
        return self.records().links(limit, user, kind, source)

    def link(self, ref: str, *, user: str | None = None) -> ReviewLink:
        """A link by its id (or a unique start of it), its token, or its whole address."""
        ref = str(ref or "").strip().rstrip("/").rsplit("/", 1)[-1]
        if well_formed(ref):
            found = self.records().by_token_hash(token_hash(ref))
            if found is not None:
                return self.records().link(found.id, user)
        return self.records().link(ref, user)

    def revoke(self, ref: str, *, user: str | None = None) -> ReviewLink:
        """Close a link at once: it then reads "not valid" like one that never existed."""
        link = self.link(ref, user=user)
        self.records().revoke(link.id)
        return self.records().link(link.id)

    def history(self, ref: str, *, user: str | None = None) -> tuple[ReviewLink, list[SharedItem], list[ReviewNote]]:
        """A link, its images and every decision and comment on it, oldest first."""
        link = self.link(ref, user=user)
        return link, self.records().items(link.id), self.records().notes(link.id)

    def feedback(self, *, campaign: str = "", image_id: str = "", user: str | None = None) -> list[Feedback]:
        """The notes on a campaign's links (for whoever may see the campaign), or on one image in the links
        ``user`` may see, oldest first."""
        if campaign:
            found = self._campaigns.open_campaign(campaign, user=user)[0]
            return self.records().notes_on(kind="campaign", source_id=found.id)
        return self.records().notes_on(image_id=str(image_id), user=user) if image_id else []

    def pending(self, campaign: str, *, user: str | None = None) -> dict[str, ReviewNote]:
        """Each campaign image's latest reviewer verdict that the owner has not accepted yet (version id -> note):
        what the review shows on its tiles, and what :meth:`accept` takes."""
        latest: dict[str, ReviewNote] = {}
        for note, item, _ in self.feedback(campaign=campaign, user=user):
            if note.verdict:
                latest[item.ref] = note
        return {vid: note for vid, note in latest.items() if not note.accepted}

    def accept(self, campaign: str, *, user: str | None = None) -> int:
        """Take the reviewers' latest verdict on each image of a campaign into its review (approved or rejected),
        for verdicts not taken yet; returns how many images changed."""
        found = self._campaigns.open_campaign(campaign, user=user)[0]
        fresh = self.pending(found.id, user=user)
        for verdict in ("approved", "rejected"):
            chosen = [vid for vid, note in fresh.items() if note.verdict == verdict]
            if chosen:
                self._campaigns.review_campaign(found.id, chosen, verdict, user=user)
        self.records().accept([n.id for n in fresh.values()])
        return len(fresh)

    # -- the reviewer's side: a token, nothing else -------------------------------------------------
    def door(self, token: str) -> ReviewLink:
        """The active link ``token`` opens; :class:`LinkNotValid` for anything else."""
        link = self.records().by_token_hash(token_hash(token)) if well_formed(token) else None
        if link is None or link.state() != "active":
            raise LinkNotValid()
        return link

    def admitted(self, link: ReviewLink, pass_: str = "") -> bool:
        """Whether a browser holding ``pass_`` may see ``link`` (always, for a link without a password)."""
        return not link.password or hmac.compare_digest(str(pass_ or ""), self._pass(link))

    def admit(self, link: ReviewLink, password: str) -> str:
        """The pass for ``link`` when ``password`` is its password; :class:`LinkNotValid` when it is not."""
        if not link.password or not check_password(str(password or ""), link.password):
            raise LinkNotValid()
        return self._pass(link)

    def sheet(self, link: ReviewLink) -> Sheet:
        records = self.records()
        return Sheet(link, records.items(link.id), records.notes(link.id))

    def image(self, link: ReviewLink, n: int) -> bytes | Path | None:
        """Item ``n``'s preview (watermarked when the link says so); None when the link has no such item."""
        asset = self._asset(self.records().item(link.id, n))
        preview = self._preview(asset, large=True) if asset is not None else None
        if preview is None:
            return None
        if link.watermark:
            return watermarked(preview, f"For review — {link.title}", max_pixels=self._settings().max_image_pixels)
        return preview

    def original(self, link: ReviewLink, n: int) -> tuple[Path, str] | None:
        """Item ``n``'s original file and its name, when the link allows downloads and the file is one of the
        app's own (or in a folder it was allowed to index); None otherwise."""
        asset = self._asset(self.records().item(link.id, n)) if link.downloads else None
        if asset is None:
            return None
        settings = self._settings()
        path = Path(asset.path).resolve()
        homes = [Path(d).resolve() for d in (*settings.served_dirs, *settings.library_roots)]
        if not path.is_file() or not any(path.is_relative_to(home) for home in homes):
            return None
        return path, asset.filename

    def note(self, link: ReviewLink, reviewer: str, act: str, comments: dict[int, str]) -> int:
        """Record a reviewer's verdict (``act``: "N:approved", "N:rejected" or "N:comment") and the comments
        they typed (``{n: text}``); returns the item acted on."""
        if not link.comments:
            raise BananaError("This link is for viewing only; ask whoever sent it if you want to comment.")
        name = _clean(reviewer, MAX_NAME, "Your name")
        if not name:
            raise BananaError("Type your name first, so the team knows who said it.")
        found = _ACT.fullmatch(str(act or ""))
        numbers = {i.n for i in self.records().items(link.id)}
        if found is None or int(found[1]) not in numbers or not set(comments) <= numbers:
            raise BananaError("That image is not part of this review.")
        n, verdict = int(found[1]), found[2]
        texts = {k: _clean(v, MAX_COMMENT, "A comment", lines=True) for k, v in comments.items()}
        if verdict == "comment" and not texts.get(n):
            raise BananaError("Type a comment first.")
        notes = [(n, name, "" if verdict == "comment" else verdict, texts.pop(n, ""))]
        notes += [(k, name, "", text) for k, text in sorted(texts.items()) if text]
        self.records().add_notes(link.id, notes)
        return n

    def _pass(self, link: ReviewLink) -> str:
        return hmac.new(self._secret, f"{link.id}:{link.password}".encode(), "sha256").hexdigest()

    def _asset(self, item: SharedItem | None) -> Asset | None:
        """The image behind a link's item, as a record to preview; None when it is gone."""
        if item is None:
            return None
        if item.kind == "version":
            try:
                return version_asset(self._sessions().version(item.ref))
            except BananaError:
                return None
        found = self._store().get([item.ref])
        return found[0] if found else None

    def _days(self, days: float) -> int:
        most = self._settings().review_max_days
        try:
            whole = int(days)
        except (TypeError, ValueError):
            whole = 0
        if whole != days or not 1 <= whole <= most:
            raise BananaError(f"A review link lasts 1 to {most} whole days.")
        return whole

    def _what(self, campaign: str, session: str, ids: Sequence[str],
              user: str | None) -> tuple[str, str, str, str, list[tuple[str, str, str, str]]]:
        """What a link shares: kind, source id, title, the source's owner, and its items."""
        if len([x for x in (campaign, session, list(ids or [])) if x]) != 1:
            raise BananaError("Share one thing: a campaign, a session, or chosen library images.")
        if campaign:
            found, items = self._campaigns.open_campaign(campaign, user=user)
            versions = self._sessions()
            shared = [("version", vid, versions.version(vid).image_id, f"{i.asset_name} · {i.aspect_ratio} · v{k}")
                      for i in items for k, vid in enumerate(i.version_ids, start=1)]
            return self._checked("campaign", found.id, found.name, found.user, shared)
        if session:
            opened, versions_of = self._generation.open_session(session, user=user or "")
            shared = [("version", v.id, v.image_id, f"{v.label}: {v.instruction[:80]}")
                      for v in versions_of if v.turn_id is not None]
            return self._checked("session", opened.id, opened.title, opened.user, shared)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if len(wanted) > MAX_ITEMS:
            raise BananaError(f"A review link shows at most {MAX_ITEMS} images; {len(wanted):,} are chosen.")
        assets = self._store().get(wanted)
        if len(assets) != len(wanted):
            raise BananaError(f"{len(wanted) - len(assets)} of the chosen images are not in the library.")
        shared = [("asset", a.id, a.id, a.filename) for a in assets]
        return self._checked("images", "", f"{len(assets)} images", "", shared)

    @staticmethod
    def _checked(kind: str, source_id: str, title: str, owner: str,
                 items: list[tuple[str, str, str, str]]) -> tuple[str, str, str, str, list[tuple[str, str, str, str]]]:
        if not items:
            raise BananaError(f"This {kind} has no images to share yet.")
        if len(items) > MAX_ITEMS:
            raise BananaError(f"A review link shows at most {MAX_ITEMS} images; this {kind} has {len(items):,}.")
        return kind, source_id, title, owner, items


def _clean(text: str, most: int, what: str, lines: bool = False) -> str:
    """A name or comment as typed, without control characters (newlines kept in comments); too long is refused."""
    kept = "".join(c if (lines and c == "\n") or unicodedata.category(c)[0] != "C" else " " for c in str(text or ""))
    kept = kept.strip() if lines else " ".join(kept.split())
    if len(kept) > most:
        raise BananaError(f"{what} is too long: at most {most:,} characters.")
    return kept

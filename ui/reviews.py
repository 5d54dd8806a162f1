"""Review links inside the app: "Share for review" beside a campaign, a session and the picked images; what
reviewers said, with name and time, on the campaign review and on an image's page; each link's history of
decisions, revoking it, and taking the reviewers' verdicts into the campaign. Their endpoints for gradio_client.

The page reviewers open is :mod:`ui.review_page`. Everything reviewers typed is escaped here (``html.escape``)
before Gradio shows it: a name or comment is text, never markup.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.core import BananaError
from rag.reviews import ReviewLink, ReviewNote, SharedItem
from rag.studio import Studio

from .common import user_errors
from .session_view import user_of

DEFAULT_DAYS = 7
SHARE_HELP = ("A link for people outside the team (a client, legal, the brand manager): no account, nothing else of "
              "the app, and it stops working on the day you choose or when you revoke it.")
NOTHING = {"campaign": "open a campaign first.", "session": "generate or open a session first.",
           "ids": "pick some images first (open one and press Add to references)."}
NO_FEEDBACK = "No reviewer has said anything yet. Make a review link above and send it."
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,255}")
Feedback = tuple[ReviewNote, SharedItem, ReviewLink]


def origin(request: gr.Request | None) -> str:
    """The address the owner's browser used ("https://abc.gradio.live"), for the link; "" when unknown."""
    headers = getattr(request, "headers", None) or {}
    host = str(headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()
    if not _HOST.fullmatch(host):
        return ""
    return f"{'https' if headers.get('x-forwarded-proto') == 'https' else 'http'}://{host}"


def moment(ts: float) -> str:
    t = time.localtime(ts)
    return f"{t.tm_mday} {time.strftime('%b, %H:%M', t)}"


def said(note: ReviewNote) -> str:
    """"Approved by Jane (client)", "Comment by Jane (client)": plain text, to escape where shown."""
    return f"{(note.verdict or 'comment').capitalize()} by {note.reviewer}"


def feedback_html(notes: Sequence[Feedback], empty: str = NO_FEEDBACK, *, links: bool = True) -> str:
    """The notes as a table, newest first: image, who said what, when, whether the owner accepted it (and on which
    link, with ``links``)."""
    if not notes:
        return f"<p class='review-empty'>{html.escape(empty)}</p>"
    rows = []
    for note, item, link in reversed(notes):
        comment = f"<br><q>{html.escape(note.comment)}</q>" if note.comment else ""
        taken = " · <em>accepted</em>" if note.accepted else ""
        rows.append(f"<tr class='review-note {html.escape(note.verdict or 'comment')}'><td>{html.escape(item.label)}</td>"
                    f"<td><b>{html.escape(said(note))}</b>{taken}{comment}</td><td>{html.escape(moment(note.created))}"
                    f"</td>{f'<td><small>link {html.escape(link.id[:6])}</small></td>' if links else ''}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Image", "Said", "When", *([""] if links else [])))
    return f"<table class='review-notes'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def link_words(link: ReviewLink) -> str:
    """A link in a few words: its state, until when, what reviewers may do."""
    until = time.strftime("%d %b %Y", time.localtime(link.expires))
    can = "approve, reject and comment" if link.comments else "view only"
    extras = [w for w, on in (("password", link.password), ("downloads", link.downloads),
                              ("watermark", link.watermark)) if on]
    return f"{link.state()} · until {until} · {can}" + (f" · {', '.join(extras)}" if extras else "")


# -- "Share for review" -------------------------------------------------------------------------------------
def render_share(studio: Studio, what: str, label: str = "Share for review", *, folded: bool = False) -> SimpleNamespace:
    """The share form (closed until opened): days, password, what reviewers may do; the link it makes.
    ``folded``: a hidden column instead of an accordion, for a page whose own button opens it (``s.box``)."""
    most = studio.settings.review_max_days
    s = SimpleNamespace(what=what)
    box = gr.Column(visible=False, elem_id=f"share-{what}") if folded else gr.Accordion(label, open=False,
                                                                                        elem_id=f"share-{what}")
    with box as s.box:
        if folded:
            gr.Markdown(f"**{label}**")
        gr.Markdown(SHARE_HELP)
        with gr.Row():
            s.days = gr.Number(DEFAULT_DAYS, label=f"Days it works (1 to {most})", precision=0, minimum=1, maximum=most,
                               elem_id=f"share-{what}-days")
            s.password = gr.Textbox(label="Password (optional)", type="password", max_length=200,
                                    elem_id=f"share-{what}-password")
        with gr.Row():
            s.comments = gr.Checkbox(True, label="Reviewers may approve, reject and comment",
                                     elem_id=f"share-{what}-comments")
            s.downloads = gr.Checkbox(False, label="They may download the originals")
            s.watermark = gr.Checkbox(False, label="\"For review\" across the previews")
        s.make = gr.Button("Make review link", variant="primary", size="sm", elem_id=f"share-{what}-make")
        s.url = gr.Textbox(label="Review link: copy it now, it is shown only once", interactive=False,
                           buttons=["copy"], visible=False, elem_id=f"share-{what}-url")
        s.said = gr.Markdown(elem_id=f"share-{what}-said")
    return s


def listen_share(studio: Studio, s: SimpleNamespace, kind: str, sources: Sequence[Any]) -> Any:
    """Make a link to what ``sources`` (one or two components) name, the first that is set: ``kind`` campaign,
    session or ids.
    Returns the event, for the caller to chain a refresh on."""

    @user_errors
    def make(first: Any, second: Any, days: float, password: str, comments: bool, downloads: bool, watermark: bool,
             request: gr.Request) -> tuple[Any, ...]:
        source = first or second
        if not source:
            raise BananaError(f"Nothing to share yet: {NOTHING[kind]}")
        share = studio.reviews.share(**{kind: source}, days=days, password=password or "", comments=comments,
                                     downloads=downloads, watermark=watermark, user=user_of(request) or None,
                                     base_url=origin(request))
        return gr.Textbox(value=share.url, visible=True), f"Link {share.link.id[:6]}: {link_words(share.link)}."

    two = [*sources, *[gr.State(None)] * (2 - len(sources))][:2]
    inputs = [*two, s.days, s.password, s.comments, s.downloads, s.watermark]
    return s.make.click(make, inputs, [s.url, s.said], api_name=False)


# -- the campaign review -----------------------------------------------------------------------------------------
def render_campaign(studio: Studio) -> SimpleNamespace:
    """Below the campaign review: its share form, the reviewers' feedback, its links with their history."""
    p = render_share(studio, "campaign")
    with gr.Accordion("Reviewers' feedback", open=True, elem_id="review-panel"):
        p.feedback = gr.HTML(f"<p>{NO_FEEDBACK}</p>", elem_id="review-feedback")
        with gr.Row():
            p.accept = gr.Button("Accept the reviewers' verdicts", size="sm", interactive=False,
                                 elem_id="review-accept")  # on while the campaign shown has verdicts to take
            p.refresh = gr.Button("Refresh", size="sm", elem_id="review-refresh")
        p.accepted = gr.Markdown(elem_id="review-accepted")
        with gr.Row(equal_height=True):
            p.links = gr.Dropdown([], label="This campaign's review links", elem_id="review-links", scale=4)
            p.revoke = gr.Button("Revoke", size="sm", variant="stop", scale=0, min_width=90, elem_id="review-revoke")
        p.history = gr.HTML(elem_id="review-history")
    return p


def history_html(studio: Studio, link_id: str, user: str | None) -> str:
    """One link's history of decisions and comments, oldest first."""
    link, items, notes = studio.reviews.history(link_id, user=user)
    by_n = {i.n: i for i in items}
    table = feedback_html([(n, by_n[n.n], link) for n in reversed(notes) if n.n in by_n],
                          "Nobody has said anything on this link yet.", links=False)
    return f"<p><b>Link {html.escape(link.id[:6])}</b>: {html.escape(link_words(link))}</p>{table}"


def listen_campaign(studio: Studio, p: SimpleNamespace, cid: Any, pick: Any, opened: Any,
                    redraw: tuple[Any, ...]) -> None:
    """Wire the panel to the campaign shown (``cid``, else the one picked, ``pick``); ``opened`` is the Open button,
    ``redraw`` (fn, inputs, outputs) draws the review again: after Refresh, a reviewer's new verdict shows on its tile
    and Accept becomes usable; after Accept, the verdicts are the review's."""
    listen = [pick, cid, p.links]

    @user_errors
    def show(chosen: str, shown: str, link: str | None, request: gr.Request) -> tuple[Any, ...]:
        campaign, user = shown or chosen, user_of(request) or None
        if not campaign:
            return f"<p>{NO_FEEDBACK}</p>", gr.Dropdown(choices=[], value=None), ""
        notes = studio.reviews.feedback(campaign=campaign, user=user)
        links = studio.reviews.links(50, user=user, campaign=studio.open_campaign(campaign, user=user)[0].id)
        ids = [x.id for x in links]
        link = link if link in ids else (ids[0] if ids else None)
        choices = [(f"{x.id[:6]} · {link_words(x)}", x.id) for x in links]
        return (feedback_html(notes), gr.Dropdown(choices=choices, value=link),
                history_html(studio, link, user) if link else "")

    @user_errors
    def revoke(link: str | None, request: gr.Request) -> None:
        if not link:
            raise BananaError("Choose a review link to revoke.")
        studio.reviews.revoke(link, user=user_of(request) or None)
        gr.Info("Revoked: the link now reads \"not valid\".")

    @user_errors
    def accept(shown: str, request: gr.Request) -> str:
        if not shown:
            raise BananaError("Open a campaign first.")
        n = studio.reviews.accept(shown, user=user_of(request) or None)
        return f"Took {n} reviewer verdict(s) into the review." if n else "No new reviewer verdicts to take."

    outputs = [p.feedback, p.links, p.history]
    opened.click(show, listen, outputs, api_name=False)
    p.refresh.click(show, listen, outputs, api_name=False).then(*redraw, api_name=False)
    p.links.input(show, listen, outputs, api_name=False)
    p.revoke.click(revoke, p.links, None, api_name=False).success(show, listen, outputs, api_name=False)
    p.accept.click(accept, cid, p.accepted, api_name=False).success(show, listen, outputs, api_name=False).then(
        *redraw, api_name=False)  # the review shows them
    listen_share(studio, p, "campaign", [cid, pick]).success(show, listen, outputs, api_name=False)  # shown or chosen


# -- an image's page ------------------------------------------------------------------------------------------------
def render_asset() -> Any:
    return gr.HTML(elem_id="asset-feedback")


def listen_asset(studio: Studio, current: Any, feedback: Any) -> None:
    """When the page opens an image: what reviewers said about it on any link the user may see."""

    @user_errors
    def show(asset_id: str, request: gr.Request) -> str:
        notes = studio.reviews.feedback(image_id=asset_id, user=user_of(request) or None) if asset_id else []
        return f"<h4>From review links</h4>{feedback_html(notes)}" if notes else ""

    current.change(show, current, feedback, api_name=False, queue=False)


# -- endpoints ----------------------------------------------------------------------------------------------------
def api(studio: Studio) -> None:
    """``/share_for_review``, ``/review_links``, ``/review_history``, ``/revoke_review_link``, ``/accept_reviews``."""

    @user_errors
    def share_for_review(campaign_id: str = "", session_id: str = "", ids: list[str] | None = None,
                         days: int = DEFAULT_DAYS, password: str = "", comments: bool = False, downloads: bool = False,
                         watermark: bool = False, request: gr.Request = None) -> dict[str, Any]:
        """A review link to a campaign's results, a session's versions or library images (one of them): returns
        its ``url``, ``token`` (shown only here; only its hash is kept) and ``expires``, with what it allows."""
        return studio.reviews.share(campaign=campaign_id, session=session_id, ids=ids or [], days=days,
                                    password=password, comments=comments, downloads=downloads, watermark=watermark,
                                    user=user_of(request) or None, base_url=origin(request)).to_dict()

    @user_errors
    def review_links(campaign_id: str = "", request: gr.Request = None) -> list[dict[str, Any]]:
        """Review links, newest first (a campaign's, when named); never their tokens."""
        return [x.to_dict() for x in studio.reviews.links(50, user=user_of(request) or None, campaign=campaign_id)]

    @user_errors
    def review_history(link: str, request: gr.Request = None) -> dict[str, Any]:
        """A link (its id, token or address), its images and every decision and comment, oldest first."""
        found, items, notes = studio.reviews.history(link, user=user_of(request) or None)
        return {**found.to_dict(), "items": [vars(i) for i in items], "notes": [vars(n) for n in notes]}

    @user_errors
    def revoke_review_link(link: str, request: gr.Request = None) -> dict[str, Any]:
        """Revoke a link at once: it then reads "not valid"."""
        return studio.reviews.revoke(link, user=user_of(request) or None).to_dict()

    @user_errors
    def accept_reviews(campaign_id: str, request: gr.Request = None) -> int:
        """Take reviewers' latest verdicts into a campaign's review; returns how many images changed."""
        return studio.reviews.accept(campaign_id, user=user_of(request) or None)

    for fn in (share_for_review, review_links, review_history, revoke_review_link, accept_reviews):
        gr.api(fn, api_name=fn.__name__)

"""A campaign's review as a contact sheet: one row per source image with its results beside it, each
result approved or rejected on the picture itself (the ✓ and ✗ on a tile, or the keys P, X and U on the
tile in focus, as in Lightroom), the verdict written on the tile. A reviewer's verdict from a review link that
the owner has not accepted yet is written under the caption ("Reviewer: ✗ — too dark"), in a dashed frame of
its own.

The sheet is one HTML block drawn here from a :class:`rag.campaigns.CampaignReview`, every text escaped.
A verdict travels back as the block's ``select`` event, its value "verdict:version id"; the handler
checks both like any other input. Items still waiting or failed are a tile of words, never a grey
picture that never loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

import gradio as gr

from rag.campaigns import CampaignReview
from rag.core import BananaError
from rag.reviews import ReviewNote
from rag.studio import Studio

from .common import file_url

KEYS = {"p": "approved", "x": "rejected", "u": ""}
SAID = {"approved": "✓ Approved", "rejected": "✗ Rejected", "": ""}
MARK = {"approved": "✓", "rejected": "✗"}  # a reviewer's verdict, beside the owner's frame and badge
EMPTY = "No results yet: run the campaign to see them here."
HELP = ("Click a result, then press P to approve it, X to reject it or U to undo; or use ✓ and ✗ on the picture. "
        "The next result comes into focus.")

CSS = """
.sheet-row { display: flex; flex-wrap: wrap; gap: 8px; padding: 6px 0; border-bottom: 1px solid var(--border-color-primary); }
.tile { position: relative; margin: 0; width: 168px; display: flex; flex-direction: column; border-radius: 8px;
  border: 2px solid transparent; background: var(--background-fill-secondary); overflow: hidden; }
.tile img { width: 100%; height: 150px; object-fit: contain; display: block; }
.tile figcaption { font-size: 12px; line-height: 1.3; padding: 3px 6px; overflow-wrap: anywhere; }
.tile.source { background: none; border: 1px dashed var(--border-color-primary); }
.tile.result { cursor: pointer; }
.tile.result:focus { outline: 3px solid var(--color-accent); outline-offset: 1px; }
.tile.approved { border-color: #16a34a; }
.tile.rejected { border-color: #dc2626; }
.tile.rejected img { opacity: .45; }
.badge { font-weight: 600; padding: 0 5px; border-radius: 5px; color: #fff; background: #16a34a; white-space: nowrap; }
.rejected .badge { background: #dc2626; }
.saved .badge { background: #2563eb; }
.marks { position: absolute; top: 4px; right: 4px; display: flex; gap: 4px; }
.marks button { width: 30px; height: 30px; border-radius: 15px; border: 1px solid #0003; font-size: 16px;
  background: #fffe; color: #111; cursor: pointer; }
.marks button[data-verdict=approved]:hover { background: #16a34a; color: #fff; }
.marks button[data-verdict=rejected]:hover { background: #dc2626; color: #fff; }
@media (hover: hover) { .tile .marks { opacity: 0; } .tile:hover .marks, .tile:focus .marks { opacity: 1; } }
.reviewer { display: block; margin-top: 2px; padding: 1px 5px; border-radius: 5px; font-style: italic;
  border: 1px dashed #16a34a; color: #15803d; }
.reviewer.rejected { border-color: #dc2626; color: #b91c1c; }
.tile.words { justify-content: center; min-height: 150px; padding: 8px; font-size: 13px; }
.sheet-empty { color: var(--body-text-color-subdued); padding: 12px 0; }
@media (max-width: 640px) { .tile { width: calc(50% - 4px); } .tile img { height: 120px; } }
"""

JS = """
const KEYS = {p: 'approved', x: 'rejected', u: ''};
const results = () => [...element.querySelectorAll('.tile.result[data-vid]')];
const send = (tile, verdict) => {
  const all = results(), at = all.indexOf(tile);
  element.dataset.next = (all[at + 1] || tile).dataset.vid;
  trigger('select', {index: at, value: verdict + ':' + tile.dataset.vid});
};
element.addEventListener('click', (event) => {
  const tile = event.target.closest('.tile.result[data-vid]');
  if (!tile) return;
  const mark = event.target.closest('button[data-verdict]');
  if (mark) { event.stopPropagation(); send(tile, mark.dataset.verdict); } else { tile.focus(); }
});
element.addEventListener('keydown', (event) => {
  const tile = event.target.closest('.tile.result[data-vid]');
  const verdict = KEYS[event.key.toLowerCase()];
  if (!tile || verdict === undefined || event.ctrlKey || event.metaKey || event.altKey) return;
  event.preventDefault();
  send(tile, verdict);
});
watch('value', () => {
  const next = element.dataset.next;
  delete element.dataset.next;
  const tile = next && results().find((t) => t.dataset.vid === next);
  if (tile) tile.focus({preventScroll: true});
});
"""


def block() -> gr.HTML:
    """The sheet's empty block, placed where the review goes; :func:`sheet` fills it."""
    return gr.HTML("", css_template=CSS, js_on_load=JS, elem_id="campaign-review", min_height=40)


def verdict_of(value: object) -> tuple[str, str]:
    """A tile's event value ("verdict:version id") checked: the verdict is one the review knows."""
    verdict, _, version_id = str(value or "").partition(":")
    if verdict not in KEYS.values() or not version_id:
        raise BananaError("That mark is not one the review knows: use approve, reject or undo.")
    return verdict, version_id


def sheet(studio: Studio, review: CampaignReview, pending: Mapping[str, ReviewNote] | None = None,
          empty: str = EMPTY) -> str:
    """The contact sheet's HTML: per source image (in plan order) its preview, then every result; ``pending``
    (version id -> note) are reviewers' verdicts the owner has not accepted yet, shown apart from the owner's;
    ``empty`` is what a sheet without results says."""
    sources = {a.id: a for a in studio.get(list({i.asset_id for i in review.items}))}
    rows: dict[str, list[str]] = {}
    for item in review.items:
        asset = sources.get(item.asset_id)
        source = _picture(studio.preview(asset) if asset else None, f"Source · {item.asset_name}")
        row = rows.setdefault(item.asset_id, [f'<figure class="tile source">{source}</figure>'])
        if item.status != "done" and not item.version_ids:
            words = f"Failed: {item.error[:160]}" if item.status == "failed" else f"{item.status.capitalize()}…"
            row.append(f'<div class="tile words"><b>#{item.seq} · {escape(item.aspect_ratio)}</b>'
                       f"<span>{escape(words)}</span></div>")
        for k, vid in enumerate(item.version_ids, start=1):
            verdict, saved = review.verdicts.get(vid, ("", ""))
            text = f" · {review.text_checks[vid]}" if vid in review.text_checks else ""  # the image's text check
            caption = f"#{item.seq} · {item.aspect_ratio} · v{k}{text}"
            row.append(_result(studio, vid, caption, verdict, bool(saved), (pending or {}).get(vid)))
    if not rows:
        return f'<p class="sheet-empty">{escape(empty)}</p>'
    return "".join(f'<div class="sheet-row">{"".join(tiles)}</div>' for tiles in rows.values())


def _result(studio: Studio, vid: str, caption: str, verdict: str, saved: bool, note: ReviewNote | None) -> str:
    state = "saved" if saved else verdict
    badge = "Saved" if saved else SAID[verdict]
    marks = "" if saved else ('<div class="marks"><button data-verdict="approved" title="Approve (P)" '
                              'aria-label="Approve">✓</button><button data-verdict="rejected" title="Reject (X)" '
                              'aria-label="Reject">✗</button></div>')
    label = f'<span class="badge">{escape(badge)}</span> ' if badge else ""
    inner = _picture(studio.version_preview(studio.version(vid)), caption, label, _reviewer(note))
    return (f'<figure class="tile result {state}" tabindex="0" data-vid="{escape(vid)}" aria-label="{escape(caption)}'
            f'{" · " + escape(badge) if badge else ""}">{inner}{marks}</figure>')


def reviewer_words(note: ReviewNote) -> str:
    """A reviewer's verdict on a tile, plain text: "Reviewer: ✓", "Reviewer: ✗ — too dark" (the comment cut short)."""
    comment = " ".join(note.comment.split())
    short = f"{comment[:60]}…" if len(comment) > 60 else comment
    return f"Reviewer: {MARK.get(note.verdict, '?')}{f' — {short}' if short else ''}"


def _reviewer(note: ReviewNote | None) -> str:
    """A pending reviewer verdict as HTML made here: its words escaped, who said it and the whole comment on hover."""
    if note is None:
        return ""
    full = f"{note.verdict.capitalize()} by {note.reviewer}, not accepted yet" + (f": {note.comment}" if note.comment else "")
    return (f'<span class="reviewer {escape(note.verdict)}" title="{escape(full)}">'
            f"{escape(reviewer_words(note))}</span>")


def _picture(path: Path | None, caption: str, badge: str = "", after: str = "") -> str:
    """A preview and its caption (``badge`` and ``after``: HTML made here, put before and after the escaped caption)."""
    image = (f'<img src="{file_url(path)}" alt="{escape(caption)}" loading="lazy">' if path
             else '<div class="tile words">No preview</div>')
    return f"{image}<figcaption>{badge}{escape(caption)}{after}</figcaption>"

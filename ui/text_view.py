"""The text read in pictures, as the pages show it: an image's "Text in the image", and in a campaign's review
the text check of each result, a "text differs" filter and "Regenerate where text differs".

The text comes from strangers' pictures and from a model's, so it is escaped wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.campaigns import CampaignReview
from rag.core import Asset, BananaError
from rag.library import ocr
from rag.studio import Studio

from .common import md_escape, user_errors
from .session_view import user_of

MAX_LINES_SHOWN = 30
NONE_DIFFER = "No result's text differs from what its prompt quotes."


def text_in_image_md(asset: Asset) -> str:
    """The page's "Text in the image": the lines read in the picture, or why there are none."""
    lines = ocr.text_lines(asset)
    if lines is None:
        return ""  # not read yet (or reading is off): nothing to say
    if asset.meta.get(ocr.STATE) == ocr.FAILED:
        return f"**Text in the image** could not be read ({md_escape(asset.meta.get(ocr.ERROR, ''))})  \n"
    if not lines:
        return "**Text in the image** none found  \n"
    shown = " · ".join(md_escape(line) for line in lines[:MAX_LINES_SHOWN])
    more = f" (and {len(lines) - MAX_LINES_SHOWN} more lines)" if len(lines) > MAX_LINES_SHOWN else ""
    return f"**Text in the image** {shown}{more}  \n"


def render_campaign() -> SimpleNamespace:
    """The review's "text differs" filter, made above the sheet (:func:`again_button` joins the review's buttons)."""
    return SimpleNamespace(only=gr.Checkbox(label="Only results whose text differs from the prompt's quoted text",
                                            elem_id="campaign-text-differs"))


def again_button() -> gr.Button:
    """Off until the review has a result whose text differs (the review's buttons are set in one place)."""
    return gr.Button("Regenerate where text differs", size="sm", interactive=False, elem_id="campaign-again-text")


def filtered(review: CampaignReview, on: bool) -> CampaignReview:
    """The review as the sheet shows it: with the filter on, only the items whose latest result's text differs.
    Every redraw of the sheet goes through here with the box as it is, so no action shows more than it says, and
    Approve the rest approves this review's results (what is shown), never the ones the filter hides."""
    return replace(review, items=review.text_differs) if on else review


def hidden_words(hidden: int) -> str:
    """The guide's sentence while the filter hides results with no verdict: Approve the rest leaves them be."""
    return (f"Approve the rest approves only the results shown: {hidden} hidden by the filter "
            f"{'waits' if hidden == 1 else 'wait'} for a verdict.")


def beyond_words(rejected: int, approved: int) -> str:
    """The guide's sentence while the filter hides rejected or approved results: Regenerate rejected and Save approved
    act on the whole campaign, so they say what they will do beyond what is shown before they are clicked."""
    said = [f"Regenerate rejected also remakes {_results(rejected, 'rejected')} the filter hides" if rejected else "",
            f"Save approved also saves {_results(approved, 'approved')} it hides" if approved else ""]
    return "; ".join(part for part in said if part) + "." if rejected or approved else ""


def _results(n: int, verdict: str) -> str:
    return f"{n} {verdict} {'result' if n == 1 else 'results'}"


def listen_campaign(studio: Studio, c: SimpleNamespace, t: SimpleNamespace, view: Callable[..., tuple[Any, ...]],
                    paid: dict[str, Any]) -> None:
    """Wire the filter (the review drawn again with the box as ticked) and the paid regeneration of the items
    whose text differs; ``view(studio, cid, user, only)`` is the tab's review (its outputs ``c.review``)."""

    @user_errors
    def only(cid: str, on: bool, request: gr.Request) -> tuple[Any, ...]:
        return view(studio, cid, user_of(request), on)

    @user_errors
    def again(cid: str, on: bool, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        if not cid or not studio.campaign_review(cid, user=user_of(request) or None).text_differs:
            raise BananaError(f"{NONE_DIFFER[:-1]}: nothing to regenerate.")
        studio.regenerate_rejected(cid, user=user_of(request) or None, which="text differs", progress=lambda done, total,
                                   item: progress((done, total), desc=f"Regenerating {item.asset_name} {item.aspect_ratio}"))
        return view(studio, cid, user_of(request), on)

    t.only.input(only, [c.cid, t.only], c.review, api_name=False)
    t.again.click(again, [c.cid, t.only], c.review, **paid)

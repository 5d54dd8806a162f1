"""The Campaigns tab's endpoints for gradio_client: the same operations as the tab and the CLI.

Apart from the tab's wiring because they share nothing with its components: a campaign is named by
its id and described as a plain record, so a script can plan, run, poll and review one without a page.
The endpoints that send paid requests share the tab's "generate" queue; the rest are free to run at once.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.campaigns import Plan
from rag.studio import Studio

from .common import user_errors
from .session_view import user_of


def api(studio: Studio) -> None:
    """Register every campaign endpoint, the paid ones first (the order the app has always listed them in)."""
    _api_paid(studio)
    _api_free(studio)


def _planned(studio: Studio, template: str, folder: str, query: str, tag: str, ids: list[str] | None,
             refs: list[str] | None, aspect_ratios: list[str] | None, per_item: int, model: str, name: str, user: str,
             batch: bool = False) -> Plan:
    """One reading of the endpoints' arguments, so planning, running and a Batch job plan alike."""
    return studio.plan_campaign(template, folder=folder, query=query, tag=tag, ids=ids or [], refs=refs or [],
                                aspect_ratios=aspect_ratios or ["1:1"], per_item=per_item, model=model, name=name,
                                user=user, batch=batch)


def _api_paid(studio: Studio) -> None:
    """Run now, resume, regenerate, or submit as a Batch job: they spend money, so two at a time in all."""

    @user_errors
    def run_campaign(template: str, folder: str = "", query: str = "", tag: str = "", ids: list[str] | None = None,
                     refs: list[str] | None = None, aspect_ratios: list[str] | None = None, per_item: int = 1,
                     model: str = "", name: str = "", request: gr.Request = None) -> dict[str, Any]:
        """Plan, record and run a campaign now; returns it with its items."""
        plan = _planned(studio, template, folder, query, tag, ids, refs, aspect_ratios, per_item, model, name,
                        user_of(request))
        campaign = studio.run_campaign(studio.start_campaign(plan).id, user=user_of(request) or None)
        return _record(studio, campaign.id, user_of(request))

    @user_errors
    def resume_campaign(campaign_id: str, request: gr.Request = None) -> dict[str, Any]:
        """Continue a campaign from its first unfinished item; for a Batch campaign, ask how its job is doing."""
        studio.resume_campaign(campaign_id, user=user_of(request) or None)
        return _record(studio, campaign_id, user_of(request))

    @user_errors
    def regenerate_campaign(campaign_id: str, which: str = "text differs", request: gr.Request = None) -> dict[str, Any]:
        """A new image for each item whose latest image's text differs from what its prompt quotes (``which``
        "text differs", the default), or whose latest image was rejected (``which`` "rejected"), as the tab's
        and the CLI's Regenerate do; returns the campaign, with ``regenerated``: the items made again."""
        made = studio.regenerate_rejected(campaign_id, user=user_of(request) or None,
                                          which=str(which or "").replace("-", " "))
        return {**_record(studio, campaign_id, user_of(request)), "regenerated": [i.seq for i in made]}

    @user_errors
    def submit_campaign_batch(template: str, folder: str = "", query: str = "", tag: str = "",
                              ids: list[str] | None = None, refs: list[str] | None = None,
                              aspect_ratios: list[str] | None = None, per_item: int = 1, model: str = "", name: str = "",
                              request: gr.Request = None) -> dict[str, Any]:
        """Plan and record a campaign, then submit it as one Gemini Batch job; /resume_campaign polls it."""
        plan = _planned(studio, template, folder, query, tag, ids, refs, aspect_ratios, per_item, model, name,
                        user_of(request), batch=True)
        campaign = studio.submit_campaign_batch(studio.start_campaign(plan).id, user=user_of(request) or None)
        return _record(studio, campaign.id, user_of(request))

    for fn in (run_campaign, resume_campaign, regenerate_campaign, submit_campaign_batch):
        gr.api(fn, api_name=fn.__name__, concurrency_id="generate", concurrency_limit=2)


def _api_free(studio: Studio) -> None:
    """Plan, list, read, review and save: nothing sent to the model (saving queues with the other ingests)."""

    @user_errors
    def save_approved(campaign_id: str, request: gr.Request = None) -> list[str]:
        """Add the approved images to the library; returns their asset ids."""
        report = studio.save_approved(campaign_id, user=user_of(request) or None)
        return [a.id for a in report.added] + [i for _, i in report.duplicates]

    @user_errors
    def plan_campaign(template: str, folder: str = "", query: str = "", tag: str = "", ids: list[str] | None = None,
                      refs: list[str] | None = None, aspect_ratios: list[str] | None = None, per_item: int = 1,
                      model: str = "", name: str = "", request: gr.Request = None) -> dict[str, Any]:
        """The requests a campaign would send, their estimated cost and today's budget left; sends nothing."""
        return _planned(studio, template, folder, query, tag, ids, refs, aspect_ratios, per_item, model, name,
                        user_of(request)).to_dict()

    @user_errors
    def campaigns(request: gr.Request = None) -> list[dict[str, Any]]:
        """The campaigns, newest first."""
        return [vars(c) for c in studio.campaigns(50, user=user_of(request) or None)]

    @user_errors
    def campaign(campaign_id: str, request: gr.Request = None) -> dict[str, Any]:
        """One campaign, its items (status, versions, errors) and the verdicts on its images."""
        return _record(studio, campaign_id, user_of(request))

    @user_errors
    def review_campaign(campaign_id: str, version_ids: list[str], verdict: str, request: gr.Request = None) -> dict[str, Any]:
        """Approve or reject images of a campaign (``verdict``: approved, rejected, or "" to clear)."""
        studio.review_campaign(campaign_id, version_ids, verdict, user=user_of(request) or None)
        return _record(studio, campaign_id, user_of(request))

    gr.api(save_approved, api_name="save_approved", concurrency_id="ingest", concurrency_limit=1)
    for fn in (plan_campaign, campaigns, campaign, review_campaign):
        gr.api(fn, api_name=fn.__name__)


def _record(studio: Studio, campaign_id: str, user: str) -> dict[str, Any]:
    """A campaign as a client reads it: its fields, its items, and each version's verdict and saved asset."""
    review = studio.campaign_review(campaign_id, user=user or None)
    return {**vars(review.campaign), "items": [vars(i) for i in review.items],
            "verdicts": {v: {"verdict": d, "saved_id": s} for v, (d, s) in review.verdicts.items()},
            "text_checks": review.text_checks}

"""Campaigns tab: one prompt template over a folder, a search, a tag or the picked images; its cost before
it runs, now or as a Batch job; then one row per source image with its results side by side, to approve,
reject, regenerate and save. Resume continues a "now" campaign, or asks how a Batch job is doing.

Wiring only: every action is a :class:`rag.studio.Studio` call. A run is two events, record then send,
so Cancel knows the campaign while it runs; a second tab or a restart picks a campaign up from the list.
The same operations for gradio_client are in :mod:`ui.campaign_api`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from rag.campaigns import FIELDS, CampaignReview, Plan
from rag.core import NothingToDo
from rag.generation import MAX_IMAGES_PER_RUN
from rag.studio import Studio

from . import campaign_api, contact_sheet, reviews, text_view
from .common import TEAMS, counted, md_escape, progress_callback, user_errors
from .session_view import model_choices, user_of

KINDS = ("Folder", "Search", "Tag", "Marked rows", "Picked images")
TEMPLATE = "A premium ad photo of {name} on a marble counter, soft light"
PLAN_COLUMNS = ["#", "image", "ratio", "prompt"]


def build(studio: Studio, selected: gr.State, marked: gr.State | None = None) -> dict[str, Any]:
    """The tab; returns ``load`` (the campaigns to pick from) for the app to run when it opens.

    ``selected`` is the reference tray ("Picked images", shared references), ``marked`` the Library
    table's marked rows."""
    c = _render(studio)

    def load(request: gr.Request) -> Any:
        return gr.Dropdown(choices=_choices(studio, user_of(request)))

    def opened(request: gr.Request) -> tuple[Any, Any]:
        """The tab opens: the campaigns to pick from, and the library's folders as they are now."""
        return load(request), gr.Dropdown(choices=folder_choices(studio), value=None)

    c.load = load
    c.marked = marked if marked is not None else gr.State([])
    _listen(studio, selected, c)
    reviews.listen_campaign(studio, c.reviews, c.cid, c.pick, c.open, c.redraw)
    c.folders.input(lambda folder: ("Folder", folder or ""), c.folders, [c.kind, c.value], api_name=False, queue=False)
    campaign_api.api(studio)
    return {"load": (opened, None, [c.pick, c.folders])}


def folder_choices(studio: Studio) -> list[tuple[str, str]]:
    """Every library folder with how many images it holds, subfolders included ("spring launch (38)"):
    a campaign over a folder covers its subfolders, so a folder of subfolders is a choice too."""
    return counted(studio.library_page(limit=0).facets["folder"])


def _render(studio: Studio) -> SimpleNamespace:
    enabled, why = studio.generation_status()
    default = studio.model_list.get(studio.model_list.default_choice())
    c = SimpleNamespace(enabled=enabled)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            gr.Markdown(why if enabled else f"**{why}**")
            c.name = gr.Textbox(label="Campaign name", placeholder="Spring launch", elem_id="campaign-name")
            with gr.Row():
                c.kind = gr.Radio(list(KINDS), value="Folder", label="Images", elem_id="campaign-kind", scale=2)
                c.value = gr.Textbox(label="Folder, search words or tag", elem_id="campaign-source", scale=2)
            c.folders = gr.Dropdown([], label="…or pick a library folder (its subfolders included)",
                                    elem_id="campaign-folders")
            c.template = gr.Textbox(TEMPLATE, label="Prompt template", lines=2, elem_id="campaign-template",
                                    info=f"Placeholders: {' '.join('{' + f + '}' for f in FIELDS)}")
            c.shared = gr.Checkbox(label="Send the picked references with every item (a style image, a logo)",
                                   elem_id="campaign-shared")
            with gr.Row():
                c.model = gr.Dropdown(model_choices(studio.models()), value=default.name, label="Model", scale=3)
                c.per_item = gr.Dropdown(list(range(1, MAX_IMAGES_PER_RUN + 1)), value=1, label="Per item", scale=1)
                c.size = gr.Dropdown(list(default.sizes), value=default.size() or default.sizes[0], label="Size", scale=1)
            c.aspects = gr.CheckboxGroup(list(default.aspect_ratios), value=["1:1"], label="Aspect ratios",
                                         elem_id="campaign-aspects")
            with gr.Row():
                c.preview = gr.Button("Preview cost", elem_id="campaign-preview")
                c.run = gr.Button("Run now", variant="primary", interactive=enabled, elem_id="campaign-run")
                c.batch = gr.Button("Batch (½ price, ≤24 h)", interactive=enabled, elem_id="campaign-batch")
                c.cancel = gr.Button("Cancel", elem_id="campaign-cancel")
            c.plan_md = gr.Markdown(elem_id="campaign-plan")
            c.plan = gr.Dataframe(headers=PLAN_COLUMNS, interactive=False, wrap=True, max_height=320, visible=False,
                                  column_widths=["7%", "26%", "12%", "55%"], elem_id="campaign-plan-table")
        with gr.Column(scale=7, min_width=320):
            with gr.Row(equal_height=True):
                c.pick = gr.Dropdown([], label="Campaign", elem_id="campaign-picker", scale=4)
                c.open = gr.Button("Open", scale=0, min_width=80, elem_id="campaign-open")
                c.resume = gr.Button("Resume", scale=0, min_width=90, interactive=enabled, elem_id="campaign-resume")
            c.status = gr.Markdown(elem_id="campaign-status")
            c.text = text_view.render_campaign()  # a "text differs" filter; its regenerate button is below
            c.sheet = contact_sheet.block()
            c.guide = gr.Markdown(elem_id="campaign-guide")
            with gr.Row():
                c.approve = gr.Button("Approve the rest", size="sm", interactive=False, elem_id="campaign-approve")
                c.again = gr.Button("Regenerate rejected", size="sm", interactive=False, elem_id="campaign-again")
                c.text.again = text_view.again_button()
                c.save = gr.Button("Save approved to library", size="sm", variant="primary", interactive=False,
                                   elem_id="campaign-save")
            c.saved = gr.Markdown(elem_id="campaign-saved")
            c.reviews = reviews.render_campaign(studio)  # share for review; what reviewers said
    c.cid = gr.State("")
    c.waiting = gr.State([])  # the results shown without a verdict at the last redraw: what Approve the rest approves
    return c


def _choices(studio: Studio, user: str) -> list[tuple[str, str]]:
    return [(f"{c.name} · {c.status}{TEAMS if user and not c.user else ''}", c.id)
            for c in studio.campaigns(50, user=user or None)]


def _view(studio: Studio, cid: str, user: str, only: bool = False) -> tuple[Any, ...]:
    """Status, the contact sheet (only the results whose text differs while ``only``, the filter, is ticked), the
    review's buttons, each usable only when it has something to act on, and the results shown that wait for a
    verdict. Every action on the review ends here."""
    if not cid:
        return "", "", *_actions(None, None, {}, enabled=True), []
    review = studio.campaign_review(cid, user=user or None)
    pending = studio.reviews.pending(cid, user=user or None)  # reviewers' verdicts not accepted yet
    seen = text_view.filtered(review, only)
    shown = contact_sheet.sheet(studio, seen, pending, text_view.NONE_DIFFER if only else contact_sheet.EMPTY)
    return _status(review), shown, *_actions(review, seen, pending, enabled=studio.generation_status()[0]), seen.unreviewed


def _actions(review: CampaignReview | None, seen: CampaignReview | None, pending: dict[str, Any], *,
             enabled: bool) -> tuple[Any, ...]:
    """The guide, then Approve the rest, Regenerate rejected, Save, Regenerate where text differs and Accept the
    reviewers' verdicts: each off, with a word of why in the guide, while there is nothing for it to do. Approve the
    rest acts on the results shown (``seen``, the review as the filter leaves it), so its state and words follow them."""
    shown = [v for i in review.items for v in i.version_ids] if review else []
    waiting, to_save = (seen.unreviewed, review.to_save) if review and seen else ([], [])
    hidden = len(review.unreviewed) - len(waiting) if review else 0  # results with no verdict the filter hides
    rejected, differs = bool(review and review.rejected), bool(review and review.text_differs)
    guide = (contact_sheet.HELP if waiting else "No result shown waits for a verdict." if hidden else
             "Every result has a verdict." if shown else "Open a campaign, or run one, to review its results here.")
    guide += f" {text_view.hidden_words(hidden)}" if hidden else ""
    beyond = text_view.beyond_words(len(review.rejected) - len(seen.rejected), len(to_save) - len(seen.to_save)) \
        if review and seen else ""
    guide += f" {beyond}" if beyond else ""
    for idle, why in ((not to_save, "Approve results to save them to the library."),
                      (not rejected, "Reject a result to make it again."),
                      (not differs, text_view.NONE_DIFFER),
                      (not pending, "No reviewer's verdict waits to be accepted.")):
        guide += f" {why}" if shown and idle else ""
    return (guide, gr.Button(interactive=bool(waiting)), gr.Button(interactive=rejected and enabled),
            gr.Button(interactive=bool(to_save)), gr.Button(interactive=differs and enabled),
            gr.Button(interactive=bool(pending)))


def _status(review: CampaignReview) -> str:
    campaign, failed = review.campaign, review.failed
    job = f" · Batch job {campaign.batch_state}" if campaign.batch_job else ""
    lines = [f"**{md_escape(campaign.name)}** · {campaign.status}{job} · {review.counts['done']} of {review.total} done"
             f"{f' · {len(failed)} failed' if failed else ''} · cost so far "
             f"${review.spent:.2f} (estimated ${campaign.estimate_usd:.2f})"]
    lines += [f"- #{i.seq} {md_escape(i.asset_name)} {i.aspect_ratio}: {md_escape(i.error[:200])}" for i in failed[:10]]
    return "\n".join(lines)


def _plan(studio: Studio, kind: str, value: str, template: str, name: str, shared: bool, model: str, aspects: list[str],
          per_item: float, size: str, picked: list[str], marked: list[str], user: str, batch: bool = False) -> Plan:
    source = {"Folder": "folder", "Search": "query", "Tag": "tag"}
    rows = marked if kind == "Marked rows" else picked
    chosen = {source[kind]: value or ""} if kind in source else {"ids": rows or []}
    return studio.plan_campaign(template or "", **chosen, refs=(picked or []) if shared else [], name=name or "",
                                model=model, aspect_ratios=aspects or [], per_item=int(per_item or 1),
                                image_size=size or "", user=user, batch=batch)


def _plan_view(plan: Plan) -> tuple[str, Any]:
    rows = [[n, a.filename, r, p] for n, (a, r, p) in enumerate(plan.requests, start=1)]
    warn = "" if plan.fits() else (" **Over today's budget: Run now waits until the plan fits (fewer images, a"
                                   " smaller size, or Batch at about half price).**")
    return plan.summary() + warn, gr.Dataframe(pd.DataFrame(rows, columns=PLAN_COLUMNS), visible=True)


PAID: dict[str, Any] = {"concurrency_id": "generate", "concurrency_limit": 2, "api_name": False}


def _listen(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    """The tab's three groups of controls: the form, the campaign picked from the list, its review.

    Run now (the form) and Resume (the picker) end in the same run, so it is made once here for both."""
    c.review = [c.status, c.sheet, c.guide, c.approve, c.again, c.save, c.text.again, c.reviews.accept, c.waiting]
    c.shown = [c.cid, c.text.only]  # what every redraw of the review reads: the campaign, the filter as ticked
    run = _runner(studio)
    _listen_form(studio, selected, c, run)
    _listen_picked(studio, c, run)
    _listen_review(studio, c)
    text_view.listen_campaign(studio, c, c.text, _view, PAID)


def _runner(studio: Studio) -> Callable[..., tuple[Any, ...]]:
    """The paid half of Run now and Resume: the campaign is already recorded, so Cancel can find it."""

    @user_errors
    def run(cid: str, only: bool, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        """Run (or resume) a campaign now; a Batch campaign is asked how its job is doing instead."""
        if cid:
            studio.resume_campaign(cid, user=user_of(request) or None, progress=progress_callback(progress))
        return _view(studio, cid, user_of(request), only)

    return run


def _listen_form(studio: Studio, selected: gr.State, c: SimpleNamespace, run: Callable[..., tuple[Any, ...]]) -> None:
    """Preview the cost, Run now (record, then run) or submit as one Batch job, all from the same form."""
    form = [c.kind, c.value, c.template, c.name, c.shared, c.model, c.aspects, c.per_item, c.size, selected, c.marked]

    @user_errors
    def preview(kind: str, value: str, template: str, name: str, shared: bool, model: str, aspects: list[str],
                per_item: float, size: str, picked: list[str], marked: list[str],
                request: gr.Request) -> tuple[Any, ...]:
        plan = _plan(studio, kind, value, template, name, shared, model, aspects, per_item, size, picked, marked,
                     user_of(request))
        return *_plan_view(plan), gr.Button(interactive=c.enabled and plan.fits())  # over budget: Run now waits

    @user_errors
    def start(kind: str, value: str, template: str, name: str, shared: bool, model: str, aspects: list[str],
              per_item: float, size: str, picked: list[str], marked: list[str],
              request: gr.Request) -> tuple[Any, ...]:
        plan = _plan(studio, kind, value, template, name, shared, model, aspects, per_item, size, picked, marked,
                     user_of(request))
        campaign = studio.start_campaign(plan)
        return (campaign.id, gr.Dropdown(choices=_choices(studio, user_of(request)), value=campaign.id),
                *_plan_view(plan))

    @user_errors
    def submit(kind: str, value: str, template: str, name: str, shared: bool, model: str, aspects: list[str],
               per_item: float, size: str, picked: list[str], marked: list[str], only: bool,
               request: gr.Request) -> tuple[Any, ...]:
        plan = _plan(studio, kind, value, template, name, shared, model, aspects, per_item, size, picked, marked,
                     user_of(request), batch=True)
        campaign = studio.submit_campaign_batch(studio.start_campaign(plan).id)
        return (campaign.id, gr.Dropdown(choices=_choices(studio, user_of(request)), value=campaign.id),
                *_plan_view(plan), *_view(studio, campaign.id, user_of(request), only))

    c.preview.click(preview, form, [c.plan_md, c.plan, c.run], api_name=False, concurrency_id="search")
    for changed in (c.kind, c.value, c.template, c.shared, c.model, c.aspects, c.per_item, c.size):
        changed.input(lambda: gr.Button(interactive=c.enabled), None, c.run, api_name=False, queue=False)
    c.run.click(start, form, [c.cid, c.pick, c.plan_md, c.plan], api_name=False).success(run, c.shown, c.review, **PAID).then(
        c.load, None, c.pick, api_name=False, queue=False)
    c.batch.click(submit, [*form, c.text.only], [c.cid, c.pick, c.plan_md, c.plan, *c.review], **PAID)


def _listen_picked(studio: Studio, c: SimpleNamespace, run: Callable[..., tuple[Any, ...]]) -> None:
    """The campaign chosen in the list: Resume it, Cancel it while it runs, or Open it to review."""

    @user_errors
    def cancel(cid: str, request: gr.Request) -> None:
        if cid and studio.cancel_campaign(cid, user=user_of(request) or None):
            gr.Info("Stopping after the requests in flight; Resume continues from there.")

    @user_errors
    def show(cid: str, only: bool, request: gr.Request) -> tuple[Any, ...]:
        return _view(studio, cid, user_of(request), only)

    c.redraw = (show, c.shown, c.review)  # the review drawn again, as the filter stands (reviewers' feedback uses it)
    c.resume.click(lambda pick: pick or "", c.pick, c.cid, api_name=False, queue=False).then(
        run, c.shown, c.review, **PAID)
    c.cancel.click(cancel, c.cid, None, api_name=False, queue=False)
    c.open.click(lambda pick: (pick or "", False), c.pick, c.shown, api_name=False, queue=False).then(  # unfiltered
        *c.redraw, api_name=False)


def _listen_review(studio: Studio, c: SimpleNamespace) -> None:
    """The contact sheet's marks (one result at a time), Approve the rest, Regenerate rejected (paid), Save."""

    @user_errors
    def mark(cid: str, only: bool, event: gr.SelectData, request: gr.Request) -> tuple[Any, ...]:
        verdict, version_id = contact_sheet.verdict_of(event.value)
        studio.review_campaign(cid, [version_id], verdict, user=user_of(request) or None)
        return _view(studio, cid, user_of(request), only)

    @user_errors
    def approve_rest(cid: str, only: bool, shown: list[str], request: gr.Request) -> tuple[Any, ...]:
        """Approves the results that were on the page without a verdict, and no other: not one that arrived since
        (a run in another tab), nor one another tab has marked meanwhile."""
        studio.review_campaign(cid, shown or [], "approved", user=user_of(request) or None, only_waiting=True)
        return _view(studio, cid, user_of(request), only)

    @user_errors
    def again(cid: str, only: bool, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        studio.regenerate_rejected(cid, user=user_of(request) or None, progress=lambda done, total, item: progress(
            (done, total), desc=f"Regenerating {item.asset_name} {item.aspect_ratio}"))
        return _view(studio, cid, user_of(request), only)

    @user_errors
    def save(cid: str, only: bool, request: gr.Request) -> tuple[Any, ...]:
        try:  # pressed again (a second tab): say so, and keep the review as it is
            report = studio.save_approved(cid, user=user_of(request) or None)
            folder = report.added[0].folder if report.added else "the library"
            said = f"Saved {counted_images(len(report.added) + len(report.duplicates))} to {folder}."
        except NothingToDo as exc:
            said = str(exc)
        return (said, *_view(studio, cid, user_of(request), only))

    c.sheet.select(mark, c.shown, c.review, api_name=False)
    c.approve.click(approve_rest, [*c.shown, c.waiting], c.review, api_name=False)
    c.again.click(again, c.shown, c.review, **PAID)
    c.save.click(save, c.shown, [c.saved, *c.review], api_name=False, concurrency_id="ingest", concurrency_limit=1)


def counted_images(n: int) -> str:
    return f"{n} approved image{'' if n == 1 else 's'}"

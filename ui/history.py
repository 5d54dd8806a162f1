"""History tab: every request that could cost money (made, blocked, failed, text-only, refused by the
budget) with a thumbnail of what it made, and the spend per day and per user."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pandas as pd

from rag.generation import Attempt
from rag.studio import Studio

from .common import api_record, file_url, user_errors
from .session_view import user_of

# The table's headers and outcomes in words (the API keeps the field names and codes)
COLUMNS = ["Image", "When", "User", "Outcome", "Model", "Size", "Prompt", "References", "Images", "Cost (USD)", "Why"]
TOTAL_FIELDS = ["day", "user", "requests", "images", "cost_usd"]
TOTAL_COLUMNS = ["Day", "User", "Requests", "Images", "Cost (USD)"]
OUTCOMES = {"ok": "made", "text-only": "text only, no image", "refused": "refused: over the budget", "blocked": "blocked",
            "failed": "failed", "interrupted": "interrupted", "pending": "running"}
LIMIT = 200


def _thumbnail(studio: Studio, attempt: Attempt) -> str:
    """Markdown showing the first image a request made (its cached preview, a file the app serves)."""
    for version_id in attempt.version_ids[:1]:
        try:
            preview = studio.version_preview(studio.version(version_id))
        except Exception:  # noqa: BLE001 - a missing picture costs its thumbnail, not the page
            preview = None
        if preview is not None:
            return f"![{attempt.outcome}]({file_url(preview)})"
    return ""


def _rows(studio: Studio, attempts: list[Attempt]) -> pd.DataFrame:
    rows = [
        [_thumbnail(studio, a), time.strftime("%Y-%m-%d %H:%M", time.localtime(a.created)), a.user or "-", OUTCOMES.get(a.outcome, a.outcome),
         a.model, a.image_size or "-", a.prompt, len(a.references), f"{a.images}/{a.requested}", round(a.cost_usd, 4),
         a.reason if a.outcome != "ok" else ""]
        for a in attempts
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def budget_md(spend: dict[str, Any], user: str = "") -> str:
    """Today's spend and the cap, both the team's; with sign-in the page says the tables below are yours."""
    cap = spend["budget"]
    limit = f" of today's budget of **${cap:.2f}** set for this app" if cap is not None else " (no daily budget is set for this app)"
    whose = " by the whole team" if user else ""
    mine = " The tables below are your own requests." if user else ""
    return f"Spent today{whose}: **${spend['today']:.3f}**{limit}. Costs are estimates at list price.{mine}"


def build(studio: Studio) -> dict[str, Any]:
    """The tab; returns ``load`` for the app to run when the tab opens."""
    budget = gr.Markdown(elem_id="history-budget")
    refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
    totals = gr.Dataframe(label="Spend per day (last 30 days)", interactive=False, headers=TOTAL_COLUMNS)
    table = gr.Dataframe(label=f"Requests, newest first (last {LIMIT})", interactive=False, wrap=True, max_height=520,
                         headers=COLUMNS, datatype=["markdown"] + ["str"] * (len(COLUMNS) - 1), elem_id="history-table",
                         column_widths=["96px", "140px", "80px", "90px", "190px", "60px", "240px", "56px", "70px", "80px",
                                        "220px"])

    @user_errors
    def load(request: gr.Request) -> tuple[Any, ...]:
        user = user_of(request) or None  # with sign-in, each user sees their own requests
        spend = studio.spend(user=user)
        totals = pd.DataFrame(spend["totals"], columns=TOTAL_FIELDS).replace({"user": {"": "-"}})
        totals.columns = TOTAL_COLUMNS
        label = "Your spend per day (last 30 days)" if user else "Spend per day and person (last 30 days)"
        return (budget_md(spend, user or ""), gr.Dataframe(totals, label=label),
                _rows(studio, studio.history(LIMIT, user=user)))

    outputs = [budget, totals, table]
    refresh.click(load, None, outputs, api_name=False, queue=False)

    @user_errors
    def history(request: gr.Request, limit: int = LIMIT, user: str = "", day: str = "") -> dict[str, Any]:
        """Requests newest first (when, user, model, image_size, prompt, references, images, cost_usd, outcome,
        reason), and spend per day and user with today's total and the daily cap. With sign-in, your own only."""
        user = user_of(request) or user or None
        attempts = studio.history(limit, user=user, day=day or None)
        return {"attempts": [api_record(vars(a)) for a in attempts], **studio.spend(user=user)}

    gr.api(history, api_name="history")
    return {"load": (load, None, outputs)}

"""The Generate tab's endpoints for gradio_client: the same operations as the tab and the CLI.

Apart from the tab's wiring because they share none of its state: a script names sessions, versions
and library images by id, and gets plain records back (output files as paths it can download).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.studio import Studio

from .common import api_record, user_errors
from .session_view import user_of


def api(studio: Studio) -> None:
    """Register the endpoints: paid runs share the tab's "generate" queue, saves the "ingest" one."""

    @user_errors
    def generate(prompt: str, reference_ids: list[str], request: gr.Request, aspect_ratio: str = "1:1", n: int = 1,
                 model: str = "", image_size: str = "", session_id: str = "", auto_refs: int = 0) -> dict[str, Any]:
        """Generate from library references (a new session, or new versions in ``session_id``): output paths,
        the model's text, the session and version ids. ``auto_refs`` adds the prompt's best search matches."""
        return _run_record(studio.generate(prompt, reference_ids=reference_ids, aspect_ratio=aspect_ratio, n=n,
                                           model=model, image_size=image_size, session_id=session_id,
                                           auto_refs=int(auto_refs or 0), user=user_of(request)))

    @user_errors
    def find_references(prompt: str, n: int = 0, model: str = "") -> list[dict[str, Any]]:
        """The library images the prompt's search ranks first, within the model's reference cap (``n``: fewer)."""
        return [api_record(a.to_dict()) for a in studio.find_references(prompt, n, model=model)]

    @user_errors
    def refine(session_id: str, instruction: str, request: gr.Request, from_version: str = "", n: int = 1,
               continue_on: str = "") -> dict[str, Any]:
        """A follow-up about a version (the newest by default); ``continue_on``: a new branch on that model."""
        return _run_record(studio.refine(session_id, instruction, from_version=from_version, n=n,
                                         continue_on=continue_on, user=user_of(request)))

    @user_errors
    def sessions(request: gr.Request, limit: int = 20) -> list[dict[str, Any]]:
        """Recent sessions, newest first (with sign-in, your own)."""
        return [vars(s) for s in studio.recent_sessions(limit, user=user_of(request) or None)]

    @user_errors
    def session(session_id: str, request: gr.Request) -> dict[str, Any]:
        """One session and its versions (ids, parents, instructions, models, output files as ``source_path``)."""
        found, versions = studio.open_session(session_id, user=user_of(request))
        return {**vars(found), "versions": [api_record(vars(x)) for x in versions]}

    @user_errors
    def start_session(base_asset_id: str, request: gr.Request) -> dict[str, Any]:
        """"Edit this": a session whose first version is a library image; refine it next."""
        return vars(studio.start_session(base_asset_id=base_asset_id, user=user_of(request)))

    @user_errors
    def save_versions(version_ids: list[str], request: gr.Request) -> list[str]:
        """Add versions to the library; returns their asset ids."""
        return [a.id for a in studio.save_versions(version_ids, user=user_of(request)).added]

    @user_errors
    def save_generated(paths: list[str], request: gr.Request) -> list[str]:
        """Add generated images (paths from /generate) to the library; returns their asset ids."""
        versions = studio.versions_at(paths, user=user_of(request))
        return [a.id for a in studio.save_versions([v.id for v in versions], user=user_of(request)).added]

    for fn in (generate, refine):
        gr.api(fn, api_name=fn.__name__, concurrency_id="generate", concurrency_limit=2)
    for fn in (save_versions, save_generated):
        gr.api(fn, api_name=fn.__name__, concurrency_id="ingest", concurrency_limit=1)
    for fn in (sessions, session, start_session, find_references):
        gr.api(fn, api_name=fn.__name__)
    gr.api(user_errors(studio.model_offers), api_name="models")


def _run_record(run: Any) -> dict[str, Any]:
    """A run as a client reads it: output paths to fetch, the model's words, the ids to refine or save."""
    return {"images": [str(p) for p in run.paths], "text": run.result.text, "session_id": run.session_id,
            "version_ids": [v.id for v in run.versions], "model": run.result.model,
            "text_checks": {v.id: v.text_check for v in run.versions if v.text_check}}

"""Generating, refine sessions, models, spend and saving versions.

:class:`GenerationService` is what :class:`rag.studio.Studio` delegates these to; the work itself is in
:mod:`rag.generation.refine` and :mod:`rag.generation.sessions`.

``user`` is the signed-in user. With sign-in, every session, version and request is its user's: a
method given another user's id answers as if it did not exist. "" (no sign-in, the CLI) sees all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.core import Asset, BananaError, Hit, Settings, sha256_file
from rag.generation import (
    Ask,
    Attempt,
    Choice,
    Generation,
    ImageGenerator,
    ModelInfo,
    ModelList,
    Notify,
    Session,
    SessionStore,
    Version,
    read_provenance,
    refine,
    run_turn,
    start_from,
    version_asset,
)
from rag.library import AssetDetails, IngestReport, Progress, campaign_folder, campaign_tag
from rag.search import Query
from rag.store import VectorStore
from rag.studio.resources import GENERATION_OFF


class GenerationService:
    """Generation and its records, given each collaborator it uses rather than the whole Studio.

    The lazy pieces come as getters, so nothing is opened or built before it is needed: ``store`` (the
    Milvus connection), ``generator`` (the Gemini client; raises when no key is set), ``sessions`` (sessions.db).
    ``settings`` is a getter too, since Studio's settings can be replaced (the CLI's ``--out``, tests).
    ``generator_built`` says whether a generator exists already (handed in, e.g. a fake), so that
    :meth:`generation_status` never builds one. ``search``, ``ingest`` and ``preview`` are Studio's
    ``search``, ``ingest_files`` and ``preview``.
    """

    def __init__(self, settings: Callable[[], Settings], model_list: ModelList, store: Callable[[], VectorStore],
                 generator: Callable[[], ImageGenerator], generator_built: Callable[[], bool],
                 sessions: Callable[[], SessionStore], search: Callable[[Query], list[Hit]],
                 ingest: Callable[..., IngestReport], preview: Callable[[Asset], Path | None]) -> None:
        self._settings = settings
        self._model_list = model_list
        self._store = store
        self._generator = generator
        self._generator_built = generator_built
        self._sessions = sessions
        self._search = search
        self._ingest = ingest
        self._preview = preview

    # -- generation -------------------------------------------------------------------------
    def references(self, ids: Sequence[str] = (), files: Sequence[str | Path] = ()) -> list[Asset]:
        """Library assets by id plus ad-hoc files (not added to the library) as reference records."""
        found = self._store().get(ids) if ids else []
        missing = set(ids) - {a.id for a in found}
        if missing:
            raise BananaError(f"{len(missing)} selected reference(s) are no longer in the library; reselect them.")
        for f in files:
            path = Path(f)
            if not path.is_file():
                raise BananaError(f"Reference {path.name} is not a readable file.")
            found.append(
                Asset(id=sha256_file(path), path=str(path), filename=path.name, folder="reference", width=0,
                      height=0, format="", bytes=path.stat().st_size, created=time.time(), source="upload")
            )
        return found

    def find_references(self, prompt: str, n: int = 0, *, model: str = "", keep: Sequence[str] = (),
                        query: Query | None = None) -> list[Asset]:
        """The library images the prompt's search ranks first, as many as the model takes beside ``keep``
        (``n``: fewer). The Search tab's search, so its filters (``query``) and ranking apply."""
        if not prompt.strip():
            raise BananaError("Write a prompt first: the references are found by searching the library with it.")
        room = self._model_list.get(model).max_references - len(keep)
        wanted = min(n, room) if n > 0 else room
        if wanted <= 0:
            return []
        hits = self._search(replace(query or Query(), text=prompt.strip(), k=wanted + len(keep)))
        return [h.asset for h in hits if h.asset.id not in keep][:wanted]

    def generate(
        self,
        prompt: str,
        *,
        reference_ids: Sequence[str] = (),
        reference_files: Sequence[str | Path] = (),
        aspect_ratio: str = "1:1",
        n: int = 1,
        model: str = "",
        image_size: str = "",
        session_id: str = "",
        user: str = "",
        notify: Notify | None = None,
        auto_refs: int = 0,
        found: dict[str, Any] | None = None,
    ) -> Generation:
        """Generate from a prompt and references: a new root version in session ``session_id``, or a new
        session. Images land in the outputs folder, never the library.

        ``auto_refs`` adds that many references found by the prompt; ``found`` (``{"query", "ids"}``) says which
        chosen references a "Find references" search proposed, so the provenance can tell them apart."""
        if auto_refs > 0:
            extra = [a.id for a in self.find_references(prompt, auto_refs, model=model, keep=reference_ids)]
            reference_ids, found = [*reference_ids, *extra], {"query": prompt.strip(), "ids": extra}
        session = self._sessions().session(session_id, user) if session_id else None
        if session is not None and session.base_asset_id and session.base_asset_id not in reference_ids:
            reference_ids = [session.base_asset_id, *reference_ids]  # "Edit this": the image being edited goes too
        refs = self.references(reference_ids, reference_files)
        with self._model_list.watching():
            generator, info = self._generator(), self._model_list.usable(model)
            kept = [i for i in (found or {}).get("ids", []) if i in reference_ids]
            more = {"references_found": {"query": str(found.get("query", "")), "ids": kept}} if found and kept else {}
            ask = Ask(prompt.strip(), refs, info, aspect_ratio, info.size(image_size), n, user, more)
            return run_turn(self._sessions(), generator, self._settings(), session, None, ask, notify)

    def save_generated(self, paths: Sequence[str | Path], *, progress: Progress | None = None) -> IngestReport:
        """Add generated images to the library, keeping their provenance and parent ids searchable."""
        report = IngestReport()
        for path in paths:
            provenance = read_provenance(path) or {}
            parents = provenance.get("parents") or [r["id"] for r in provenance.get("references", [])]
            meta = {"prompt": provenance.get("prompt", ""), "model": provenance.get("model", ""), "parents": parents,
                    "provenance": provenance}
            folder = "generated"
            if provenance.get("campaign"):  # its own folder, a field, and a tag the grid filters on
                meta |= {"campaign": provenance["campaign"], "tags": [campaign_tag(provenance["campaign"])]}
                folder = campaign_folder(provenance["campaign"])
            one = self._ingest([path], source="generated", folder=folder, meta=meta, progress=progress)
            report.added += one.added
            report.duplicates += one.duplicates
            report.failed += one.failed
            report.seconds += one.seconds
        return report

    # -- sessions and history ---------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        """The image models to offer (the API's list, else the catalogue), each with its caps and prices."""
        return self._model_list.all()

    def model_choice(self) -> Choice:
        """The model used when none is picked, and why (``GEMINI_MODEL``, or ``auto``'s choice from the API's list)."""
        return self._model_list.choice()

    def model_offers(self) -> list[dict[str, Any]]:
        """:meth:`models` as records (prices interactive and Batch); the default one says so, and why."""
        choice = self.model_choice()
        return [m.to_dict() | ({"default": True, "reason": choice.reason} if m.name == choice.model.name
                               else {"default": False}) for m in self.models()]

    @property
    def max_references(self) -> int:
        """The default model's reference cap."""
        return self._model_list.get().max_references

    def generation_status(self) -> tuple[bool, str]:
        """Whether generation is on, and a sentence saying which model and why (or why it is off)."""
        if self._generator_built() or self._settings().gemini_api_key:
            chosen, note = self.model_choice(), self._model_list.note()
            why = chosen.reason if chosen.automatic else f"{chosen.model.title}, {chosen.reason}"
            return True, (f"Generation is on: {why}; up to {chosen.model.max_references} reference images."
                          f"{' ' + note if note else ''}")
        return False, GENERATION_OFF

    def refine(self, session_id: str, instruction: str, *, from_version: str = "", aspect_ratio: str = "",
               image_size: str = "", n: int = 1, model: str = "", continue_on: str = "", user: str = "",
               notify: Notify | None = None) -> Generation:
        """A follow-up instruction about a version (the newest by default); the model gets the turns that led to it.

        ``continue_on`` (a model) starts a new branch from the version's image instead: the way on when the
        version's model has been shut down (:class:`rag.core.errors.ModelUnavailable` names the replacement)."""
        with self._model_list.watching():
            return refine(self._sessions(), self._generator(), self._settings(), self._model_list, session_id, instruction,
                          from_version=from_version, aspect_ratio=aspect_ratio, image_size=image_size, n=n, model=model,
                          continue_on=continue_on, user=user, notify=notify)

    def replacement_for(self, model: str) -> ModelInfo | None:
        """The model to continue on when ``model`` can no longer be used (shut down, not offered); None while it can."""
        return self._model_list.replacement(model)

    def start_session(self, *, base_asset_id: str, user: str = "") -> Session:
        """"Edit this": a session whose first version is a library image, ready for a refinement."""
        (asset,) = self._store().get([base_asset_id]) or [None]
        if asset is None:
            raise BananaError(f"No asset with id {base_asset_id} is in the library.")
        return start_from(self._sessions(), asset, user)

    def open_session(self, session_id: str, *, user: str = "") -> tuple[Session, list[Version]]:
        """A session and its versions (oldest first), to show or continue after a restart."""
        sessions = self._sessions()
        session = sessions.session(session_id, user)
        return session, sessions.versions(session.id)

    def version(self, version_id: str, *, user: str = "") -> Version:
        return self._sessions().version(version_id, owner=user)

    def versions_at(self, paths: Sequence[str | Path], *, user: str = "") -> list[Version]:
        """The versions behind generated files (what /generate returned); refuses files that are not ``user``'s."""
        wanted = list(dict.fromkeys(str(p) for p in paths))
        found = self._sessions().versions_at(wanted, user)
        missing = len(wanted) - len({v.path for v in found})
        if missing:
            raise BananaError(f"{missing} of these files are not images generated"
                              " in your sessions; save them from Generate, or add them on the Library tab.")
        return found

    def recent_sessions(self, limit: int = 20, *, user: str | None = None) -> list[Session]:
        return self._sessions().sessions(limit, user)

    def history(self, limit: int = 200, *, user: str | None = None, day: str | None = None) -> list[Attempt]:
        """Every request that could cost money, newest first, with its outcome and reason."""
        return self._sessions().attempts(limit, user=user, day=day)

    def spend(self, days: int = 30, *, user: str | None = None) -> dict[str, Any]:
        """Totals per day and user (or one user's), today's spend by everyone and the daily cap (None: no cap):
        the cap is the team's."""
        sessions = self._sessions()
        return {"totals": sessions.totals(days, user), "today": sessions.spent(),
                "budget": self._settings().gemini_daily_budget_usd}

    def save_versions(self, version_ids: Sequence[str], *, user: str = "", progress: Progress | None = None) -> IngestReport:
        """Add versions to the library (originals already are), with their parents and references as ``parents``."""
        versions = [self._sessions().version(v, owner=user) for v in version_ids]
        return self.save_generated([v.path for v in versions if v.turn_id is not None], progress=progress)

    def name_unsaved(self, details: AssetDetails) -> AssetDetails:
        """Name the parents that are versions of this image's own session never saved ("v1 of session X"), so the
        page does not call them lost. Only its own session is looked in: the page already names that one, so
        nothing of another user's work is given away."""
        session_id = str(details.generation.get("session") or "")
        if details.missing_parents and session_id:
            by_image = {v.image_id: v for v in self._sessions().versions(session_id) if v.turn_id is not None}
            details.unsaved_parents = {p: f"{by_image[p].label} of session {session_id}"
                                       for p in details.missing_parents if p in by_image}
        return details

    def version_preview(self, version: Version) -> Path | None:
        """A small cached preview of a version for the strip and History."""
        return self._preview(version_asset(version))


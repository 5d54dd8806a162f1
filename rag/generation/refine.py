"""One turn of a session: check the budget, send the conversation so far, keep each image as a version.

A first generation and a refinement are the same thing here: a turn whose parent is no version
(a new root) or the version being refined. The model gets the turns that led to the parent (never
a sibling branch), then this turn. Every image is written to the outputs folder with its provenance
and recorded as a version before the next one is asked for; a request that fails changes no
session and no file, and every request, whatever its outcome, is an attempt in History.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.core import Asset, BananaError, GenerationBlocked, ModelUnavailable, Settings, sha256_file
from rag.generation.base import GenerationResult, ImageGenerator, ModelReply, Notify
from rag.generation.model_list import ModelList
from rag.generation.models import ModelInfo
from rag.generation.provenance import readable_stem, save_result
from rag.generation.sessions import REGION_PREFIX, Session, SessionStore, Version
from rag.generation.signing import stamp_for
from rag.generation.text_check import asked_in_branch, check_versions


@dataclass(frozen=True)
class Generation:
    """A generation run: what the model returned, where its images were saved, and the versions they became."""

    result: GenerationResult
    paths: list[Path]
    session_id: str = ""
    versions: list[Version] = field(default_factory=list)


@dataclass(frozen=True)
class Ask:
    """What one click asks for."""

    prompt: str
    references: list[Asset]
    model: ModelInfo
    aspect_ratio: str
    image_size: str
    n: int
    user: str
    provenance: dict[str, Any] = field(default_factory=dict)  # more facts for each image's record (a campaign, found references)


def refine(store: SessionStore, generator: ImageGenerator, settings: Settings, models: ModelList, session_ref: str,
           instruction: str, *, from_version: str = "", aspect_ratio: str = "", image_size: str = "", n: int = 1,
           model: str = "", continue_on: str = "", user: str = "", notify: Notify | None = None) -> Generation:
    """A follow-up turn about a version of a session (its newest when ``from_version`` is blank).

    It continues with the model that made the version (thought signatures belong to it); settings left
    blank are the version's. ``model`` only chooses the model for an original (an "Edit this" session).
    ``continue_on`` names another model: a new branch that starts from the version's image, without the
    conversation (what to do when the version's model has been shut down).
    """
    session = store.session(session_ref, user)
    versions = store.versions(session.id)
    if not versions:
        raise BananaError(f"Session {session.id} has no versions yet; generate an image first.")
    parent = store.version(from_version, session.id, user) if from_version.strip() else versions[-1]
    info = models.usable(continue_on) if continue_on.strip() else _model_of(models, parent, model)
    size = image_size or (parent.image_size if parent.image_size in info.sizes else "")
    ratio = aspect_ratio or (parent.aspect_ratio if parent.aspect_ratio in info.aspect_ratios else "")
    ask = Ask(instruction.strip(), [], info, ratio, info.size(size), n, user)
    return run_turn(store, generator, settings, session, parent, ask, notify)


def _model_of(models: ModelList, parent: Version, model: str) -> ModelInfo:
    """The model that made ``parent`` (``model`` for an original), or the sentence that offers its replacement."""
    if not parent.model:
        return models.usable(model)
    try:
        return models.usable(parent.model)
    except ModelUnavailable as exc:
        instead = models.get(exc.replacement)  # "" (none named): the default
        raise ModelUnavailable(
            f"{parent.label} was made with {parent.model}, which Gemini no longer serves. Continue on "
            f"{instead.title}: a new branch starts from {parent.label}'s image (the conversation before it stays "
            "with the old model).", parent.model, instead.name) from None


def start_from(store: SessionStore, asset: Asset, user: str) -> Session:
    """"Edit this": a session whose version 0 is a library image; its first refinement sends that image."""
    session = store.new_session(user=user, title=Session.edit_title(asset.filename), base_asset_id=asset.id)
    store.add_original(session.id, path=asset.path, image_id=asset.id)
    return store.session(session.id)


def version_asset(version: Version) -> Asset:
    """A version as a reference record (the original an "Edit this" session starts from)."""
    path = Path(version.path)
    return Asset(id=version.image_id, path=str(path), filename=path.name, folder="session", width=0, height=0,
                 format="PNG", bytes=0, created=version.created, source="generated")


def lineage(versions: dict[str, Version], parent: Version | None, refs: list[Asset]) -> list[str]:
    """Library ids a new version comes from: this turn's references, the version it refines, and theirs."""
    ids = [a.id for a in refs]
    while parent is not None:
        ids += [parent.image_id, *(r["id"] for r in parent.references)]
        parent = versions.get(parent.parent_id or "")
    return list(dict.fromkeys(ids))


def run_turn(store: SessionStore, generator: ImageGenerator, settings: Settings, session: Session | None,
             parent: Version | None, ask: Ask, notify: Notify | None = None) -> Generation:
    """Send one turn (``ask.n`` calls) and keep each image as it arrives; raises the sentence when nothing came.

    The request is checked against the model and the budget before anything is sent. Without
    ``session`` a new one is started, but only once there is an image to keep in it. When a later
    call fails, the versions already made stay (they are paid for) and the failure joins the text.
    """
    refs = list(ask.references)
    # An original, or a version another model made: the model sees it as this turn's image, without the
    # conversation before it (thought signatures belong to the model that made them).
    fresh = parent is not None and (parent.turn_id is None or parent.model != ask.model.name
                                    or parent.instruction.startswith(REGION_PREFIX))  # its turn was about a crop
    if fresh:
        refs.insert(0, version_asset(parent))
    ask.model.check(ask.prompt, len({a.id for a in refs}), ask.aspect_ratio, ask.image_size, ask.n)
    history = store.history(parent.id) if parent is not None and not fresh else []
    attempt = store.begin_attempt(
        user=ask.user, session_id=session.id if session else "", parent_id=parent.id if parent else "", model=ask.model.name,
        image_size=ask.image_size, prompt=ask.prompt, references=[_listed(a) for a in refs], requested=ask.n,
        estimate=ask.model.estimate(ask.n, ask.image_size), budget=settings.gemini_daily_budget_usd,
    )
    results: list[GenerationResult] = []
    versions: list[Version] = []
    paths: list[Path] = []
    notes: list[str] = []
    for i in range(ask.n):
        try:
            one = generator.generate(ask.prompt, refs, aspect_ratio=ask.aspect_ratio, n=1, model=ask.model.name,
                                     image_size=ask.image_size, history=history, notify=notify)
            session, kept, saved = keep_images(store, settings, session, parent, ask, one, notes=notes)
        except BaseException as exc:
            if not versions or not isinstance(exc, BananaError):
                blocked = isinstance(exc, GenerationBlocked)
                why = str(exc) if isinstance(exc, BananaError) else f"unexpected {type(exc).__name__}"
                store.end_attempt(attempt, outcome="blocked" if blocked else "failed", images=len(versions),
                                  cost=ask.model.estimate(len(versions), ask.image_size), reason=why,
                                  version_ids=[v.id for v in versions], session_id=session.id if session else "")
                raise
            notes.append(f"Stopped after {i} of {ask.n} requests: {exc}")
            break
        results.append(one)
        versions += kept
        paths += saved
    result = _combined(results, notes)
    returned = len(result.images)
    store.end_attempt(attempt, outcome="ok" if versions else "text-only", images=returned,
                      cost=ask.model.estimate(returned, ask.image_size), reason=result.text,
                      version_ids=[v.id for v in versions], session_id=session.id if session else "")
    return Generation(result=result, paths=paths, session_id=session.id if session else "", versions=versions)


def _listed(asset: Asset) -> dict[str, str]:
    return {"id": asset.id, "path": asset.path, "filename": asset.filename}


def _combined(results: list[GenerationResult], notes: list[str]) -> GenerationResult:
    """The calls of one click as one result: every image and reply, the words joined."""
    replies = [r for result in results for r in result.replies]
    text = "\n\n".join(t for t in [*(r.text for r in replies), *notes] if t)
    return replace(results[0], images=[i for r in replies for i in r.images], text=text, replies=replies)


def keep_images(store: SessionStore, settings: Settings, session: Session | None, parent: Version | None, ask: Ask,
                result: GenerationResult, *,
                notes: list[str] | None = None) -> tuple[Session | None, list[Version], list[Path]]:
    """Each reply's images written with provenance and content credentials, then recorded as versions (one reply at
    a time); Batch mode keeps its results through here too. An image saved without credentials says so in ``notes``."""
    if session is None and any(r.images for r in result.replies):
        session = store.new_session(user=ask.user, title=ask.prompt)
    if session is None:
        return None, [], []
    known = {v.id: v for v in store.versions(session.id)}
    seq = max((v.seq for v in known.values()), default=0)
    parents = lineage(known, parent, list(result.references))
    versions: list[Version] = []
    paths: list[Path] = []
    for reply in result.replies:
        if not reply.images:
            continue  # a text-only answer is not a version: there is nothing to refine
        seq += 1
        saved = _save(settings, session, parent, result, reply, seq, parents, ask.provenance, notes)
        versions += store.add_turn(
            session.id, parent.id if parent else None, user=ask.user, instruction=ask.prompt, model=result.model,
            aspect_ratio=result.aspect_ratio, image_size=result.image_size,
            references=[_listed(a) for a in result.references],
            request=result.request, reply=reply.content, text=reply.text,
            images=[(str(p), sha256_file(p), ask.model.price(ask.image_size)) for p in saved],
        )
        paths += saved
    versions = check_versions(store, settings, asked_in_branch(ask.prompt, parent, known), versions)  # quoted text
    return session, versions, paths


def _save(settings: Settings, session: Session, parent: Version | None, result: GenerationResult,
          reply: ModelReply, seq: int, parents: list[str], more: dict[str, Any], notes: list[str] | None) -> list[Path]:
    extra = {**more, "session_id": session.id, "version": f"v{seq}", "parent_version_id": parent.id if parent else "",
             "parents": parents}
    one = replace(result, images=reply.images, text=reply.text)
    # A random part of its own: a file name in the served outputs folder must not follow from anything another
    # user can see (a saved version's record names its session, prompt and version number).
    stem = f"{readable_stem(session.title)}-v{seq}-{secrets.token_hex(12)}"
    return save_result(one, settings.outputs_dir, max_pixels=settings.max_image_pixels, stem=stem, extra=extra,
                       sign=stamp_for(settings, one, parent), notes=notes)

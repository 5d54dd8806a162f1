"""Edit one region of a version: crop around the brushed mask, ask the model about the crop, blend the answer back.

Gemini's image models take no mask (Imagen's mask editing is Vertex-only and being retired; see
``../shared/notes/gemini.md``), so the model gets the crop around the mask, with a margin of context, and
its answer is blended into the picture inside the mask only (:mod:`rag.media.region`). A region edit is
otherwise a turn like any refinement: :func:`rag.generation.refine.run_turn` checks the model and the
budget, records the attempt in History and keeps the picture as a new version whose parent is the edited
one. :class:`RegionGenerator` is what makes the difference: whatever turn ``run_turn`` would send, the model
gets the crop (and the session's references), with no conversation, and what comes back is the whole
picture blended. The mask is kept as a PNG beside the version; the provenance names it with the crop box.
"Remove" fills the brushed area from its surroundings; "Expand canvas" grows the picture to another shape,
keeping every original pixel where it was.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from rag.core import Asset, BananaError, GenerationError, ImageError, Settings, atomic_write, os_error_text, sha256_file
from rag.generation.base import Content, GeneratedImage, GenerationResult, ImageGenerator, Notify
from rag.generation.model_list import ModelList
from rag.generation.models import ListedModel
from rag.generation.provenance import readable_stem
from rag.generation.refine import Ask, Generation, run_turn
from rag.generation.sessions import REGION_PREFIX, SessionStore, Version
from rag.media import region

EDIT, REMOVE, EXPAND = "edit", "remove", "expand"
REGION_MODES = (EDIT, REMOVE, EXPAND)
EVERYTHING = 0.98  # a mask over this share of the picture is the whole picture: that is a refinement
MaskSource = Image.Image | bytes | str | Path
# What the model is told about the crop; the person's words follow.
MODEL_TEXT = {
    EDIT: ("This image is a crop of a larger picture. {words} Change only what this asks for; keep everything else in "
           "the crop exactly as it is (framing, perspective, lighting and colours), and return the whole crop."),
    REMOVE: ("This image is a crop of a larger picture with a flat, featureless patch painted over part of it. Fill "
             "the patch so the background continues naturally and seamlessly from its surroundings, as if nothing had "
             "been there; add no new objects and keep everything else exactly as it is. {words}"),
    EXPAND: ("This picture sits in the middle of a larger canvas whose flat, empty border must be filled. Extend the "
             "scene into the border so it continues naturally and seamlessly, in the same style, lighting and "
             "perspective; keep the picture in the middle exactly as it is. {words}"),
}


@dataclass(frozen=True)
class RegionPlan:
    """What one region edit sends and how its answer comes back: ``sent`` is the model's image, ``box`` where it
    lies in the result (the whole canvas for "Expand canvas"), ``ratio`` the shape asked for."""

    mode: str
    original: Image.Image
    mask: Image.Image  # 255 where the result may differ from the original, of the result's size
    box: region.Box
    ratio: str
    feather: int
    sent: Image.Image
    offset: tuple[int, int] = (0, 0)  # "Expand canvas": where the original sits on the canvas

    def finish(self, answer: Image.Image) -> Image.Image:
        """The whole picture with the model's answer in place."""
        if self.mode == EXPAND:
            return region.place_back(self.original, answer, self.mask.size, self.offset)
        return region.blend(self.original, answer, self.mask, self.box, self.feather)

    def record(self, mask_name: str, edited: Version, model_text: str) -> dict[str, Any]:
        """The provenance of the result: which version, which mask file, where the crop was."""
        record = {"mode": self.mode, "mask": mask_name, "box": list(self.box), "crop_aspect_ratio": self.ratio,
                  "feather_px": self.feather, "edited_version": edited.label, "edited_version_id": edited.id,
                  "original_size": list(self.original.size), "model_prompt": model_text}
        if self.mode == EXPAND:
            record |= {"canvas": list(self.mask.size), "placed_at": list(self.offset)}
        return record


def plan_region(picture: Image.Image, mask: Image.Image | None, mode: str, ratios: Sequence[str], *,
                expand_to: str = "", max_pixels: int) -> RegionPlan:
    """Check the request and work out the crop; refuses, in a sentence, a mask that covers nothing or everything."""
    if mode == EXPAND:
        if expand_to not in ratios:
            raise BananaError(f"Choose the shape to expand to: one of {', '.join(ratios)}.")
        if region.same_shape(picture.size, expand_to):
            raise BananaError(f"The picture is {expand_to} already; choose another shape to expand it to.")
        width, height = region.expanded_size(picture.size, expand_to)
        if width * height > max_pixels:
            raise BananaError(f"Expanded to {expand_to} the picture would be {width}×{height}, over the size this app "
                              "works with; expand a smaller version.")
        canvas, border, offset = region.expand(picture, expand_to)
        return RegionPlan(mode, picture, border, (0, 0, *canvas.size), expand_to, 0, canvas, offset)
    share = region.coverage(mask) if mask is not None else 0.0
    if mask is None or share == 0:
        raise BananaError("The mask covers nothing: brush over the part of the picture to change, then try again.")
    if share >= EVERYTHING:
        raise BananaError("The mask covers the whole picture; to change all of it, use Refine instead.")
    box, ratio = region.crop_box(mask, ratios)
    crop = picture.crop(box)
    sent = region.with_hole(crop, mask.crop(box)) if mode == REMOVE else crop
    return RegionPlan(mode, picture, mask, box, ratio, region.feather_for(box), sent)


class RegionGenerator:
    """An :class:`ImageGenerator` for one region edit, around the real one.

    Whatever turn :func:`run_turn` builds, the model gets ``prompt`` with the plan's image and ``references``,
    in the plan's shape and without the conversation (it is about the crop, not the picture); each image that
    comes back becomes the whole picture blended (:meth:`RegionPlan.finish`). The request and reply stay the
    model's own, so History and the session keep what was really sent."""

    def __init__(self, inner: ImageGenerator, plan: RegionPlan, sent: Asset, references: Sequence[Asset], *,
                 prompt: str, shape: str, max_pixels: int) -> None:
        self._inner, self._plan, self._sent, self._refs = inner, plan, sent, list(references)
        self._prompt, self._shape, self._max_pixels = prompt, shape, max_pixels

    def generate(self, prompt: str, references: Sequence[Asset], *, aspect_ratio: str = "1:1", n: int = 1,
                 model: str = "", image_size: str = "", history: Sequence[Content] = (),
                 notify: Notify | None = None) -> GenerationResult:
        """``prompt`` ("region: ...") is what the version records; the model gets the plan's words and image."""
        result = self._inner.generate(self._prompt, [self._sent, *self._refs], aspect_ratio=self._plan.ratio, n=n,
                                      model=model, image_size=image_size, notify=notify)
        replies = [replace(r, images=[self._finished(i) for i in r.images]) for r in result.replies]
        return replace(result, images=[i for r in replies for i in r.images], replies=replies, prompt=prompt,
                       aspect_ratio=self._shape, references=list(self._refs))

    def _finished(self, image: GeneratedImage) -> GeneratedImage:
        try:
            answer = region.open_picture(image.data, self._max_pixels)
        except ImageError as exc:
            raise GenerationError(f"Gemini returned image data that could not be decoded ({exc}); nothing was saved.") from None
        return GeneratedImage(region.png(self._plan.finish(answer)), "image/png")

    def describe(self, asset: Asset, instruction: str, model: str) -> str:
        return self._inner.describe(asset, instruction, model)

    def models(self) -> list[ListedModel]:
        return self._inner.models()


def edit_region(store: SessionStore, generator: ImageGenerator, settings: Settings, models: ModelList,
                session_ref: str, instruction: str, masks: Sequence[MaskSource] = (), *, from_version: str = "",
                mode: str = EDIT, expand_to: str = "", model: str = "", image_size: str = "", n: int = 1,
                user: str = "", notify: Notify | None = None) -> Generation:
    """A new version of a session with one region of a version (its newest when ``from_version`` is blank) changed.

    ``masks`` are brush layers or mask images (painted or white = change), all together; "Expand canvas" needs
    none but ``expand_to``, a shape the model makes. ``model`` defaults to the one that made the version."""
    if mode not in REGION_MODES:
        raise BananaError(f"Choose what to do with the region: {', '.join(REGION_MODES)}.")
    session = store.session(session_ref, user)
    versions = store.versions(session.id)
    if not versions:
        raise BananaError(f"Session {session.id} has no versions yet; generate an image first.")
    parent = store.version(from_version, session.id, user) if from_version.strip() else versions[-1]
    info = models.usable(model.strip() or parent.model)
    words = " ".join(instruction.split())
    if mode == EDIT and not words:
        raise BananaError("Say what to do with the brushed region, for example: make the label say Oolong.")
    picture = _opened(parent.path, settings, f"{parent.label} cannot be edited")
    layers = [m if isinstance(m, Image.Image) else _opened(m, settings, "The mask cannot be used") for m in masks]
    try:
        mask = region.read_mask(layers, picture.size) if layers and mode != EXPAND else None
    except ImageError as exc:
        raise BananaError(f"The mask cannot be used: {exc}.") from None
    plan = plan_region(picture, mask, mode, info.aspect_ratios, expand_to=expand_to, max_pixels=settings.max_image_pixels)
    refs = [] if mode == REMOVE else _references(parent, info.max_references - 2)
    said = {EDIT: words, REMOVE: f"remove{f' ({words})' if words else ''}",
            EXPAND: f"expand the canvas to {expand_to}{f' ({words})' if words else ''}"}[mode]
    text = MODEL_TEXT[mode].format(words=words + ("." if words and words[-1] not in ".!?" else "")).strip()
    mask_path = Path(settings.outputs_dir) / f"{readable_stem(session.title)}-{parent.label}-mask-{secrets.token_hex(12)}.png"
    ask = Ask(REGION_PREFIX + said, refs, info, plan.ratio, info.size(image_size), n, user,
              {"region": plan.record(mask_path.name, parent, text)})
    shape = expand_to if mode == EXPAND else parent.aspect_ratio
    try:
        atomic_write(mask_path, region.png(plan.mask))
    except OSError as exc:
        raise GenerationError(f"Could not keep the mask beside the versions ({os_error_text(exc)}).") from None
    try:
        with tempfile.TemporaryDirectory(prefix="banana-region-") as folder:
            sent = _sent_asset(Path(folder), plan, parent)
            wrapped = RegionGenerator(generator, plan, sent, refs, prompt=text, shape=shape,
                                      max_pixels=settings.max_image_pixels)
            run = run_turn(store, wrapped, settings, session, parent, ask, notify)
    except BaseException:
        mask_path.unlink(missing_ok=True)  # a request that made nothing leaves the outputs folder as it was
        raise
    if not run.versions:
        mask_path.unlink(missing_ok=True)
    return run


def _opened(source: MaskSource, settings: Settings, why: str) -> Image.Image:
    try:
        return region.open_picture(source, settings.max_image_pixels)  # type: ignore[arg-type]
    except ImageError as exc:
        raise BananaError(f"{why}: {exc}.") from None


def _references(parent: Version, room: int) -> list[Asset]:
    """The references behind the edited version that are still on disk (a logo, a product shot), as many as fit."""
    found = [Asset(id=r["id"], path=r["path"], filename=r.get("filename") or Path(r["path"]).name, folder="reference",
                   width=0, height=0, format="", bytes=0, created=time.time(), source="library")
             for r in parent.references if r.get("id") and r.get("path") and Path(r["path"]).is_file()]
    return found[:max(0, room)]


def _sent_asset(folder: Path, plan: RegionPlan, parent: Version) -> Asset:
    """The crop (or canvas) as a reference record, written where the generator reads references from."""
    path = folder / f"{parent.label}-{plan.mode}.png"
    path.write_bytes(region.png(plan.sent))
    return Asset(id=sha256_file(path), path=str(path), filename=path.name, folder="session", width=plan.sent.width,
                 height=plan.sent.height, format="PNG", bytes=path.stat().st_size, created=time.time(), source="generated")

"""Region edits of a session's versions: ``studio.regions``, what the Generate tab, ``/edit_region`` and
``python -m rag edit`` call. The work is :mod:`rag.generation.region_edit`; the pixels, :mod:`rag.media.region`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.core import Settings
from rag.generation import Generation, ImageGenerator, MaskSource, ModelList, Notify, SessionStore, edit_region


class RegionService:
    """Edit, remove or expand a region of a version; each is a paid request like a refinement (one image by
    default), under the same budget and in the same History. ``user`` is the signed-in user, as everywhere."""

    def __init__(self, settings: Callable[[], Settings], model_list: ModelList, generator: Callable[[], ImageGenerator],
                 sessions: Callable[[], SessionStore]) -> None:
        self._settings = settings
        self._model_list = model_list
        self._generator = generator
        self._sessions = sessions

    def edit(self, session_id: str, instruction: str, masks: Sequence[MaskSource] = (), *, from_version: str = "",
             mode: str = "edit", expand_to: str = "", model: str = "", image_size: str = "", n: int = 1,
             user: str = "", notify: Notify | None = None) -> Generation:
        """A new version with the brushed region of ``from_version`` (the newest by default) changed as
        ``instruction`` says; ``mode`` "remove" fills it from its surroundings, "expand" grows the picture to the
        shape ``expand_to`` (no mask). ``masks``: brush layers, mask images or their files (painted or white =
        change). The mask is kept beside the new version and named in its provenance."""
        with self._model_list.watching():
            return edit_region(self._sessions(), self._generator(), self._settings(), self._model_list, session_id,
                               instruction, masks, from_version=from_version, mode=mode, expand_to=expand_to,
                               model=model, image_size=image_size, n=n, user=user, notify=notify)

    def estimate(self, *, model: str = "", image_size: str = "", n: int = 1) -> float:
        """USD a region edit should cost: a region edit is one image of the model's, like a refinement."""
        info = self._model_list.get(model)
        return info.estimate(n, info.size(image_size))

    def shapes(self, model: str = "") -> tuple[str, ...]:
        """The aspect ratios "Expand canvas" can grow a picture to (those the model makes)."""
        return self._model_list.get(model).aspect_ratios

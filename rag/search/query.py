"""The one type that carries search options, from the UI, the CLI and the API to :func:`rag.search.search_results`.

Each option is one field with its default and its help text; the CLI builds its flags from these
fields and the UI maps one control to each, so adding an option touches this file, its use in
``search.py`` and one control per front end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rag.clip import ImageInput
from rag.core import SOURCES
from rag.search.rank import DEDUPE_COSINE

POOL = 100  # candidates each side of a hybrid search, and near-duplicate collapsing, work over


def _option(default: Any, help: str, flag: str = "", **cli: Any) -> Any:
    """A search option; ``flag`` names its command-line flag ("" = not on the command line)."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


@dataclass(frozen=True)
class Query:
    """What the user asked for. By default a text query runs CLIP and BM25 together (``words``);
    the other ranking options are off. The text may hold ``"exact phrases"`` and ``-words``.

    See bench/eval_retrieval.py for what each option measured.
    """

    text: str = _option("", "what to look for, in words")
    image: ImageInput | None = _option(None, "an example image (image→image, or text+image with a query)", "--image")
    k: int = _option(9, "number of results", "-k")
    folders: tuple[str, ...] = _option((), "only this folder, subfolders included (repeatable)", "--folder")
    sources: tuple[str, ...] = _option((), "only this source (repeatable)", "--source", choices=SOURCES)
    image_id: str = _option("", "use a library asset as the example image", "--id")
    image_weight: float = _option(0.5, "weight of the image in text+image queries (0-1)", "--image-weight")
    words: bool = _option(
        True, "also match words (file name, folder, tags, embedded text, prompt) by BM25, ranked with CLIP", "--no-words"
    )
    min_score: float = _option(
        0.0, "cut-off: hide results under this relevance (0-1, calibrated on the library, the same for any model: "
        "0.5 related or closer, 0.75 only close matches, 0.9 only the best); the best word matches stay (0 = off)",
        "--min-score")
    dedupe: bool = _option(False, "collapse near-duplicate images in the results", "--dedupe")
    ensemble: bool = _option(False, "average several prompt templates for the text (CLIP's zero-shot recipe)", "--ensemble")
    dedupe_threshold: float = _option(DEDUPE_COSINE, "cosine at which two results count as near-duplicates")
    pool: int = _option(POOL, "candidates each side of a hybrid search, and collapsing, work over")
    tags: tuple[str, ...] = _option((), "only images with this tag (repeatable; any of them)", "--tag")

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Query:
        """A query from loose front-end values: unknown keys are refused, ``None`` means the default."""
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise TypeError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if value is None or (name == "image" and value == ""):
                continue
            default = known[name].default
            if isinstance(default, tuple):
                value = tuple(value)
            elif isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                value = type(default)(value)
            clean[name] = value
        return cls(**clean)


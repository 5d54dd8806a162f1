"""Image generation behind :class:`ImageGenerator` (Gemini today), which models exist, refine sessions and region edits.
"""

from rag.generation.attempts import Attempt
from rag.generation.base import (
    BatchAnswer,
    BatchGenerator,
    BatchJob,
    BatchRequest,
    GenerationResult,
    ImageGenerator,
    Notify,
    PreparedBatch,
)
from rag.generation.factory import make_generator
from rag.generation.model_list import Choice, ModelList
from rag.generation.models import (
    MAX_IMAGES_PER_RUN,
    MAX_PROMPT_CHARS,
    ModelInfo,
    all_aspect_ratios,
    all_sizes,
    estimate_cost,
    retired_models,
)
from rag.generation.provenance import read_provenance
from rag.generation.refine import Ask, Generation, keep_images, refine, run_turn, start_from, version_asset
from rag.generation.region_edit import REGION_MODES, MaskSource, edit_region
from rag.generation.reply import read_reply
from rag.generation.sessions import Session, SessionStore, Version, new_id, visible_to
from rag.generation.text_check import TextCheck, asked_text, differs

__all__ = ["all_aspect_ratios", "all_sizes", "Ask", "asked_text", "Attempt", "BatchAnswer", "BatchGenerator", "BatchJob", "BatchRequest", "Choice", "differs", "edit_region", "estimate_cost", "Generation", "GenerationResult", "ImageGenerator", "keep_images", "make_generator", "MaskSource", "MAX_IMAGES_PER_RUN", "MAX_PROMPT_CHARS", "ModelInfo", "ModelList", "new_id", "Notify", "PreparedBatch", "read_provenance", "read_reply", "refine", "REGION_MODES", "retired_models", "run_turn", "Session", "TextCheck", "SessionStore", "start_from", "Version", "version_asset", "visible_to"]

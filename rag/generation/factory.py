"""The configured image generator: the one place that knows which implementation backs the interface."""

from __future__ import annotations

from rag.core import Settings
from rag.generation.base import ImageGenerator
from rag.generation.gemini import GeminiGenerator


def make_generator(settings: Settings) -> ImageGenerator:
    """The configured generator; raises :class:`rag.core.errors.GenerationDisabled` without an API key."""
    return GeminiGenerator(settings)

"""Content credentials for the images a turn makes: what each one's C2PA manifest says, and who signs it.

A first generation is "created" by the model from its references (each an ingredient, with its own
credentials when it has some); a refinement, a region edit or a branch on another model is "edited" from its
parent version (the ``parentOf`` ingredient). The signing itself is :mod:`rag.media.credentials`. Signing
never stops an image from being saved: a failure becomes one sentence for History (:func:`failure_note`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from rag import __version__
from rag.core import BananaError, ConfigError, Settings
from rag.generation.base import GenerationResult
from rag.generation.sessions import Version
from rag.media import certificates, credentials

log = logging.getLogger(__name__)

Stamp = Callable[[bytes, str], bytes]
"""Signs one encoded image (PNG bytes, its title) and returns the signed bytes; raises a sentence."""


def stamp_for(settings: Settings, result: GenerationResult, parent: Version | None) -> Stamp | None:
    """What signs ``result``'s images (None when content credentials are off)."""
    if not settings.credentials:
        return None
    parent_path = parent.path if parent is not None else ""
    references = tuple(credentials.Ingredient(a.filename, "inputTo", a.path)
                       for a in result.references if not parent_path or a.path != parent_path)
    facts = credentials.Facts(
        model=result.model, prompt=result.prompt if settings.credentials_include_prompt else "", references=references,
        parent=credentials.Ingredient(parent.label, "parentOf", parent.path) if parent is not None else None,
        version=__version__,
    )

    def stamp(png: bytes, title: str) -> bytes:
        key = certificates.signing_key(settings)
        if key is None:
            return png
        return credentials.sign(png, "image/png", replace(facts, title=title), key)

    return stamp


def failure_note(title: str, exc: BananaError) -> str:
    """The sentence History keeps when an image was saved without credentials. History is on the page, so it says
    what went wrong in plain words and nothing more: the certificate's file, its folder and the key stay in the
    server log, beside the title, for whoever runs the app."""
    log.warning("saved %s without content credentials: %s", title, exc)
    why = "the certificate that signs them could not be used" if isinstance(exc, ConfigError) else "signing failed"
    return f"{title} was saved without content credentials: {why}. The server log says why."

"""Saving generated images with their provenance (prompt, model, parent assets) inside the PNG.

The record travels with the file, so "what was this made from?" survives copies, exports and
re-indexing. Saving is separate from generating: a failed generation writes nothing. Files get
readable names from their prompt (and version), not hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.core import BananaError, GenerationError, ImageError, atomic_write, os_error_text
from rag.generation.base import GenerationResult
from rag.generation.signing import Stamp, failure_note
from rag.media import credentials, encode_png, png_text

PROVENANCE_KEY = "banana:provenance"
"""PNG text chunk (iTXt) holding the JSON provenance of a saved image."""

MAX_PROVENANCE_CHARS = 100_000  # PIL refuses text chunks over 1 MB when reading back
MAX_STEM_CHARS = 48


def readable_stem(prompt: str, *, limit: int = MAX_STEM_CHARS) -> str:
    """``"A banana on a marble counter!"`` → ``a-banana-on-a-marble-counter``: a file name a person can read."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    stem = ""
    for word in words:
        if len(stem) + len(word) + 1 > limit:
            break
        stem = f"{stem}-{word}" if stem else word
    return stem or (words[0][:limit] if words else "image")


def provenance_of(result: GenerationResult, index: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON stored with image ``index`` of ``result``: enough to redo or audit it.

    ``extra`` adds the session's facts (session and version ids, the parent version, ``parents``).
    """
    image = result.images[index]
    return {
        "version": 1,
        "generator": "banana-studio",
        "prompt": result.prompt[:MAX_PROVENANCE_CHARS],
        "model": result.model,
        "aspect_ratio": result.aspect_ratio,
        "created": result.created,
        "created_iso": datetime.fromtimestamp(result.created, UTC).isoformat(timespec="seconds"),
        "text": result.text[:MAX_PROVENANCE_CHARS],
        "index": index,
        "count": len(result.images),
        "source_mime_type": image.mime_type,
        "references": [{"id": a.id, "path": a.path, "filename": a.filename} for a in result.references],
        "image_size": result.image_size,
        **(extra or {}),
    }


def _encoded(result: GenerationResult, max_pixels: int, extra: Mapping[str, Any] | None, sign: Stamp | None,
             notes: list[str]) -> list[tuple[str, bytes]]:
    """Every image as ``(sha256, PNG with provenance)``, all encoded before anything is written; signed with
    content credentials when ``sign`` is given, else (or when signing fails: a sentence in ``notes``) not."""
    encoded = []
    for i, image in enumerate(result.images):
        record = json.dumps(provenance_of(result, i, extra), ensure_ascii=False)
        try:
            png = encode_png(image.data, text={PROVENANCE_KEY: record}, max_pixels=max_pixels, xmp=credentials.ai_xmp())
        except ImageError as exc:
            raise GenerationError(f"Gemini returned image data that could not be decoded ({exc}); nothing was saved.") from None
        if sign is not None:
            title = f"{readable_stem(result.prompt)}{'' if len(result.images) == 1 else f'-{i + 1}'}.png"
            try:
                png = sign(png, title)
            except BananaError as exc:
                notes.append(failure_note(title, exc))
        encoded.append((hashlib.sha256(png).hexdigest(), png))
    return encoded


def _target(out: Path, stem: str, digest: str) -> Path:
    """``stem.png``, unless a different picture already has that name: then ``stem-<digest>.png``."""
    path = out / f"{stem}.png"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        path = out / f"{stem}-{digest[:8]}.png"
    return path


def save_result(
    result: GenerationResult,
    outputs_dir: str | os.PathLike[str],
    *,
    max_pixels: int,
    stem: str = "",
    extra: Mapping[str, Any] | None = None,
    sign: Stamp | None = None,
    notes: list[str] | None = None,
) -> list[Path]:
    """Write each image as a PNG with provenance, named readably; all or nothing.

    The name is ``stem`` (a session passes prompt and version), else the prompt and the first
    characters of the content hash, so the same picture saved twice keeps one file. Everything
    is encoded before the first write, and files written by a failing call are removed, so a
    failure leaves ``outputs_dir`` as it was. ``max_pixels`` is the settings' image limit, which
    returned images meet like any other file. ``sign`` adds content credentials (:mod:`rag.generation.signing`);
    an image it cannot sign is saved without them and ``notes`` gets the sentence.
    """
    encoded = _encoded(result, max_pixels, extra, sign, notes if notes is not None else [])
    if not encoded:
        return []
    out = Path(outputs_dir)
    paths: list[Path] = []
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i, (digest, png) in enumerate(encoded):
            name = stem or f"{readable_stem(result.prompt)}-{digest[:8]}"
            path = _target(out, name if len(encoded) == 1 or not stem else f"{stem}-{i + 1}", digest)
            if not path.exists():
                atomic_write(path, png)
                written.append(path)
            paths.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise GenerationError(f"Could not save the generated image to {out} ({os_error_text(exc)}).") from None
    return paths


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance saved by :func:`save_result`, or ``None`` for any other file."""
    raw = png_text(Path(path), PROVENANCE_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

"""Small WebP previews for galleries, cached under the data folder.

Galleries show these rather than originals: they load fast, and the web app then only ever
serves files from folders it owns, never from wherever a library folder happens to live.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import ImageError
from .files import atomic_write, os_error_text
from .images import encode_preview
from .types import Asset

log = logging.getLogger(__name__)

THUMB_SIZE = 384


def thumbnail(asset: Asset, thumbs_dir: Path, max_pixels: int) -> Path | None:
    """The preview's path, made on first use; ``None`` when the original is gone or unreadable
    (a broken original only costs its preview, so the reason is logged, not raised)."""
    target = Path(thumbs_dir) / asset.id[:2] / f"{asset.id}.webp"
    if target.exists():
        return target
    try:
        atomic_write(target, encode_preview(asset.path, size=THUMB_SIZE, max_pixels=max_pixels))
    except ImageError as exc:
        log.info("No preview for %s: %s", asset.filename, exc)
        return None
    except OSError as exc:
        log.warning("Could not write the preview of %s (%s)", asset.filename, os_error_text(exc))
        return None
    return target

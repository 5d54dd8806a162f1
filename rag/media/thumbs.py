"""Small WebP previews for galleries, cached under the data folder.

Galleries show these rather than originals: they load fast, and the web app then only ever
serves files from folders it owns, never from wherever a library folder happens to live.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.core import Asset, ImageError, atomic_write, os_error_text
from rag.media.encode import encode_preview

log = logging.getLogger(__name__)

THUMB_SIZE = 384
LARGE_SIZE = 1024  # an asset's page
PLACEHOLDER = """<svg xmlns="http://www.w3.org/2000/svg" width="384" height="384" viewBox="0 0 384 384">
<rect width="384" height="384" fill="#e5e7eb"/><text x="192" y="200" font-family="sans-serif" font-size="28"
fill="#6b7280" text-anchor="middle">preview…</text></svg>
"""


def _target(asset: Asset, thumbs_dir: Path, size: int = THUMB_SIZE) -> Path:
    suffix = "" if size == THUMB_SIZE else f"-{size}"
    return Path(thumbs_dir) / asset.id[:2] / f"{asset.id}{suffix}.webp"


def cached_thumbnail(asset: Asset, thumbs_dir: Path) -> Path | None:
    """The preview if it was made already; never decodes anything (a grid page must not wait)."""
    target = _target(asset, thumbs_dir)
    return target if target.exists() else None


def placeholder(thumbs_dir: Path) -> Path:
    """A grey "preview…" tile shown until an asset's preview is made (written once)."""
    target = Path(thumbs_dir) / "placeholder.svg"
    if not target.exists():
        atomic_write(target, PLACEHOLDER.encode("utf-8"))
    return target


def thumbnail(asset: Asset, thumbs_dir: Path, max_pixels: int, size: int = THUMB_SIZE) -> Path | None:
    """The preview's path, made on first use; ``None`` when the original is gone or unreadable
    (a broken original only costs its preview, so the reason is logged, not raised)."""
    target = _target(asset, thumbs_dir, size)
    if target.exists():
        return target
    try:
        atomic_write(target, encode_preview(asset.path, size=size, max_pixels=max_pixels))
    except ImageError as exc:
        log.info("No preview for %s: %s", asset.filename, exc)
        return None
    except OSError as exc:
        log.warning("Could not write the preview of %s (%s)", asset.filename, os_error_text(exc))
        return None
    return target

"""Small WebP previews for galleries, cached under the data folder.

Galleries show these rather than originals: they load fast, and the web app then only ever
serves files from folders it owns, never from wherever a library folder happens to live.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from .images import WORKING_SIZE
from .types import Asset

THUMB_SIZE = 384


def thumbs_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "thumbs"


def thumbnail(asset: Asset, data_dir: Path, max_pixels: int = 100_000_000) -> Path | None:
    """The preview's path, made on first use; ``None`` when the original is gone or unreadable."""
    target = thumbs_dir(data_dir) / asset.id[:2] / f"{asset.id}.webp"
    if target.exists():
        return target
    try:
        with Image.open(asset.path) as img:
            if img.width * img.height > max_pixels:
                return None
            if img.format == "JPEG":
                img.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
            img.load()
            pic = ImageOps.exif_transpose(img) or img
            pic = pic.convert("RGBA") if ("A" in pic.getbands() or "transparency" in pic.info) else pic.convert("RGB")
            pic.thumbnail((THUMB_SIZE, THUMB_SIZE))
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part.webp")
            pic.save(tmp, "WEBP", quality=82)
            tmp.replace(target)
    except Exception:  # noqa: BLE001 - a missing or broken original only costs its preview
        return None
    return target

"""Image files re-encoded on their way out: generation references, saved results, gallery previews.

Every file is opened through :func:`rag.media.images.open_image`, so it meets the same guards as one
decoded for embedding (only the decoders we support, a declared size over the pixel limit refused before
any pixel is decoded) and fails with the same :class:`ImageError` sentences. What comes out is upright
(EXIF rotation applied) and leaves the EXIF block behind, location data included.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from rag.core import ImageError
from rag.media.images import WORKING_SIZE, decoding, has_alpha, open_image, upright


def encode_reference(source: str | Path, *, max_side: int, max_bytes: int, max_pixels: int) -> tuple[bytes, str]:
    """A file re-encoded to send as a generation reference: upright, at most ``max_side`` px and
    ``max_bytes``; PNG when it has transparent pixels, else JPEG q90. Returns ``(bytes, mime type)``.

    Re-encoding strips EXIF (location data stays home) and keeps uploads small.
    """
    with open_image(source, max_pixels) as src, decoding(src.mode, max_pixels):
        src.load()
        img = upright(src)
        transparent = has_alpha(img)
        if transparent:
            img = img.convert("RGBA")
            transparent = img.getchannel("A").getextrema()[0] < 255  # fully opaque -> JPEG
        img = img if transparent else img.convert("RGB")
        options: dict[str, Any] = {"format": "PNG"} if transparent else {"format": "JPEG", "quality": 90}
        side = max_side
        while side >= 64:
            candidate = img.copy()
            candidate.thumbnail((side, side), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            candidate.save(buf, **options)
            if buf.tell() <= max_bytes:
                return buf.getvalue(), f"image/{options['format'].lower()}"
            side = int(side * 0.75)
    raise ImageError(f"it stays over {max_bytes / 2**20:.0f} MB even when shrunk")


def encode_png(data: bytes, *, text: Mapping[str, str], max_pixels: int, xmp: str = "") -> bytes:
    """Image bytes re-encoded as an upright PNG (colour profile kept) carrying ``text`` in compressed
    iTXt chunks, so a saved file holds its own record (read back with :func:`png_text`), and ``xmp``, an XMP
    packet, in the uncompressed ``XML:com.adobe.xmp`` chunk where XMP readers look for it."""
    with open_image(data, max_pixels) as src, decoding(src.mode, max_pixels):
        src.load()
        img = upright(src)
        if img.mode not in ("RGB", "RGBA", "L", "LA", "P", "I;16"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        from PIL.PngImagePlugin import PngInfo  # here: importing a plugin registers it process-wide

        info = PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value, zip=True)
        if xmp:
            info.add_itxt("XML:com.adobe.xmp", xmp)
        info.add_text("Software", "Banana Studio")
        buf = io.BytesIO()
        extra = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") else {}
        img.save(buf, format="PNG", pnginfo=info, **extra)
    return buf.getvalue()


def png_text(source: str | Path, key: str) -> str | None:
    """The text chunk ``key`` of a PNG written by :func:`encode_png`, or ``None`` for any other file.
    Only the header is read (our chunks precede the pixels): no pixel is decoded."""
    try:
        with open_image(source, None, formats=("PNG",)) as img:
            value = img.info.get(key)
    except ImageError:
        return None
    return value if isinstance(value, str) else None


def encode_preview(source: str | Path, *, size: int, max_pixels: int) -> bytes:
    """A WebP of at most ``size`` px, upright, transparency kept: what galleries show instead of originals."""
    with open_image(source, max_pixels) as img, decoding(img.mode, max_pixels):
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
        img.load()
        pic = upright(img)
        pic = pic.convert("RGBA") if ("A" in pic.getbands() or "transparency" in pic.info) else pic.convert("RGB")
        pic.thumbnail((size, size))
        buf = io.BytesIO()
        pic.save(buf, "WEBP", quality=82)
    return buf.getvalue()

"""A visible watermark on a preview ("For review — Spring launch"), for images shown outside the team.

Drawn on the preview, never on the original: repeated diagonally across the picture in white with a dark
outline, half transparent, so it reads on light and dark images and cannot be cropped away.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from rag.media.images import decoding, open_image

FONT = "DejaVuSans.ttf"  # found by name among the system's fonts; Pillow's own font when it is not there
MAX_TEXT = 80


def _font(size: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, bool]:
    """A font at ``size`` px, and whether it has glyphs beyond ASCII (Pillow's own has no dash)."""
    try:
        return ImageFont.truetype(FONT, size), True
    except OSError:
        return ImageFont.load_default(size=size), False


def _stamp(text: str, size: int) -> Image.Image:
    """The text once, rotated 30 degrees, on a transparent tile."""
    font, wide = _font(size)
    if not wide:
        text = text.replace("—", "-").encode("ascii", "replace").decode()
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font, stroke_width=2)
    tile = Image.new("RGBA", (box[2] + size * 2, box[3] + size), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((size, size // 2), text, font=font, fill=(255, 255, 255, 140), stroke_width=2,
                              stroke_fill=(0, 0, 0, 110))
    return tile.rotate(30, expand=True, resample=Image.Resampling.BICUBIC)


def watermarked(source: str | Path, text: str, *, max_pixels: int) -> bytes:
    """The preview at ``source`` with ``text`` across it, as WebP bytes."""
    with open_image(source, max_pixels) as img, decoding(img.mode, max_pixels):
        img.load()
        pic = img.convert("RGBA")
    stamp = _stamp(" ".join(str(text).split())[:MAX_TEXT], max(14, min(pic.size) // 16))
    layer = Image.new("RGBA", pic.size, (0, 0, 0, 0))
    for top in range(-stamp.height // 2, pic.height, max(1, stamp.height * 2 // 3)):
        shift = (top // max(1, stamp.height)) % 2 * stamp.width // 2
        for left in range(-stamp.width + shift, pic.width, stamp.width):
            layer.alpha_composite(stamp, (max(0, left), max(0, top)), (max(0, -left), max(0, -top)))
    out = Image.alpha_composite(pic, layer)
    buf = io.BytesIO()
    out.save(buf, "WEBP", quality=82)
    return buf.getvalue()

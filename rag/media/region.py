"""Pure pixel work for editing one region of a picture: the mask, the crop the model sees, the blend back.

Image models take no mask, so a region edit sends the model a crop around the brushed area and blends its
answer back inside the mask only. The blend's alpha is zero outside the mask grown by the feather
(:func:`grown`), so every pixel there is the original's, byte for byte. "Expand canvas" places the picture
on a wider or taller canvas, has the model fill the new border and puts the original pixels back on top.
Nothing here reads settings or speaks to a service: the callers (:mod:`rag.generation.region_edit`) decide.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageStat

from rag.core import ImageError
from rag.media.images import decoding, has_alpha, open_image, upright

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), as Pillow's crop
# The smallest crop sent: the smallest image a current model makes is 512 px (Nano Banana 2's "512" size,
# rag/generation/models.py), and a crop narrower than that shows the model too little of the picture.
MIN_CROP_SIDE = 512
MARGIN_SHARE = 0.25  # context around the mask's bounding box, as a share of its longer side
MIN_MARGIN = 32  # px; at least the widest feather, so the blend never reaches past the crop
MAX_FEATHER = 16
SAME_SHAPE = 0.01  # aspect ratios closer than this (relative) are the same shape


def open_picture(source: bytes | str | Path, max_pixels: int) -> Image.Image:
    """A picture decoded upright (EXIF rotation applied) as RGB, or RGBA when it has transparent pixels."""
    with open_image(source, max_pixels) as img, decoding(img.mode, max_pixels):
        img.load()
        pic = upright(img)
        return pic.convert("RGBA" if has_alpha(pic) else "RGB")


def _mask_of(layer: Image.Image) -> Image.Image:
    """Painted pixels of one layer: alpha where it has transparency (a brush layer), else white (a PNG mask)."""
    if has_alpha(layer):
        alpha = layer.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha.point(lambda v: 255 if v > 0 else 0)
    return layer.convert("L").point(lambda v: 255 if v >= 128 else 0)


def read_mask(layers: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """One ``L`` mask (255 = change, 0 = keep) of ``size`` from brush layers or mask images, all painted areas
    together. A layer drawn on a scaled copy of the picture is scaled back; one of another shape is refused."""
    width, height = size
    mask = Image.new("L", size, 0)
    for layer in layers:
        if layer.size != size:
            if abs(layer.width / layer.height - width / height) > 0.02 * width / height:
                raise ImageError(f"the mask is {layer.width}×{layer.height} but the picture is {width}×{height}; "
                                 "draw the mask on the picture itself")
            layer = layer.resize(size, Image.Resampling.NEAREST)
        mask = ImageChops.lighter(mask, _mask_of(layer))
    return mask


def coverage(mask: Image.Image) -> float:
    """The share of the picture a 0/255 mask covers (0 to 1)."""
    return mask.histogram()[255] / (mask.width * mask.height)


def ratio_value(ratio: str) -> float:
    """``"16:9"`` → 1.777…"""
    width, _, height = ratio.partition(":")
    return int(width) / int(height)


def nearest_ratio(value: float, ratios: Sequence[str]) -> str:
    """The ratio of ``ratios`` closest in shape to ``value`` (width / height), compared on a log scale."""
    return min(ratios, key=lambda r: abs(np.log(ratio_value(r) / value)))


def crop_box(mask: Image.Image, ratios: Sequence[str], *, min_side: int = MIN_CROP_SIDE) -> tuple[Box, str]:
    """The box sent to the model, and its aspect ratio (one of ``ratios``).

    The mask's bounding box grows by a margin (context for the model), to ``min_side`` (a tiny mask still gets
    a crop the model can work with), then to the nearest ratio the model makes, so its answer scales back
    without stretching; it is kept inside the picture. Each side keeps at least :data:`MIN_MARGIN` px of
    context or reaches the picture's edge.
    """
    width, height = mask.size
    left, top, right, bottom = mask.getbbox() or (0, 0, width, height)
    margin = max(MIN_MARGIN, round(max(right - left, bottom - top) * MARGIN_SHARE))
    w = max(right - left + 2 * margin, min(min_side, width))
    h = max(bottom - top + 2 * margin, min(min_side, height))
    ratio = nearest_ratio(w / h, ratios)
    if w / h < ratio_value(ratio):
        w = round(h * ratio_value(ratio))
    else:
        h = round(w / ratio_value(ratio))
    w, h = min(w, width), min(h, height)
    x = min(max(0, round((left + right - w) / 2)), width - w)
    y = min(max(0, round((top + bottom - h) / 2)), height - h)
    return (x, y, x + w, y + h), ratio


def feather_for(box: Box) -> int:
    """Pixels over which the new content fades into the old: about 1/64 of the crop's shorter side."""
    return max(2, min(MAX_FEATHER, round(min(box[2] - box[0], box[3] - box[1]) / 64)))


def grown(mask: Image.Image, px: int) -> Image.Image:
    """The mask grown by ``px`` pixels in every direction (a square neighbourhood), exactly.

    Pillow's MaxFilter does this in time that grows with the square of ``px``; a summed-area table does it
    in four lookups a pixel."""
    if px <= 0:
        return mask.copy()
    painted = np.asarray(mask) > 0
    height, width = painted.shape
    table = np.zeros((height + 1, width + 1), np.int64)
    table[1:, 1:] = painted.cumsum(0).cumsum(1)
    rows, cols = np.arange(height), np.arange(width)
    top, bottom = np.clip(rows - px, 0, height), np.clip(rows + px + 1, 0, height)
    left, right = np.clip(cols - px, 0, width), np.clip(cols + px + 1, 0, width)
    counts = (table[bottom][:, right] - table[top][:, right] - table[bottom][:, left] + table[top][:, left])
    return Image.fromarray(np.where(counts > 0, 255, 0).astype(np.uint8), "L")


def fitted(answer: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """The model's answer scaled to ``size`` (cropped from its middle where its shape differs a little)."""
    return ImageOps.fit(answer.convert(mode), size, Image.Resampling.LANCZOS)


def blend(original: Image.Image, answer: Image.Image, mask: Image.Image, box: Box, feather: int) -> Image.Image:
    """``original`` with the answer for crop ``box`` blended in: fully inside the mask, fading out over
    ``feather`` px beyond it, and not at all further out (those pixels are the original's, exactly)."""
    region_mask = mask.crop(box)
    soft = ImageChops.lighter(region_mask.filter(ImageFilter.GaussianBlur(feather / 2)), region_mask)
    alpha = ImageChops.multiply(soft, grown(region_mask, feather))
    size = (box[2] - box[0], box[3] - box[1])
    region = Image.composite(fitted(answer, size, original.mode), original.crop(box), alpha)
    out = original.copy()
    out.paste(region, box[:2])
    return out


def _surroundings(picture: Image.Image, mask: Image.Image | None = None) -> tuple[int, ...]:
    """The mean colour of the picture (outside ``mask``): a flat fill the model reads as "nothing here"."""
    keep = ImageOps.invert(mask) if mask is not None else None
    if keep is not None and keep.getbbox() is None:
        keep = None  # nothing is left outside: the whole picture's mean will do
    return tuple(round(v) for v in ImageStat.Stat(picture, mask=keep).mean)


def with_hole(crop: Image.Image, mask: Image.Image) -> Image.Image:
    """The crop with its masked area (grown by 2 px) painted flat in the surroundings' colour ("Remove")."""
    hole = grown(mask, 2)
    out = crop.copy()
    out.paste(_surroundings(crop, hole), mask=hole)
    return out


def expanded_size(size: tuple[int, int], ratio: str) -> tuple[int, int]:
    """The canvas of shape ``ratio`` that holds a picture of ``size``, growing one side only."""
    width, height = size
    target = ratio_value(ratio)
    if width / height < target:
        return round(height * target), height
    return width, round(width / target)


def same_shape(size: tuple[int, int], ratio: str) -> bool:
    return abs(size[0] / size[1] - ratio_value(ratio)) <= SAME_SHAPE * ratio_value(ratio)


def expand(original: Image.Image, ratio: str) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """("Expand canvas") the picture centred on a canvas of shape ``ratio``, the new border flat in its mean
    colour; the mask of that border; where the picture sits."""
    size = expanded_size(original.size, ratio)
    offset = ((size[0] - original.width) // 2, (size[1] - original.height) // 2)
    canvas = Image.new(original.mode, size, _surroundings(original))
    canvas.paste(original, offset)
    mask = Image.new("L", size, 255)
    mask.paste(0, (*offset, offset[0] + original.width, offset[1] + original.height))
    return canvas, mask, offset


def place_back(original: Image.Image, answer: Image.Image, size: tuple[int, int], offset: tuple[int, int]) -> Image.Image:
    """The model's filled canvas scaled to ``size``, with the original pixels put back where they were."""
    out = fitted(answer, size, original.mode)
    out.paste(original, offset)
    return out


def png(img: Image.Image) -> bytes:
    """Lossless bytes of a picture (the crop sent, the mask kept beside a version, a blended result)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

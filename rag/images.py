"""Decoding untrusted image files into RGB pictures a CLIP model can embed.

Creative assets are often transparent cut-outs: they are composited on a neutral background,
because a plain ``convert("RGB")`` turns transparent pixels black and skews search.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import ImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Pictures are shrunk to this before compositing; CLIP looks at 224 px, so nothing is lost.
WORKING_SIZE = 512
# The only Pillow decoders an untrusted file reaches. Pillow otherwise sniffs every format it knows
# whatever the file is called, and some (ICO, ICNS, EPS via Ghostscript, ...) decode or run external
# tools inside Image.open(), before the size check below can refuse them.
Image.init()  # register every plugin now, so the restricted list below can be looked up
PIL_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF") if f in Image.OPEN)
# Pictures bigger than this once opened (after JPEG's draft reduction) decode one at a time, so
# several ingest threads meeting huge files at once cannot multiply the memory peak.
BIG_PIXELS = 16_000_000
_big_decode = threading.Lock()
# EXIF orientation -> the transpose that displays the picture upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Image.MAX_IMAGE_PIXELS = None  # we enforce our own, configurable limit in decode()


@dataclass(frozen=True)
class Decoded:
    """A decoded picture plus the facts the store keeps about its file."""

    image: Image.Image
    width: int
    height: int
    format: str


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _too_large(width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"the image is too large ({width}×{height} = {width * height / 1e6:.0f} MP; "
        f"the limit is {max_pixels / 1e6:.0f} MP, set MAX_IMAGE_PIXELS to raise it)"
    )


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent or unreadable: bad EXIF must not reject a good picture)."""
    try:
        value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and value in _ORIENTATION else 1
    except Exception:  # noqa: BLE001 - hostile EXIF blocks raise all sorts
        return 1


def _has_alpha(img: Image.Image) -> bool:
    # "transparency" covers palette images and the colour-key form of L/RGB PNGs (tRNS).
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode.startswith("I"):  # 16/32-bit greyscale: scale down instead of clipping to white
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    if not _has_alpha(img):
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """``img.reduce(factor)`` without a full-size temporary: Pillow's reduce and resize of RGBA/LA
    first convert the whole picture to premultiplied alpha (another 400 MB for 100 MP), so those
    are reduced a strip at a time."""
    if img.mode not in ("RGBA", "LA"):
        return img.reduce(factor)
    width, height = img.size
    out = Image.new(img.mode, (-(-width // factor), -(-height // factor)))
    step = factor * 64  # rows per strip, a multiple of factor so blocks never straddle strips
    for top in range(0, height, step):
        out.paste(img.crop((0, top, width, min(height, top + step))).reduce(factor), (0, top // factor))
    return out


def _shrink(img: Image.Image, owned: bool) -> Image.Image:
    """At most WORKING_SIZE on its long side, in a mode Pillow can resample smoothly.

    ``owned``: the picture was opened here and may be shrunk in place (a full-size copy of a
    100 MP picture is 400 MB); a caller's picture is never modified.
    """
    if img.mode == "P" or img.mode == "1":
        # Palette and bilevel images would be resized with NEAREST; expand them first.
        img = img.convert("RGBA" if _has_alpha(img) else ("RGB" if img.mode == "P" else "L"))
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if max(img.size) <= WORKING_SIZE:
        return img
    factor = max(img.size) // (2 * WORKING_SIZE)
    if factor >= 2 and not (img.mode.startswith("I") or img.mode == "F"):  # reduce() takes no 16-bit modes
        # Box-average down to 2-4× the working size first (a new, small image).
        img = _reduce(img, factor)
    elif not owned:
        img = img.copy()
    img.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR, reducing_gap=None)
    return img


def decode(
    source: bytes | str | Path | Image.Image,
    *,
    background: tuple[int, int, int] = (128, 128, 128),
    max_pixels: int = 100_000_000,
) -> Decoded:
    """Open, validate and flatten one image; raise :class:`ImageError` with a reason a user can read.

    The size check uses the dimensions the file declares and runs before any pixel data is
    decoded, so a small file claiming billions of pixels costs nothing. ``width``/``height`` are
    the picture's full size as displayed (EXIF rotation applied), not the working copy's.
    """
    opened_here = not isinstance(source, Image.Image)
    if isinstance(source, Image.Image):
        img = source
        fmt = (img.format or "RAW").upper()
    else:
        if isinstance(source, (str, Path)):
            try:
                data = Path(source).read_bytes()
            except FileNotFoundError:
                raise ImageError("the file no longer exists") from None
            except IsADirectoryError:
                raise ImageError("it is a folder, not a file") from None
            except OSError as exc:
                raise ImageError(f"the file cannot be read ({exc.strerror or exc})") from None
        else:
            data = source
        if not data:
            raise ImageError("the file is empty (0 bytes)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
        except UnidentifiedImageError:
            raise ImageError("not a recognised image format") from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on hostile input
            log.debug("Image.open failed: %r", exc)
            raise ImageError("the file is damaged: its image header cannot be read") from None
        fmt = (img.format or "").upper()
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)
    mode = img.mode
    try:
        if opened_here and fmt in ("JPEG", "MPO"):
            img.draft("RGB", (WORKING_SIZE, WORKING_SIZE))  # decode at 1/2..1/8 scale: less memory and time
        big = img.width * img.height > BIG_PIXELS
        with _big_decode if big else nullcontext():
            img.load()  # the first frame only, for animations
            orientation = _orientation(img)  # after load(): reading a PNG's EXIF decodes it
            if img.width * img.height > max_pixels:  # a decoder that grew the picture while loading
                raise _too_large(img.width, img.height, max_pixels)
            img = _shrink(img, owned=opened_here)
        if orientation != 1:
            img = img.transpose(_ORIENTATION[orientation])
            if orientation >= 5:
                width, height = height, width
        flat = _flatten(img, background)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("there is not enough memory to decode the image") from None
    except ValueError as exc:
        if "mode" in str(exc) or "conversion" in str(exc):
            raise ImageError(f"the image uses a colour mode ({mode}) that cannot be converted to RGB") from None
        log.debug("decoding failed: %r", exc)
        raise ImageError("the image data is corrupt or truncated") from None
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data surfaces here
        log.debug("decoding failed: %r", exc)
        raise ImageError("the image data is corrupt or truncated") from None
    return Decoded(image=flat, width=width, height=height, format=fmt)

"""The only place that opens image files: decoding for embedding here, and through :func:`open_image` the
re-encoding for previews, generation references and provenance (:mod:`rag.media.encode`).

Every file meets the same two guards: Pillow may only use the decoders we support
(:func:`allowed_formats`), and a declared size over the caller's pixel limit is refused before any
pixel is decoded (Pillow's own guard stays on behind ours and reads the same). Failures are
:class:`ImageError` sentences. For embedding, transparent cut-outs are composited on a neutral
background: a plain ``convert("RGB")`` turns them black and skews search.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from rag.core import ImageError, Settings, os_error_text
from rag.media.image_text import embedded_text

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Pictures are shrunk to this before compositing; CLIP looks at 224 px, so nothing is lost.
WORKING_SIZE = 512
# A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8: ``Image.draft``) that keeps both sides at
# least this long, 1.5x the 224 px CLIP looks at, so that CLIP's own antialiased resize still smooths the
# block averages of DCT scaling: a 12 MP photo at 1/8, 500x375, whose CLIP input is closer to a full
# decode's than a 1/4 decode shrunk to 512 was (tests/test_speed.py), with a quarter of the pixels.
DRAFT_SIDE = 336
# The only Pillow decoders an untrusted file reaches. Pillow otherwise sniffs every format it knows
# whatever the file is called, and some (ICO, ICNS, EPS via Ghostscript, PSD, ...) decode or run
# external tools inside Image.open(), before any size check can refuse them.
SUPPORTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")
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
# Pillow's own limit: an error past twice Image.MAX_IMAGE_PIXELS, a warning (an error under -W error) past it.
_PILLOW_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@dataclass(frozen=True)
class Decoded:
    """A decoded picture plus the facts the store keeps about its file."""

    image: Image.Image
    width: int
    height: int
    format: str
    text: str = ""  # titles, descriptions and keywords embedded in the file (rag/media/image_text.py)


@dataclass(frozen=True)
class Header:
    """The facts the store keeps about an image file, read from its header alone (no pixel decoded),
    for a file whose pixels another decoder will decode (a JPEG on the GPU, rag/clip/jpeg.py)."""

    width: int  # as displayed: EXIF rotation applied
    height: int
    format: str
    text: str = ""
    orientation: int = 1  # the EXIF orientation the pixels still need (1: upright)


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@functools.cache
def allowed_formats() -> tuple[str, ...]:
    """Pillow's names for the formats we open (those this Pillow build has), looked up on first use
    because registering Pillow's plugins is process-wide work that importing us should not do."""
    Image.init()
    return tuple(f for f in SUPPORTED_FORMATS if f in Image.OPEN)


# ----------------------------------------------------------------------------- opening


def _too_large(pixels: int, max_pixels: int, size: str = "") -> ImageError:
    shown = f"{size} = " if size else ""
    return ImageError(
        f"the image is too large ({shown}{pixels / 1e6:.0f} MP; "
        f"the limit set for this app is {max_pixels / 1e6:.0f} MP)"
    )


def _pillow_bomb(exc: Exception, max_pixels: int) -> ImageError:
    """Pillow's decompression-bomb guard fired (its limit is below ours when MAX_IMAGE_PIXELS is raised past it)."""
    found = _BOMB_PIXELS.search(str(exc))
    if found and int(found.group(1)) > max_pixels > 0:
        return _too_large(int(found.group(1)), max_pixels)
    return ImageError("the image is too large for the image library to open safely")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if width * height > max_pixels:
        raise _too_large(width * height, max_pixels, f"{width}×{height}")


def _read(source: bytes | str | Path) -> bytes:
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise ImageError("the file no longer exists") from None
        except IsADirectoryError:
            raise ImageError("it is a folder, not a file") from None
        except OSError as exc:
            raise ImageError(f"the file cannot be read ({os_error_text(exc)})") from None
    else:
        data = source
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    return data


def open_image(source: bytes | str | Path, max_pixels: int | None, *, formats: tuple[str, ...] = ()) -> Image.Image:
    """Read the header only, with the allowed decoders, and refuse a declared size over ``max_pixels``
    (``None``: the caller reads the header and never decodes pixels)."""
    data = _read(source)
    try:
        img = Image.open(io.BytesIO(data), formats=formats or allowed_formats())
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except _PILLOW_BOMB as exc:
        raise _pillow_bomb(exc, max_pixels or 0) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on hostile input
        log.debug("Image.open failed: %r", exc)
        raise ImageError("the file is damaged: its image header cannot be read") from None
    if max_pixels is not None:
        _check_size(img.width, img.height, max_pixels)
    return img


@contextmanager
def decoding(mode: str, max_pixels: int) -> Iterator[None]:
    """Whatever Pillow raises while decoding pixels becomes an :class:`ImageError` sentence."""
    try:
        yield
    except ImageError:
        raise
    except _PILLOW_BOMB as exc:
        raise _pillow_bomb(exc, max_pixels) from None
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


# ----------------------------------------------------------------------------- pixels


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent or unreadable: bad EXIF must not reject a good picture)."""
    try:
        value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and value in _ORIENTATION else 1
    except Exception:  # noqa: BLE001 - hostile EXIF blocks raise all sorts
        return 1


def upright(img: Image.Image) -> Image.Image:
    """``img`` as displayed (EXIF rotation applied); call after ``load()``: a PNG's EXIF follows its pixels."""
    orientation = _orientation(img)
    return img.transpose(_ORIENTATION[orientation]) if orientation != 1 else img


def has_alpha(img: Image.Image) -> bool:
    """Whether the picture may have transparent pixels: an alpha channel, or a palette or colour-key
    transparency (``info["transparency"]``, the tRNS form of palette and L/RGB PNGs)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode.startswith("I"):  # 16/32-bit greyscale: scale down instead of clipping to white
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    if not has_alpha(img):
        return img.convert("RGB")
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    # One blend pass into an RGB canvas: the same pixels, for every colour, alpha and background,
    # as alpha_composite onto an opaque RGBA canvas and a convert, in a quarter less time.
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


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
        img = img.convert("RGBA" if has_alpha(img) else ("RGB" if img.mode == "P" else "L"))
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


# ----------------------------------------------------------------------------- public


def decode(
    source: bytes | str | Path | Image.Image,
    *,
    background: tuple[int, int, int] = Settings.background,
    max_pixels: int = Settings.max_image_pixels,
) -> Decoded:
    """Open, validate and flatten one image for embedding; raise :class:`ImageError` with a reason.

    The size check uses the dimensions the file declares and runs before any pixel data is
    decoded, so a small file claiming billions of pixels costs nothing. ``width``/``height`` are
    the picture's full size as displayed (EXIF rotation applied), not the working copy's.
    The defaults are those of :class:`Settings` (for scripts); the app passes its own.
    """
    opened_here = not isinstance(source, Image.Image)
    if isinstance(source, Image.Image):
        img = source
        _check_size(img.width, img.height, max_pixels)
    else:
        img = open_image(source, max_pixels)
    fmt = (img.format or ("" if opened_here else "RAW")).upper()
    width, height = img.size
    with decoding(img.mode, max_pixels):
        if opened_here and fmt in ("JPEG", "MPO"):
            img.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))  # decode at 1/2..1/8 scale: less memory and time
        big = img.width * img.height > BIG_PIXELS
        with _big_decode if big else nullcontext():
            img.load()  # the first frame only, for animations
            text = embedded_text(img)  # after load(): a PNG's late text chunks are read with its pixels
            orientation = _orientation(img)  # after load(): reading a PNG's EXIF decodes it
            if img.width * img.height > max_pixels:  # a decoder that grew the picture while loading
                raise _too_large(img.width * img.height, max_pixels, f"{img.width}×{img.height}")
            img = _shrink(img, owned=opened_here)
        if orientation != 1:
            img = img.transpose(_ORIENTATION[orientation])
            if orientation >= 5:
                width, height = height, width
        flat = _flatten(img, background)
    return Decoded(image=flat, width=width, height=height, format=fmt, text=text)


def jpeg_header(data: bytes, max_pixels: int) -> Header | None:
    """A JPEG's :class:`Header`, for decoding it elsewhere; None for anything but a plain 8-bit colour or
    greyscale JPEG (CMYK, another format: Pillow decodes those). Raises :class:`ImageError` as
    :func:`decode` does for a file that is not an image or is too large."""
    img = open_image(data, max_pixels)
    if img.format != "JPEG" or img.mode not in ("RGB", "L") or data[-2:] != b"\xff\xd9":
        return None  # a file cut short (no end marker), or with pictures after it (MPO), goes to Pillow
    with decoding(img.mode, max_pixels):
        text, orientation = embedded_text(img), _orientation(img)
    width, height = (img.height, img.width) if orientation >= 5 else img.size
    return Header(width=width, height=height, format=img.format, text=text, orientation=orientation)


def file_text(source: str | Path) -> str:
    """The words embedded in an image file (XMP, IPTC, PNG text), for a record made before they
    were read; "" for a file that is gone or unreadable. Only the header is read, no pixel decoded."""
    try:
        with open_image(source, None) as img:
            return embedded_text(img)
    except ImageError:
        return ""

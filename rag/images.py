"""Decoding untrusted image files into RGB pictures a CLIP model can embed.

Creative assets are often transparent cut-outs: they are composited on a neutral background,
because a plain ``convert("RGB")`` turns transparent pixels black and skews search.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Pictures are shrunk to this before compositing; CLIP looks at 224 px, so nothing is lost.
WORKING_SIZE = 512

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


def _flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode.startswith("I"):  # 16/32-bit greyscale: scale down instead of clipping to white
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def decode(
    source: bytes | str | Path | Image.Image,
    *,
    background: tuple[int, int, int] = (128, 128, 128),
    max_pixels: int = 100_000_000,
) -> Decoded:
    """Open, validate and flatten one image; raise :class:`ImageError` with a reason a user can read."""
    if isinstance(source, Image.Image):
        img = source
        fmt = (img.format or "RAW").upper()
    else:
        if isinstance(source, (str, Path)):
            try:
                data = Path(source).read_bytes()
            except FileNotFoundError:
                raise ImageError("the file no longer exists") from None
            except OSError as exc:
                raise ImageError(f"the file cannot be read ({exc.strerror or exc})") from None
        else:
            data = source
        if not data:
            raise ImageError("the file is empty (0 bytes)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError("not a recognised image format") from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on hostile input
            raise ImageError(f"cannot be opened as an image ({type(exc).__name__})") from None
        fmt = (img.format or "").upper()
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"the image is too large ({width}×{height} = {width * height / 1e6:.0f} MP; "
            f"the limit is {max_pixels / 1e6:.0f} MP, set MAX_IMAGE_PIXELS to raise it)"
        )
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        if img.format == "JPEG":
            img.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
        img.load()
        img = ImageOps.exif_transpose(img) or img
        width, height = img.size
        if max(img.size) > WORKING_SIZE:
            img = img.copy() if img is source else img
            img.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        flat = _flatten(img, background)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data surfaces here
        raise ImageError(f"the image data is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    return Decoded(image=flat, width=width, height=height, format=fmt)

"""A corpus of hostile image files, generated on demand (nothing here is committed as data).

``build_corpus(root, outside)`` writes every case into ``root`` and returns what each file should
become: ingested with known dimensions/format, or refused with a reason. ``outside`` is a folder
next to ``root`` that symbolic links point into.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

BACKGROUND = (128, 128, 128)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, *, depth: int = 8, color_type: int = 0, row: bytes | None = None,
              rows: int | None = None, idat: bytes | None = None, extra: bytes = b"") -> bytes:
    """A PNG built by hand, so it can declare anything (a bomb declares far more than it holds).

    ``row`` is one unfiltered scanline (default: zeros), repeated ``rows`` times (default: all).
    ``idat`` replaces the pixel stream altogether.
    """
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    if idat is None:
        line = b"\x00" + (row if row is not None else bytes(width * channels * depth // 8))
        packer = zlib.compressobj(6)
        idat = b"".join(packer.compress(line) for _ in range(height if rows is None else rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def busy_row(nbytes: int) -> bytes:
    """A scanline of varied bytes: all-zero pixels can stay unmapped memory and hide a copy."""
    return (bytes(range(7, 250, 3)) * (nbytes // 81 + 1))[:nbytes]


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def rgb_png(color: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    img = Image.new("RGB", size, color)
    img.putpixel((0, 0), (255 - color[0], 255 - color[1], 255 - color[2]))
    return encode(img, "PNG")


def ico_wrapping_png(width: int, height: int) -> bytes:
    """An .ico whose directory claims 16×16 but whose PNG payload is width×height RGBA."""
    inner = png_bytes(width, height, color_type=6)
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(inner), 22) + inner


def palette_with_transparency(size: tuple[int, int] = (60, 40)) -> tuple[bytes, Image.Image]:
    """Left half opaque red, right half fully transparent (palette index 0 marked transparent)."""
    img = Image.new("P", size, 0)
    img.putpalette([0, 255, 0, 255, 0, 0] + [0] * (256 * 3 - 6))  # index 0 is green but transparent
    img.paste(1, (0, 0, size[0] // 2, size[1]))
    expected = Image.new("RGB", size, BACKGROUND)
    expected.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return encode(img, "PNG", transparency=0), expected


def rgba16_png(size: tuple[int, int] = (40, 30)) -> tuple[bytes, Image.Image]:
    """16 bits per channel RGBA: top half opaque blue, bottom half fully transparent."""
    w, h = size
    opaque = struct.pack(">HHHH", 0, 0, 0xFFFF, 0xFFFF) * w
    clear = struct.pack(">HHHH", 0xFFFF, 0, 0, 0) * w
    packer = zlib.compressobj(6)
    idat = b"".join(packer.compress(b"\x00" + (opaque if y < h // 2 else clear)) for y in range(h)) + packer.flush()
    expected = Image.new("RGB", size, BACKGROUND)
    expected.paste((0, 0, 255), (0, 0, w, h // 2))
    return png_bytes(w, h, depth=16, color_type=6, idat=idat), expected


def grey16_png(size: tuple[int, int], value: int) -> bytes:
    """A 16-bit greyscale PNG (Pillow mode I;16) filled with ``value``."""
    return encode(Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint16)), "PNG")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (50, 40), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg(size: tuple[int, int], orientation: int = 6) -> bytes:
    img = Image.new("RGB", size, (200, 20, 20))
    img.paste((20, 20, 200), (0, 0, size[0] // 4, size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif, quality=90)


@dataclass(frozen=True)
class Case:
    """What one file must become: ``reason`` set means refused, otherwise an asset of that shape."""

    name: str  # path relative to the corpus root, as written
    width: int = 0
    height: int = 0
    format: str = ""
    reason: str = ""  # a phrase the failure reason must contain
    duplicate_of: str = ""  # ingested content that this file repeats
    expected: Image.Image | None = None  # the flattened picture, where transparency matters

    @property
    def ok(self) -> bool:
        return not self.reason and not self.duplicate_of


def build_corpus(root: Path, outside: Path) -> tuple[list[Case], list[str]]:
    """Write the corpus. Returns the image cases and the names of files that are ignored (not images)."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, data: bytes, **expect: object) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases.append(Case(name=name, **expect))  # type: ignore[arg-type]

    # -- files that must be ingested correctly ------------------------------------------------
    cmyk = encode(Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG", quality=95)
    put("cmyk.jpg", cmyk, width=120, height=80, format="JPEG")
    put("grey16.png", grey16_png((700, 300), 0xC000), width=700, height=300, format="PNG")
    data, expected = rgba16_png()
    put("rgba16.png", data, width=40, height=30, format="PNG", expected=expected)
    data, expected = palette_with_transparency()
    put("palette transparent.png", data, width=60, height=40, format="PNG", expected=expected)
    key = Image.new("RGB", (30, 20), (10, 20, 30))
    key.paste((250, 250, 0), (0, 0, 10, 20))
    expected = Image.new("RGB", (30, 20), BACKGROUND)
    expected.paste((250, 250, 0), (0, 0, 10, 20))
    put("colour-key.png", encode(key, "PNG", transparency=(10, 20, 30)), width=30, height=20, format="PNG", expected=expected)
    put("animated.gif", animated_gif(), width=50, height=40, format="GIF", expected=Image.new("RGB", (50, 40), (255, 0, 0)))
    put("rotated.jpg", exif_rotated_jpeg((1600, 800)), width=800, height=1600, format="JPEG")
    put("big but allowed.png", png_bytes(10_000, 9_000), width=10_000, height=9_000, format="PNG")
    put("name with spaces.png", rgb_png((1, 2, 3)), width=48, height=32, format="PNG")
    put("quote's \"double\".png", rgb_png((4, 5, 6)), width=48, height=32, format="PNG")
    put("ünïcødé 画像 🍌.png", rgb_png((7, 8, 9)), width=48, height=32, format="PNG")
    put("..evil.png", rgb_png((10, 11, 12)), width=48, height=32, format="PNG")
    put("..hidden dir/inner.png", rgb_png((13, 14, 15)), width=48, height=32, format="PNG")
    put("sub/with\"quote/deep.jpg", encode(Image.new("RGB", (33, 22), (90, 90, 20)), "JPEG"), width=33, height=22, format="JPEG")
    put("mislabelled.png", encode(Image.new("RGB", (25, 15), (5, 99, 5)), "JPEG"), width=25, height=15, format="JPEG")
    put("copy of cmyk.jpg", cmyk, duplicate_of="cmyk.jpg")  # walked after cmyk.jpg, so it is the duplicate

    # -- files that must be refused, each with a reason -------------------------------------------
    jpeg = encode(Image.new("RGB", (300, 200), (200, 30, 30)), "JPEG")
    png = encode(Image.effect_noise((300, 200), 60).convert("RGB"), "PNG")
    put("empty.jpg", b"", reason="empty")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], reason="corrupt or truncated")
    put("truncated.png", png[: len(png) // 2], reason="corrupt or truncated")
    put("header only.png", png[:20], reason="header cannot be read")
    put("noise.jpg", np.random.default_rng(7).bytes(4096), reason="not a recognised image format")
    put("text.png", b"this is a shopping list, not a picture\n" * 20, reason="not a recognised image format")
    put("bomb.png", png_bytes(30_000, 30_000, rows=8), reason="too large")
    put("bomb-garbage.png", png_bytes(50_000, 50_000, idat=b"\xde\xad" * 64), reason="too large")
    put("huge.png", png_bytes(12_000, 9_000), reason="too large")
    put("icon in disguise.png", ico_wrapping_png(4000, 4000), reason="not a recognised image format")

    fifo = root / "pipe.png"
    os.mkfifo(fifo)
    cases.append(Case(name="pipe.png", reason="not a regular file"))

    (outside / "secret.png").write_bytes(rgb_png((66, 66, 66)))
    (outside / "elsewhere").mkdir(exist_ok=True)
    (outside / "elsewhere" / "far.png").write_bytes(rgb_png((77, 77, 77)))
    (root / "link outside.png").symlink_to(outside / "secret.png")
    cases.append(Case(name="link outside.png", reason="symbolic link to a file outside"))
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    cases.append(Case(name="dangling.png", reason="target does not exist"))
    (root / "loop-a.png").symlink_to(root / "loop-b.png")
    (root / "loop-b.png").symlink_to(root / "loop-a.png")
    cases.append(Case(name="loop-a.png", reason="cannot be followed"))
    cases.append(Case(name="loop-b.png", reason="cannot be followed"))
    (root / "linked folder").symlink_to(outside / "elsewhere", target_is_directory=True)
    cases.append(Case(name="linked folder", reason="symbolic link to a folder outside"))
    (root / "zz link inside.png").symlink_to(root / "name with spaces.png")
    cases.append(Case(name="zz link inside.png", duplicate_of="name with spaces.png"))

    bad = os.path.join(os.fsencode(root), b"latin1 caf\xe9.png")
    with open(bad, "wb") as fh:
        fh.write(rgb_png((88, 88, 88)))
    cases.append(Case(name="latin1 caf\\xe9.png", reason="not valid UTF-8"))

    ignored = ["notes.txt", "sub/.DS_Store"]
    for name in ignored:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("not an image")
    return cases, ignored

"""Renders the OCR test set's labels and signs (``python tests/data/ocr/render.py``) and writes ``manifest.json``.

The images are committed beside this script; it is kept so the set can be remade or grown. Each is product or
sign text in a font of Debian's ``fonts-dejavu``/``fonts-liberation``, at a known size in pixels (the font's
em), angle, colour and background, so recall can be reported per group: horizontal text of 24 px and more,
small text under 24 px, rotated text. The real images (Debian's openclipart, transcribed by hand) are listed
in ``real.json`` and joined into the manifest.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
FONTS = Path("/usr/share/fonts/truetype")
FACES = ["dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSerif.ttf",
         "liberation/LiberationSans-Regular.ttf", "liberation/LiberationSerif-Bold.ttf",
         "liberation/LiberationSans-Italic.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf",
         "liberation/LiberationMono-Regular.ttf", "dejavu/DejaVuSerif-Italic.ttf",
         "liberation/LiberationSansNarrow-Bold.ttf"]
LABELS = [
    ["Acme Oolong", "Loose Leaf Tea"], ["SKU 4471"], ["New Recipe"], ["Spring Sale", "Everything 20% off"],
    ["Wild Honey", "Raw and Unfiltered"], ["Dark Roast Coffee"], ["Sea Salt Crisps"], ["Lemon Soda", "Zero Sugar"],
    ["Extra Virgin Olive Oil"], ["Organic Green Tea"], ["Fresh Mint"], ["Limited Edition"], ["Open Daily 9 to 5"],
    ["Oat Milk Barista"], ["Cherry Jam", "Batch 0312"], ["Free Delivery"], ["Peanut Butter", "Crunchy"],
    ["Sparkling Water"], ["Handmade Soap", "Lavender"], ["Best Before 2027"], ["Morning Blend"], ["Exit"],
    ["Tomato Ketchup"], ["Vanilla Ice Cream"], ["Fire Door Keep Shut"], ["Hazelnut Spread"], ["Bakery"],
    ["Grand Opening"], ["Dog Biscuits"], ["Chili Sauce Extra Hot"], ["Apple Cider"], ["Pasta Fresca"],
    ["Mango Chutney"], ["No Parking"], ["Citrus Shampoo"], ["Granola Bar"], ["Cold Brew"], ["Rice Crackers"],
    ["Pure Maple Syrup"], ["Coconut Water"], ["Almond Butter"], ["Ginger Beer"], ["Breakfast Tea"],
    ["Smoked Paprika"], ["Honey Mustard"], ["Fig Preserve"],
]
# (font size in px, angle in degrees); each row is one image, its label and face taken in turn.
PLAN = ([(s, 0) for s in (24, 26, 28, 30, 32, 36, 40, 44, 48, 56, 64, 72) for _ in (0, 1)]
        + [(s, 0) for s in (12, 14, 16, 18, 20, 22)]
        + [(32, a) for a in (4, -6, 10, -15, 20, 30, -45, 90)])
PALETTES = [((250, 248, 240), (20, 20, 20)), ((30, 40, 90), (255, 255, 255)), ((200, 30, 40), (255, 240, 200)),
            ((240, 200, 60), (60, 30, 10)), ((20, 110, 60), (250, 250, 250)), ((230, 230, 235), (120, 20, 120)),
            ((15, 15, 15), (250, 210, 40)), ((180, 210, 240), (10, 50, 110))]
BACKGROUNDS = ("plain", "gradient", "noise", "label", "shapes")


def _background(kind: str, size: tuple[int, int], colour: tuple[int, int, int], rng: random.Random) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    if kind == "gradient":
        for y in range(h):
            t = y / h
            draw.line([(0, y), (w, y)], fill=tuple(int(c * (1 - 0.35 * t) + 40 * t) for c in colour))
    elif kind == "noise":
        noise = Image.effect_noise(size, 40).convert("RGB")
        img = Image.blend(img, noise, 0.18)
    elif kind == "label":  # a tin or box label: a darker surround, a rounded panel with a border
        img = Image.new("RGB", size, tuple(max(0, c - 90) for c in colour))
        draw = ImageDraw.Draw(img)
        draw.rounded_rectangle([w * 0.05, h * 0.1, w * 0.95, h * 0.9], radius=24, fill=colour,
                               outline=tuple(255 - c for c in colour), width=4)
    elif kind == "shapes":  # soft blobs behind the text, as on a packshot
        for _ in range(6):
            x, y, r = rng.randint(0, w), rng.randint(0, h), rng.randint(30, 120)
            tint = tuple(min(255, max(0, c + rng.randint(-50, 50))) for c in colour)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tint)
        img = img.filter(ImageFilter.GaussianBlur(6))
    return img


def _text_layer(lines: list[str], font: ImageFont.FreeTypeFont, ink: tuple[int, int, int]) -> Image.Image:
    gap = font.size // 3
    boxes = [font.getbbox(line) for line in lines]
    width = max(b[2] - b[0] for b in boxes) + 8
    height = sum(b[3] - b[1] for b in boxes) + gap * (len(lines) - 1) + 8
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    y = 4
    for line, box in zip(lines, boxes):
        draw.text(((width - (box[2] - box[0])) // 2 - box[0], y - box[1]), line, font=font, fill=(*ink, 255))
        y += box[3] - box[1] + gap
    return layer


def render_one(n: int, size: int, angle: int, rng: random.Random) -> dict[str, object]:
    lines = LABELS[n % len(LABELS)]
    face = FACES[n % len(FACES)]
    paper, ink = PALETTES[n % len(PALETTES)]
    kind = BACKGROUNDS[n % len(BACKGROUNDS)]
    layer = _text_layer(lines, ImageFont.truetype(str(FONTS / face), size), ink)
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    canvas = (max(320, layer.width + 80 + size), max(200, layer.height + 80 + size))
    img = _background(kind, canvas, paper, rng)
    img.paste(layer, ((canvas[0] - layer.width) // 2, (canvas[1] - layer.height) // 2), layer)
    group = "rotated" if angle else ("horizontal" if size >= 24 else "small")
    name = f"r{n:02d}-{group}-{size}px{f'-{angle}deg' if angle else ''}.{'jpg' if kind == 'noise' else 'png'}"
    if kind == "noise":
        img.save(HERE / name, quality=85)
    else:
        img.quantize(64).save(HERE / name, optimize=True)
    return {"file": name, "text": " ".join(lines), "lines": lines, "group": group, "px": size, "angle": angle,
            "font": Path(face).stem, "background": kind, "kind": "rendered"}


def main() -> None:
    rng = random.Random(28)
    entries = [render_one(n, size, angle, rng) for n, (size, angle) in enumerate(PLAN)]
    real = json.loads((HERE / "real.json").read_text())
    (HERE / "manifest.json").write_text(json.dumps(entries + real, indent=1) + "\n")
    print(f"{len(entries)} rendered, {len(real)} real")


if __name__ == "__main__":
    main()

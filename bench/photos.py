"""Camera-size JPEG photos for bench/ingest.py --photos and bench/gpu.sh: what a brand's product library holds.

    python bench/photos.py 300            # make (or reuse) 300 photos; prints the folder
    python bench/photos.py 3072 192       # 3,072 distinct files from 192 pictures (a GPU box: bench/gpu.sh)

Each photo is 4000x3000 (12 MP), saved by Pillow at quality 90 with 4:2:0 chroma subsampling (as
cameras and most editors save), 2.5-4.5 MB: a smooth colour gradient with soft blotches and
per-pixel grain (sensor noise, which is what makes a camera JPEG large and its entropy decoding
slow), with one to three openclipart drawings scaled to 900-2,600 px composited on it. Every photo
differs (its own colours, grain offset, drawings and places), so an ingest's duplicate check skips
none. They are made once into a cache folder (``$TMPDIR/banana-bench-photos``) and reused; making
one takes about a second of one core. Where a run needs more files than pictures can be made in its
time (a GPU ingests thousands a second), ``base`` pictures are made and each further file is one of
them with a JPEG comment of its own after the start marker: another file (another hash, so ingest
embeds it), the same pixels and the same decoding work. The drawings come from openclipart when it
is installed (``apt-get install openclipart-png``), else from the app's own sample library.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OPENCLIPART, ROOT  # noqa: E402

WIDTH, HEIGHT, QUALITY = 4000, 3000, 90
GRAIN_MARGIN = 256  # the grain is one shared field; each photo takes it at its own offset
_grain_cache: dict[str, object] = {}


def cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "banana-bench-photos"


def _grain(seed: int):
    """One field of sensor grain (Pillow's Gaussian noise, grey, sigma 7), made once per process."""
    from PIL import Image

    if "grain" not in _grain_cache:
        random.seed(seed)
        _grain_cache["grain"] = Image.effect_noise((WIDTH + GRAIN_MARGIN, HEIGHT + GRAIN_MARGIN), 7)
    return _grain_cache["grain"]


def make_photo(i: int, path: Path, drawings: list[Path], seed: int = 0) -> Path:
    """Photo number ``i``: gradient, blotches, grain, drawings; written atomically to ``path``."""
    from PIL import Image, ImageChops, ImageFilter

    rng = random.Random(f"{seed}:{i}")
    corners = Image.new("RGB", (4, 3))
    corners.putdata([tuple(rng.randrange(30, 226) for _ in range(3)) for _ in range(12)])
    low = corners.resize((WIDTH // 8, HEIGHT // 8), Image.Resampling.BICUBIC)
    blotches = Image.effect_noise((WIDTH // 80, HEIGHT // 80), 16).resize(low.size, Image.Resampling.BICUBIC)
    blotches = blotches.filter(ImageFilter.GaussianBlur(8))
    low = ImageChops.add(low, Image.merge("RGB", [blotches] * 3), scale=1.0, offset=-128)
    photo = low.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    dx, dy = rng.randrange(GRAIN_MARGIN), rng.randrange(GRAIN_MARGIN)
    grain = _grain(seed).crop((dx, dy, dx + WIDTH, dy + HEIGHT))
    photo = ImageChops.add(photo, Image.merge("RGB", [grain] * 3), scale=1.0, offset=-128)
    for _ in range(rng.randint(1, 3)):
        with Image.open(rng.choice(drawings)) as drawing:
            art = drawing.convert("RGBA")
        scale = rng.randint(900, 2600) / max(art.size)
        art = art.resize((max(1, int(art.width * scale)), max(1, int(art.height * scale))), Image.Resampling.BILINEAR)
        at = (rng.randint(-art.width // 4, WIDTH - art.width * 3 // 4), rng.randint(-art.height // 4, HEIGHT - art.height * 3 // 4))
        photo.paste(art, at, art)
    part = path.with_suffix(".part")
    photo.save(part, "JPEG", quality=QUALITY)
    os.replace(part, path)
    return path


def _drawings(max_pixels: int = 4_000_000) -> list[Path]:
    """The drawings of at most ``max_pixels`` (a few of openclipart's are hundreds of megapixels), by their headers."""
    import warnings

    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    kept = []
    for path in sorted((OPENCLIPART if OPENCLIPART.is_dir() else ROOT / "assets" / "sample").rglob("*.png")):
        try:
            with Image.open(path) as drawing:
                if drawing.width * drawing.height <= max_pixels:
                    kept.append(path)
        except Exception:  # noqa: BLE001 - unreadable or a bomb: not a backdrop for a photo
            continue
    return kept


def variant(picture: Path, path: Path, i: int) -> Path:
    """``picture`` with a JPEG comment segment (COM) naming ``i`` right after its start marker, at ``path``."""
    data = picture.read_bytes()
    note = f"banana-bench photo {i}".encode()
    path.write_bytes(data[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + data[2:])
    return path


def photos(n: int, folder: Path | None = None, seed: int = 0, workers: int = 0, base: int = 0) -> list[Path]:
    """``n`` distinct photo files in ``folder`` (default :func:`cache_dir`): ``base`` pictures (default ``n``)
    made in worker processes where missing, the others variants of them (:func:`variant`)."""
    folder = Path(folder or cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    base = min(n, base or n)
    wanted = [folder / f"photo_{seed}_{i:05d}.jpg" for i in range(base)]
    missing = [(i, p) for i, p in enumerate(wanted) if not p.is_file()]
    if missing:
        drawings = _drawings()
        print(f"making {len(missing)} photos of {WIDTH}x{HEIGHT} in {folder} ...", flush=True)
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(make_photo, [i for i, _ in missing], [p for _, p in missing], [drawings] * len(missing),
                          [seed] * len(missing), chunksize=4))
    extra = [folder / f"photo_{seed}_{i:05d}_of_{base}.jpg" for i in range(base, n)]
    return wanted + [p if p.is_file() else variant(wanted[i % base], p, i) for i, p in enumerate(extra, base)]


if __name__ == "__main__":
    made = photos(int(sys.argv[1]) if len(sys.argv) > 1 else 300, base=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    size = sum(p.stat().st_size for p in made) / len(made) / 1e6
    print(f"{len(made)} photos in {made[0].parent}, {size:.1f} MB each on average")

"""Where an ingest's time goes: each stage of the app's path timed on its own, per image.

    python bench/stages.py              # 1,000 distinct openclipart PNGs (about 2 minutes)
    python bench/stages.py --n 200      # a quick look

Every step runs in this thread, one image at a time, through the app's own functions and in the
order ``rag.library.ingest`` runs them: read and hash (twice: the hash stage, then the decoder checks the
bytes it reads are the ones hashed), open and decode the pixels, shrink to the working size,
composite transparency, open_clip's resize and crop into a uint8 picture, then per batch the
float conversion and normalisation, the model's forward pass, the upsert into a fresh Milvus
Lite collection, and the final flush. The decode steps are checked to give exactly what
``rag.media.images.decode`` gives, so the profile cannot drift from the code it profiles.

Shares are of the sum of CPU time per image. The decode steps use one core; the model and the
store use torch's / Lite's threads, so their CPU time is wall time x threads (an upper bound:
threads also wait). A 2-core ingest overlaps the decode steps with the model; the pipeline's
throughput is bounded by (sum of CPU ms per image) / cores.

The last line is machine-readable: ``RESULT decode_cpu_ms=... model_cpu_ms=... ...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import openclipart_files, preamble, table  # noqa: E402

DECODE_STEPS = ("read + hash x2", "open + decode pixels", "shrink to working size", "composite transparency",
                "resize + crop (uint8)")


def decode_steps(data_path: Path, settings, visual, t: dict[str, float]):
    """``decode`` + ``prepare`` of one file split into its steps (rag.media.images internals, same order)."""
    from rag.core import sha256_bytes, sha256_file
    from rag.media import images as im

    t0 = time.perf_counter()
    digest = sha256_file(data_path)
    data = data_path.read_bytes()
    assert sha256_bytes(data) == digest
    t1 = time.perf_counter()
    img = im.open_image(data, settings.max_image_pixels)
    if (img.format or "").upper() in ("JPEG", "MPO"):
        img.draft("RGB", (im.WORKING_SIZE, im.WORKING_SIZE))
    img.load()
    orientation = im._orientation(img)
    t2 = time.perf_counter()
    img = im._shrink(img, owned=True)
    if orientation != 1:
        img = img.transpose(im._ORIENTATION[orientation])
    t3 = time.perf_counter()
    flat = im._flatten(img, settings.background)
    t4 = time.perf_counter()
    prepared = visual.prepare(flat)
    t5 = time.perf_counter()
    for name, a, b in zip(DECODE_STEPS, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
        t[name] += b - a
    return data, flat, prepared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="distinct images (default 1000)")
    args = ap.parse_args()
    preamble()
    import torch

    from rag.clip.runtime import inference, unit_rows
    from rag.core import Asset, ImageError, Settings
    from rag.media import decode
    from rag.store import MilvusStore
    from rag.studio import Studio

    settings = Settings.from_env()
    emb = Studio(settings).embedder
    visual, threads = emb.visual, torch.get_num_threads()
    files = openclipart_files(args.n, unique=True)
    t: dict[str, float] = defaultdict(float)
    prepared, refused = [], 0
    for p in files:
        try:
            data, flat, ready = decode_steps(p, settings, visual, t)
        except ImageError:
            refused += 1
            continue
        if len(prepared) % 50 == 0:  # the split steps give exactly what the app's decoder gives
            assert flat.tobytes() == decode(data, background=settings.background).image.tobytes()
        prepared.append(ready)
    n, batch = len(prepared), emb.batch_size
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        store = MilvusStore(settings.with_(milvus_uri=str(Path(tmp) / "m.db"), collection="stages"), emb.dim, emb.name)
        emb.encode_prepared(prepared[:batch])  # warm-up
        for i in range(0, n, batch):
            chunk = prepared[i : i + batch]
            t0 = time.perf_counter()
            pixels = visual.pixels(chunk)
            t1 = time.perf_counter()
            with inference(visual.numerics):
                vectors = unit_rows(visual.model.encode_image(pixels))
            t2 = time.perf_counter()
            assets = [Asset(id=f"{i + j:064x}", path=f"/x/{i + j}.png", filename=f"{i + j}.png", folder="x", width=1,
                            height=1, format="PNG", bytes=1, created=0.0, source="folder", meta={}) for j in range(len(chunk))]
            store.upsert(assets, vectors)
            t3 = time.perf_counter()
            t["normalise (per batch)"] += (t1 - t0) * threads
            t["model forward"] += (t2 - t1) * threads
            t["upsert"] += t3 - t2
            del pixels
        t0 = time.perf_counter()
        store.flush()
        t["flush"] += time.perf_counter() - t0
        store.close()
    total = sum(t.values())
    rows = [{"stage": k, "CPU ms per image": v / n * 1000, "share": f"{v / total:.1%}"} for k, v in t.items()]
    print(f"\n{n} images ({refused} refused), model in {emb.precision} with {threads} torch threads, batch {batch}\n")
    print(table(rows))
    decode_ms = sum(t[k] for k in DECODE_STEPS) / n * 1000
    model_ms = t["model forward"] / n * 1000
    print(f"\ndecode + prepare {decode_ms:.2f} CPU ms/img, model {model_ms:.2f}; on {threads} cores the pipeline is "
          f"bounded by ~{threads * 1000 / (total / n * 1000):.0f} img/s and the model alone by ~{threads * 1000 / model_ms:.0f}")
    print(f"RESULT decode_cpu_ms={decode_ms:.2f} model_cpu_ms={model_ms:.2f} total_cpu_ms={total / n * 1000:.2f} "
          f"decode_share={decode_ms / (total / n * 1000):.3f} precision={emb.precision} images={n}")


if __name__ == "__main__":
    main()

"""Ingest throughput: the real Studio path vs the model's ceiling vs a naive notebook loop.

    python bench/ingest.py              # 1,000 distinct openclipart PNGs (5-8 minutes on 2 busy cores)
    python bench/ingest.py --all        # every one of the 8,121 files (duplicates included)
    python bench/ingest.py --n 200 --naive-n 64 --rounds 2   # a quick look

Three pipelines, measured in one process with one loaded model:

* ceiling: the bare model's batched forward pass (``model.encode_image``) over images that were
  decoded and preprocessed beforehand (not timed), with the same batch size as the app;
* ours: ``Studio(settings).ingest_folder`` into a fresh Milvus Lite in a temporary folder: hash,
  duplicate check, read, decode, composite, preprocess, embed, upsert, flush;
* naive: the usual notebook loop, one image at a time (PIL open, preprocess, ``encode_image``,
  ``.tolist()``), then one big insert into a fresh Lite collection.

The machine is shared and noisy, so the work is split into rounds (default 4) and each round runs
a slice of every pipeline back to back, in a rotating order. Ratios are computed per round, from
slices that ran within a minute or two of each other, and the median round ratio is reported.

The last line is machine-readable: ``RESULT ingest_img_s=... vs_ceiling=... vs_naive=...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    OPENCLIPART,
    median,
    openclipart_files,
    preamble,
    rss_mb,
    table,
)

TARGET_CEILING = 0.85
TARGET_NAIVE = 1.8


class RssSampler:
    """Samples this process's RSS every 50 ms and keeps the peak per labelled phase.

    Milvus Lite runs inside the Python process, so its memory is counted too.
    """

    def __init__(self) -> None:
        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.mark()

    def mark(self) -> None:
        rss = rss_mb()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, phase: str) -> None:
        self.mark()
        self.phase = phase
        self.mark()


def accepted(files: list[Path], max_pixels: int) -> list[Path]:
    """The files the app accepts (it refuses pictures over MAX_IMAGE_PIXELS); reads headers only."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    keep = []
    for p in files:
        with Image.open(p) as im:
            if im.size[0] * im.size[1] <= max_pixels:
                keep.append(p)
    return keep


def spread(items: list, n: int) -> list:
    if not n or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def make_settings(tmp: Path, args: argparse.Namespace):
    from rag.config import Settings

    data = tmp / "data"
    s = Settings.from_env().with_(
        data_dir=data,
        milvus_uri=str(data / "milvus.db"),
        library_dir=data / "library",
        outputs_dir=data / "outputs",
        collection="bench_ingest",
    )
    if args.batch_size:
        s = s.with_(batch_size=args.batch_size)
    if args.workers:
        s = s.with_(workers=args.workers)
    return s


# -- the three pipelines --------------------------------------------------------------------------
def run_ceiling(studio, files: list[Path], threads: int) -> tuple[int, float]:
    """Bare batched forward pass over pre-decoded, pre-processed tensors (decoding is not timed)."""
    import torch

    from rag.images import decode

    s, visual = studio.settings, studio.embedder.visual
    pixels = [visual.preprocess(decode(p.read_bytes(), background=s.background).image) for p in files]
    batches = [torch.stack(pixels[i : i + s.batch_size]) for i in range(0, len(pixels), s.batch_size)]
    del pixels
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for b in batches:
                visual.model.encode_image(b)
            seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    return sum(len(b) for b in batches), seconds


def run_ours(studio, folder: Path) -> tuple[int, float, object]:
    t0 = time.perf_counter()
    report = studio.ingest_folder(folder)
    return report.seen, time.perf_counter() - t0, report


def run_naive(studio, files: list[Path], client, collection: str) -> tuple[int, float]:
    """The notebook loop: one image at a time, then one big insert into a fresh collection."""
    import torch
    from PIL import Image

    model, preprocess = studio.embedder.visual.model, studio.embedder.visual.preprocess
    client.create_collection(collection, dimension=512)
    t0 = time.perf_counter()
    rows = []
    for i, p in enumerate(files):
        image = Image.open(p).convert("RGB")
        x = preprocess(image).unsqueeze(0)
        with torch.no_grad():
            f = model.encode_image(x)
            f /= f.norm(dim=-1, keepdim=True)
        rows.append({"id": i, "vector": f[0].tolist(), "path": str(p)})
    client.insert(collection, rows)
    seconds = time.perf_counter() - t0
    return len(files), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="distinct images to ingest (default 1000)")
    ap.add_argument("--all", action="store_true", help="ingest every openclipart PNG (8,121 files)")
    ap.add_argument("--ceiling-n", type=int, default=1000, help="images for the ceiling, over all rounds")
    ap.add_argument("--naive-n", type=int, default=400, help="images for the naive loop, over all rounds")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    ap.add_argument("--batch-size", type=int, default=0, help="override EMBED_BATCH_SIZE")
    ap.add_argument("--workers", type=int, default=0, help="override EMBED_WORKERS")
    ap.add_argument("--ceiling-threads", type=int, default=0, help="torch threads for the ceiling (default: cores)")
    args = ap.parse_args()

    preamble()
    import torch

    from rag.studio import Studio

    t_setup = time.perf_counter()
    ours_files = openclipart_files(None) if args.all else openclipart_files(args.n, unique=True)
    distinct = accepted(openclipart_files(None, unique=True) if args.all else ours_files, 100_000_000)
    ceil_files, naive_files = spread(distinct, args.ceiling_n), spread(distinct, args.naive_n)
    R = max(1, args.rounds)
    ceiling_threads = args.ceiling_threads or os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name, RssSampler() as rss:
        tmp = Path(tmp_name)
        for r in range(R):  # each round ingests its own folder (copies made here, not timed)
            for p in ours_files[r::R]:
                dest = tmp / "src" / f"round{r}" / p.relative_to(OPENCLIPART)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
        settings = make_settings(tmp, args)
        studio = Studio(settings)
        store = studio.store  # a fresh, empty collection
        rss.set("model")
        studio.embedder.embed_images(ceil_files[: settings.batch_size])  # load + warm a full batch
        with torch.no_grad():  # warm the one-image shape of the naive loop
            studio.embedder.visual.model.encode_image(torch.zeros(1, 3, 224, 224))
        (tmp / "naive").mkdir()
        from pymilvus import MilvusClient

        # One client for every round (closing a Lite client stops its server; reopening the same
        # path in one process then fails to reconnect); each round inserts into a fresh collection.
        naive_client = MilvusClient(str(tmp / "naive" / "milvus.db"))
        print(f"images: ours {len(ours_files)} {'files' if args.all else 'distinct files'}, ceiling {len(ceil_files)}, "
              f"naive {len(naive_files)}, in {R} rounds; batch {settings.batch_size}, workers {settings.workers}, "
              f"torch threads {torch.get_num_threads()} (ceiling {ceiling_threads}); setup {time.perf_counter() - t_setup:.0f} s\n",
              flush=True)

        per_round: list[dict[str, tuple[int, float]]] = []
        reports = []
        order = ["ceiling", "ours", "naive"]
        for r in range(R):
            got: dict[str, tuple[int, float]] = {}
            for name in order[r % 3:] + order[: r % 3]:  # rotate so no pipeline always runs first
                rss.set(name)
                if name == "ceiling":
                    got[name] = run_ceiling(studio, ceil_files[r::R], ceiling_threads)
                elif name == "ours":
                    n, sec, report = run_ours(studio, tmp / "src" / f"round{r}")
                    reports.append(report)
                    got[name] = (n, sec)
                else:
                    got[name] = run_naive(studio, naive_files[r::R], naive_client, f"naive_{r}")
                rss.set("idle")
            per_round.append(got)
            rates = "  ".join(f"{k} {n / s:6.2f} img/s" for k, (n, s) in got.items())
            print(f"  round {r + 1}/{R}: {rates}  (load avg {os.getloadavg()[0]:.2f})", flush=True)
        stored = store.count()
        store.close()
        naive_client.close()

    rows, agg = [], {}
    for name in order:
        n = sum(rd[name][0] for rd in per_round)
        sec = sum(rd[name][1] for rd in per_round)
        agg[name] = n / sec
        rows.append({
            "pipeline": name,
            "images": n,
            "seconds": sec,
            "img/s (all rounds)": n / sec,
            "img/s (median round)": median(rd[name][0] / rd[name][1] for rd in per_round),
            "batch": settings.batch_size if name != "naive" else 1,
            "peak RSS MB": rss.peaks.get(name, float("nan")),
        })
    ratio_c = [(rd["ours"][0] / rd["ours"][1]) / (rd["ceiling"][0] / rd["ceiling"][1]) for rd in per_round]
    ratio_n = [(rd["ours"][0] / rd["ours"][1]) / (rd["naive"][0] / rd["naive"][1]) for rd in per_round]
    print()
    print(table(rows))
    added = sum(len(rep.added) for rep in reports)
    dups = sum(len(rep.duplicates) for rep in reports)
    failed = sum(len(rep.failed) for rep in reports)
    ours_seconds = sum(rd["ours"][1] for rd in per_round)
    print(f"\nours: {added} embedded and stored, {dups} duplicates skipped, {failed} refused; {stored} rows in Lite; "
          f"{added / ours_seconds:.2f} embedded img/s (img/s above counts every file handled)")
    print(f"RSS after loading the model and opening Lite: {rss.peaks.get('model', 0):.0f} MB "
          "(peaks include Milvus Lite, which runs in-process; the ceiling's peak includes its pre-decoded tensors)")
    print("per-round ours/ceiling: " + ", ".join(f"{x:.2f}" for x in ratio_c))
    print("per-round ours/naive:   " + ", ".join(f"{x:.2f}" for x in ratio_n))
    vs_c, vs_n = median(ratio_c), median(ratio_n)
    print(f"\nmedian ours/ceiling = {vs_c:.2f} (target >= {TARGET_CEILING}; all rounds pooled: {agg['ours'] / agg['ceiling']:.2f})")
    print(f"median ours/naive   = {vs_n:.2f}x (target >= {TARGET_NAIVE}x; all rounds pooled: {agg['ours'] / agg['naive']:.2f}x)")
    print(f"RESULT ingest_img_s={agg['ours']:.2f} ceiling_img_s={agg['ceiling']:.2f} naive_img_s={agg['naive']:.2f} "
          f"vs_ceiling={vs_c:.2f} vs_naive={vs_n:.2f} embedded_img_s={added / ours_seconds:.2f} "
          f"peak_rss_mb={rss.peaks.get('ours', 0):.0f}")


if __name__ == "__main__":
    main()

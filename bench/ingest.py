"""Ingest throughput: the real Studio path vs the model's ceilings vs a naive notebook loop.

    python bench/ingest.py              # 1,000 distinct openclipart PNGs (4-8 minutes on 2 busy cores)
    python bench/ingest.py --all        # every one of the 8,121 files (duplicates included)
    python bench/ingest.py --n 200 --naive-n 64 --rounds 2   # a quick look
    python bench/ingest.py --model-only --n 2000 --workers 16   # a GPU box: no Milvus, no pymilvus needed
    python bench/ingest.py --photos 300  # 300 distinct 12 MP camera-size JPEGs (bench/photos.py) instead of clip art

Pipelines, each over its own slice of the images, in rounds:

* ceiling: the app's model (in the precision CLIP_PRECISION chose: bf16 weights on CPUs with
  AMX, fp16 on CUDA) over pictures decoded, prepared and moved to the device beforehand (not
  timed), with the app's batch size;
* fp32 ceiling: the same in fp32 (today's ceiling before this precision work), in a child process
  (bench/ingest_ref.py) so its model does not count in this process's memory;
* ours: ``Studio(settings).ingest_folder`` into a fresh Milvus Lite in a temporary folder: hash,
  duplicate check, read, decode, composite, preprocess, embed, upsert, flush. With
  ``--model-only`` it is ``ClipEmbedder.embed_images`` instead (decode threads and the model, no
  hashing, no store): the figure for a machine without Milvus;
* naive: the usual notebook loop in fp32, one image at a time (PIL open, preprocess,
  ``encode_image``, ``.tolist()``), then one big insert into a fresh Lite collection (child process).

The machine is shared and noisy, so the work is split into rounds (default 4) and each round runs
a slice of every pipeline back to back, in a rotating order; ratios are per round, from slices that
ran within a minute or two of each other, and the median round ratio is reported. On CUDA it also
prints the GPU, the batch and the GPU's utilisation during each pipeline (``torch.cuda.utilization``
or nvidia-smi). Images: openclipart when installed, else ``--images DIR``, else assets/sample
(repeated up to --n for the model-only pipelines). ``--photos N``: N distinct 4000x3000 JPEGs at
quality 90 made by bench/photos.py (cached in ``$TMPDIR/banana-bench-photos``), where decoding, not
the model, decides the speed; every pipeline runs over them (the naive loop over a quarter), and the
RESULT line adds ``photos=1`` and ``decode_core_ms=``, the CPU time of decoding and preparing one
photo (``Image.draft`` at 1/8 scale, rag/media/images.py; target ``vs_ceiling`` >= 0.7).

The last line is machine-readable: ``RESULT ingest_img_s=... vs_ceiling=... vs_fp32_ceiling=... precision=...``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_ref  # noqa: E402
from common import OPENCLIPART, ROOT, image_files, median, preamble, rss_mb, table  # noqa: E402
from photos import photos  # noqa: E402

TARGETS = {"vs_fp32_ceiling": 3.0, "vs_ceiling": 0.8, "vs_naive": 6.0}
PHOTO_TARGETS = {"vs_fp32_ceiling": 3.0, "vs_ceiling": 0.7, "vs_naive": 6.0}
ORDER = ["ceiling", "fp32 ceiling", "ours", "naive"]


class Sampler:
    """Every 50 ms: this process's RSS (Milvus Lite runs in it) and, on CUDA, the GPU's utilisation,
    kept per labelled phase."""

    def __init__(self, cuda: bool) -> None:
        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self.util: dict[str, list[float]] = {}
        self._gpu = cuda
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.mark()
            if self._gpu:
                value = gpu_utilisation()
                if value is None:
                    self._gpu = False
                else:
                    self.util.setdefault(self.phase, []).append(value)

    def mark(self) -> None:
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss_mb())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, phase: str) -> None:
        self.mark()
        self.phase = phase
        self.mark()


def gpu_utilisation() -> float | None:
    """GPU 0's utilisation in percent: torch (needs pynvml), else nvidia-smi, else None."""
    import torch

    try:
        return float(torch.cuda.utilization(0))
    except Exception:  # noqa: BLE001 - pynvml missing or no NVML: ask nvidia-smi
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=5)
        return float(out.stdout.strip().splitlines()[0])
    except Exception:  # noqa: BLE001
        return None


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
    """``n`` items spread over ``items``, cycling through them again when there are fewer."""
    if not n or not items:
        return list(items)
    step = len(items) / n
    return [items[int(i * step) % len(items)] if n <= len(items) else items[i % len(items)] for i in range(n)]


def pick_images(args: argparse.Namespace) -> tuple[Path, list[Path], list[Path]]:
    """(root, files for ours, distinct accepted files for the other pipelines) and a line saying which."""
    if args.photos:
        made = photos(args.photos)
        print(f"images: {len(made)} distinct {made[0].parent} photos (4000x3000 JPEG, quality 90), "
              f"{sum(p.stat().st_size for p in made) / len(made) / 1e6:.1f} MB each on average")
        return made[0].parent, made, made
    if args.images:
        root = Path(args.images)
    elif OPENCLIPART.is_dir():
        root = OPENCLIPART
    else:
        root = ROOT / "assets" / "sample"
        print(f"{OPENCLIPART} is missing (apt-get install openclipart-png): using {root}")
    n = None if args.all else args.n
    ours = image_files(root, n, unique=not args.all)
    distinct = accepted(image_files(root, None, unique=True) if args.all else ours, 100_000_000)
    if args.model_only:  # no hashing there, so a small folder may be cycled through
        ours = spread(distinct, n or len(distinct))
    print(f"images: {root}, {len(ours)} for ours, {len(distinct)} distinct and accepted")
    return root, ours, distinct


def make_settings(tmp: Path, args: argparse.Namespace):
    from rag.core import Settings

    data = tmp / "data"
    s = Settings.from_env().with_(data_dir=data, milvus_uri=str(data / "milvus.db"), library_dir=data / "library",
                                  outputs_dir=data / "outputs", collection="bench_ingest")
    if args.batch_size:
        s = s.with_(batch_size=args.batch_size)
    if args.workers:
        s = s.with_(workers=args.workers)
    return s


class Child:
    """The fp32 model in a child process (bench/ingest_ref.py); each call waits for its answer."""

    def __init__(self, settings, lite_path: str, threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # CUDA and Lite threads do not survive fork
        self.conn, child_end = ctx.Pipe()
        self.proc = ctx.Process(target=ingest_ref.serve, args=(child_end, settings, lite_path, threads), daemon=True)
        self.proc.start()
        _, self.precision, self.rss = self.conn.recv()

    def run(self, *job: object) -> tuple[int, float]:
        self.conn.send(job)
        return self.conn.recv()

    def close(self) -> float:
        self.conn.send(("stop",))
        _, peak = self.conn.recv()
        self.proc.join(30)
        return peak


def run_rounds(args, emb, studio, child: Child, slices: dict, sampler: Sampler, threads: int) -> tuple[list, list]:
    per_round, reports = [], []
    R = len(slices["ours"])
    for r in range(R):
        got: dict[str, tuple[int, float]] = {}
        for name in ORDER[r % 4:] + ORDER[: r % 4]:  # rotate so no pipeline always runs first
            sampler.set(name)
            if name == "ceiling":
                got[name] = ingest_ref.ceiling(emb, slices[name][r], emb.batch_size, threads)
            elif name == "fp32 ceiling":
                got[name] = child.run("ceiling", slices[name][r], emb.batch_size)
            elif name == "naive":
                got[name] = child.run("naive", slices[name][r], "" if args.model_only else f"naive_{r}")
            elif args.model_only:
                t0 = time.perf_counter()
                emb.embed_images(slices[name][r])
                ingest_ref.sync(emb.device)
                got[name] = (len(slices[name][r]), time.perf_counter() - t0)
            else:
                t0 = time.perf_counter()
                report = studio.ingest_folder(slices[name][r])
                got[name] = (report.seen, time.perf_counter() - t0)
                reports.append(report)
            sampler.set("idle")
        per_round.append(got)
        rates = "  ".join(f"{k} {n / s:7.2f} img/s" for k, (n, s) in got.items())
        print(f"  round {r + 1}/{R}: {rates}  (load avg {os.getloadavg()[0]:.2f})", flush=True)
    return per_round, reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="distinct images to ingest (default 1000)")
    ap.add_argument("--all", action="store_true", help="ingest every openclipart PNG (8,121 files)")
    ap.add_argument("--images", default="", help="a folder of images to use instead of openclipart")
    ap.add_argument("--ceiling-n", type=int, default=1000, help="images for each ceiling, over all rounds")
    ap.add_argument("--naive-n", type=int, default=400, help="images for the naive loop, over all rounds")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    ap.add_argument("--batch-size", type=int, default=0, help="override EMBED_BATCH_SIZE (at least 128 on CUDA)")
    ap.add_argument("--workers", type=int, default=0, help="override EMBED_WORKERS (decode threads)")
    ap.add_argument("--ceiling-threads", type=int, default=0, help="torch threads for the ceilings (default: cores)")
    ap.add_argument("--model-only", action="store_true", help="no Milvus: ours = decode + embed (for a GPU box)")
    ap.add_argument("--photos", type=int, default=0, help="N distinct 12 MP camera-size JPEGs instead of clip art")
    args = ap.parse_args()
    if args.photos:  # every pipeline over the same photos; the naive loop (full decode, fp32) over a quarter
        args.ceiling_n, args.naive_n = min(args.ceiling_n, args.photos), min(args.naive_n, max(8, args.photos // 4))

    preamble()
    import torch

    from rag.clip import ClipEmbedder

    t_setup = time.perf_counter()
    root, ours_files, distinct = pick_images(args)
    R = max(1, args.rounds)
    threads = args.ceiling_threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name, Sampler(torch.cuda.is_available()) as rss:
        tmp = Path(tmp_name)
        settings = make_settings(tmp, args)
        slices = {"ceiling": [spread(distinct, args.ceiling_n)[r::R] for r in range(R)],
                  "naive": [spread(distinct, args.naive_n)[r::R] for r in range(R)]}
        slices["fp32 ceiling"] = slices["ceiling"]
        studio = None
        if args.model_only:
            emb = ClipEmbedder(settings)
            slices["ours"] = [ours_files[r::R] for r in range(R)]
        else:
            from rag.studio import Studio

            studio = Studio(settings)
            emb, store = studio.embedder, studio.store  # a fresh, empty collection
            slices["ours"] = [tmp / "src" / f"round{r}" for r in range(R)]
            for r in range(R):  # each round ingests its own folder (copies made here, not timed)
                for p in ours_files[r::R]:
                    dest = tmp / "src" / f"round{r}" / p.relative_to(root)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(p, dest)  # the same bytes, no copy (photos: 1 GB)
                    except OSError:
                        shutil.copyfile(p, dest)
        emb.embed_images(distinct[: emb.batch_size])  # load + warm a full batch
        rss.set("model")
        args.decode_core_ms = decode_core_ms(emb, distinct[:16])
        (tmp / "naive").mkdir()
        child = Child(settings, "" if args.model_only else str(tmp / "naive" / "milvus.db"), threads)
        print(f"model: {emb.precision} on {emb.device} (fp32 child: {child.precision}); batch {emb.batch_size}, "
              f"decode workers {emb.workers}, torch threads {torch.get_num_threads()} (ceilings {threads}); "
              f"{'model only (no Milvus)' if args.model_only else 'Milvus Lite'}; setup {time.perf_counter() - t_setup:.0f} s\n",
              flush=True)
        per_round, reports = run_rounds(args, emb, studio, child, slices, rss, threads)
        child_peak = child.close()
        stored = studio.store.count() if studio else 0
        if studio:
            store.close()
    report(args, emb, settings, per_round, reports, rss, stored, child_peak)


def decode_core_ms(emb, files: list[Path]) -> float:
    """CPU milliseconds of one thread to read, decode and prepare one picture, as ingest does (median)."""
    from rag.media import decode

    s, times = emb.settings, []
    for p in files:
        t0 = time.thread_time()
        emb.prepare(decode(p.read_bytes(), background=s.background, max_pixels=s.max_image_pixels).image)
        times.append(time.thread_time() - t0)
    return median(times) * 1000


def report(args, emb, settings, per_round, reports, rss: Sampler, stored: int, child_peak: float) -> None:
    rows, agg = [], {}
    for name in ORDER:
        n, sec = sum(rd[name][0] for rd in per_round), sum(rd[name][1] for rd in per_round)
        agg[name] = n / sec
        util = rss.util.get(name)
        rows.append({"pipeline": name if name != "ours" or not args.model_only else "ours (decode + embed, no store)",
                     "precision": "fp32" if name in ("fp32 ceiling", "naive") else emb.precision, "images": n,
                     "seconds": sec, "img/s (all rounds)": n / sec,
                     "img/s (median round)": median(rd[name][0] / rd[name][1] for rd in per_round),
                     "batch": 1 if name == "naive" else emb.batch_size,
                     "peak RSS MB": rss.peaks.get(name, float("nan")) if name in ("ceiling", "ours") else child_peak,
                     **({"GPU util %": sum(util) / len(util)} if util else {})})
    ratio = {key: [(rd["ours"][0] / rd["ours"][1]) / (rd[other][0] / rd[other][1]) for rd in per_round]
             for key, other in (("vs_ceiling", "ceiling"), ("vs_fp32_ceiling", "fp32 ceiling"), ("vs_naive", "naive"))}
    print()
    print(table(rows))
    if reports:
        added = sum(len(rep.added) for rep in reports)
        print(f"\nours: {added} embedded and stored, {sum(len(rep.duplicates) for rep in reports)} duplicates skipped, "
              f"{sum(len(rep.failed) for rep in reports)} refused; {stored} rows in Lite")
    embedded = sum(len(rep.added) for rep in reports) if reports else sum(rd["ours"][0] for rd in per_round)
    ours_seconds = sum(rd["ours"][1] for rd in per_round)
    print(f"RSS after loading the model{'' if args.model_only else ' and opening Lite'}: {rss.peaks.get('model', 0):.0f} MB; "
          f"the fp32 yardsticks ran in a child process (peak {child_peak:.0f} MB)")
    targets = PHOTO_TARGETS if args.photos else TARGETS
    print(f"decoding and preparing one picture: {args.decode_core_ms:.1f} ms of one core (median of 16)")
    for key, values in ratio.items():
        pooled = agg["ours"] / agg[{"vs_ceiling": "ceiling", "vs_fp32_ceiling": "fp32 ceiling", "vs_naive": "naive"}[key]]
        print(f"per-round ours/{key[3:]}: " + ", ".join(f"{x:.2f}" for x in values)
              + f"  -> median {median(values):.2f} (target >= {targets[key]}; pooled {pooled:.2f})")
    extra = ""
    if emb.device.startswith("cuda"):
        import torch

        util = rss.util.get("ours")
        extra = (f" device=cuda gpu=\"{torch.cuda.get_device_name(0)}\" gpu_util_ours="
                 f"{(sum(util) / len(util)) if util else float('nan'):.0f} workers={emb.workers}")
    print(f"RESULT ingest_img_s={agg['ours']:.2f} ceiling_img_s={agg['ceiling']:.2f} "
          f"fp32_ceiling_img_s={agg['fp32 ceiling']:.2f} naive_img_s={agg['naive']:.2f} "
          f"vs_ceiling={median(ratio['vs_ceiling']):.2f} vs_fp32_ceiling={median(ratio['vs_fp32_ceiling']):.2f} "
          f"vs_naive={median(ratio['vs_naive']):.2f} embedded_img_s={embedded / ours_seconds:.2f} "
          f"peak_rss_mb={rss.peaks.get('ours', 0):.0f} precision={emb.precision} batch={emb.batch_size}"
          f" decode_core_ms={args.decode_core_ms:.1f}{' model_only=1' if args.model_only else ''}"
          f"{' photos=1' if args.photos else ''}{extra}")


if __name__ == "__main__":
    main()

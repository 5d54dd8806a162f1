"""Why text encoding slows down once Milvus Lite has built a faiss index in the process.

    python bench/openmp.py                 # about 1 minute
    OMP_NUM_THREADS=1 python bench/openmp.py --torch-threads 2   # the workaround: faiss on one thread

Encodes text queries (the app's path) before any store, with a Lite FLAT collection open, and
after Lite has built an HNSW index over 10k vectors. For each phase it prints the p50 time and,
independent of how busy the machine is, the voluntary context switches per encode: OpenMP threads
that sleep in the kernel at a barrier instead of spinning. It also lists the OpenMP and BLAS
runtimes loaded (threadpoolctl). See bench/README.md for what the numbers mean.

The last line is machine-readable: ``RESULT switches_before=... switches_after_hnsw=... ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, preamble  # noqa: E402


def voluntary_switches() -> int:
    """Voluntary context switches of every thread of this process so far."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("voluntary_ctxt_switches"))
        except OSError:
            continue
    return total


def phase(label: str, encode, n: int = 40) -> tuple[float, float]:
    """(p50 ms, voluntary switches per call) over ``n`` encodes."""
    import torch

    before, times = voluntary_switches(), []
    for i in range(n):
        t0 = time.perf_counter()
        encode(f"a red bicycle number {i} ({label})")
        times.append(time.perf_counter() - t0)
    per_call = (voluntary_switches() - before) / n
    print(f"{label:36s} p50 {median(times) * 1000:6.1f} ms   voluntary switches per encode {per_call:6.1f}   "
          f"torch threads {torch.get_num_threads()}   load {os.getloadavg()[0]:.1f}", flush=True)
    return median(times) * 1000, per_call


def runtimes() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{Path(d['filepath']).name} ({d['internal_api']}, {d['num_threads']} threads)" for d in threadpool_info())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads first (with OMP_NUM_THREADS=1)")
    args = ap.parse_args()
    preamble()
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    from query_lib import Data, asset_for, rebuild_index

    from rag.clip import ClipEmbedder
    from rag.core import Settings
    from rag.store import MilvusStore

    settings = Settings.from_env()
    text = ClipEmbedder(settings).text
    encode = lambda t: text.encode([t])  # noqa: E731
    phase("warm-up", encode)
    results = {"before": phase("no store", encode)}
    with tempfile.TemporaryDirectory(prefix="bench-openmp-") as tmp:
        base = settings.with_(milvus_uri=str(Path(tmp) / "m.db"), collection="omp")
        store, data = MilvusStore(base, 512, "x"), Data(10_000)
        for s in range(0, 10_000, 2000):
            store.upsert([asset_for(i) for i in range(s, s + 2000)], data.vectors[s : s + 2000])
        store.flush()
        results["flat"] = phase("Lite open, FLAT, 10k rows", encode)
        print("runtimes:", runtimes())
        rebuild_index(store.client, "omp", "HNSW")
        hnsw = MilvusStore(base.with_(index_type="HNSW"), 512, "x")
        hnsw.search(data.vectors[0], 10)
        results["after_hnsw"] = phase("after Lite built HNSW", encode)
        results["hnsw_search"] = phase("a search before each encode", lambda t: (hnsw.search(data.vectors[1], 10), encode(t)))
        print("runtimes:", runtimes())
        hnsw.close()
        store.close()
    print("RESULT " + " ".join(f"switches_{k}={v[1]:.1f} p50_ms_{k}={v[0]:.1f}" for k, v in results.items())
          + f" precision={text.numerics.precision} omp_num_threads={os.environ.get('OMP_NUM_THREADS', '')}")


if __name__ == "__main__":
    main()

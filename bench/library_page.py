"""The Library grid's page of 60 at 10k assets on Milvus Lite, once previews exist.

    python bench/library_page.py              # 10k assets, about 2 minutes
    python bench/library_page.py --n 2000     # a quick look

10k records (random 512-d vectors; files are openclipart PNGs, so previews are real) are upserted
through ``MilvusStore.upsert`` with realistic metadata: 40 folders, three sources, a tenth
generated (with a model and parents), a fifth tagged, dates spread over 90 days. Previews are made
for every asset the timed pages show, then each scenario is timed with its variants interleaved
repetition by repetition, so machine noise hits them alike:

* grid: what the Library tab runs for a page: ``Studio.library_page`` (newest first, filters,
  counts per facet, full records) plus the cached-preview lookup of each asset;
* baseline: ``MilvusStore.page`` with the same filter and page size: the plain Milvus query the
  old table view made (no order, no counts). ratio = grid / baseline;
* newest first from Milvus alone: query every matching (id, created), sort, ``get`` 60: what the
  grid would cost without its in-memory index (neither Lite nor a server sorts a query).

The first page after start-up builds the index (one scan); it is reported on its own (cold).
The last line is machine-readable: ``RESULT grid_p50_ms=... baseline_p50_ms=... ratio=...``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import openclipart_files, percentile, preamble, table  # noqa: E402

DIM = 512
PAGE = 60
TARGET_MS = 300.0


def make_assets(n: int, files: list[Path], seed: int = 0) -> tuple[list, object]:
    """``n`` records over ``files`` (cycled), with folders, sources, models, parents, tags and dates."""
    import numpy as np

    from rag.core import Asset

    rnd = random.Random(seed)
    now = time.time()
    assets = []
    for i in range(n):
        path = files[i % len(files)]
        source = "generated" if i % 10 == 0 else rnd.choice(["upload", "upload", "folder"])
        meta: dict = {}
        if source == "generated":
            meta = {"model": rnd.choice(["gemini-3.1-flash-image", "gemini-3-pro-image"]), "prompt": f"prompt {i}",
                    "parents": [f"{rnd.randrange(n):064x}" for _ in range(2)]}
        if i % 5 == 0:
            meta["tags"] = rnd.sample(["hero", "summer", "red", "draft", "approved", "logo", "product"], 2)
        assets.append(Asset(id=f"{i:064x}", path=str(path), filename=path.name, folder=f"folder{i % 40:02d}",
                            width=256, height=256, format="PNG", bytes=path.stat().st_size,
                            created=now - rnd.uniform(0, 90 * 86_400), source=source, meta=meta))
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return assets, vectors


def newest_from_milvus(store, expression: str, offset: int) -> list:
    """Newest first without the index: every matching (id, created) from Milvus, sorted, then get."""
    from rag.store.milvus import QUERY_WINDOW

    rows = store.client.query(store.collection, filter=expression, output_fields=["id", "created"], limit=QUERY_WINDOW)
    rows.sort(key=lambda r: (-r["created"], r["id"]))
    return store.get([r["id"] for r in rows[offset : offset + PAGE]])


def fill(settings, n: int):
    """A Lite library of ``n`` records, reopened as the app finds it after a restart."""
    from rag.store import MilvusStore

    store = MilvusStore(settings, DIM, "bench")
    assets, vectors = make_assets(n, openclipart_files(min(n, 4000)))
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        store.upsert(assets[start : start + 1000], vectors[start : start + 1000])
    store.flush()
    store.close()
    print(f"{n} records stored in {time.perf_counter() - t0:.1f} s", flush=True)
    return MilvusStore(settings, DIM, "bench")


def interleaved(variants: dict, args: tuple, reps: int) -> dict[str, list[float]]:
    """Milliseconds per call of each variant, alternating their order every repetition."""
    times: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(reps):
        for v in list(variants) if rep % 2 == 0 else list(reversed(variants)):
            t0 = time.perf_counter()
            variants[v](*args)
            times[v].append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="assets in the library (default 10000)")
    ap.add_argument("--reps", type=int, default=30, help="timed repetitions per scenario (default 30)")
    args = ap.parse_args()
    preamble()

    from rag.core import Settings
    from rag.library import LibraryFilter
    from rag.studio import Studio

    scenarios = {
        "first page": (LibraryFilter(), 0),
        "page 5 (load more)": (LibraryFilter(), 4 * PAGE),
        "one folder": (LibraryFilter(folders=("folder07",)), 0),
        "source = generated": (LibraryFilter(sources=("generated",)), 0),
        "tag = hero": (LibraryFilter(tags=("hero",)), 0),
        "past week + model": (LibraryFilter(added="past week", models=("gemini-3.1-flash-image",)), 0),
    }
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings.from_env().with_(data_dir=tmp, milvus_uri=str(tmp / "milvus.db"), library_dir=tmp / "library",
                                             outputs_dir=tmp / "outputs")
        store = fill(settings, args.n)
        studio = Studio(settings, store=store)
        t0 = time.perf_counter()
        studio.library_page()
        cold_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        made = sum(studio.preview(a) is not None for chosen, offset in scenarios.values()  # previews exist before timing
                   for a in studio.library_page(chosen, offset=offset, limit=PAGE).assets)
        print(f"cold first page (index built): {cold_ms:.0f} ms; {made} previews made in {time.perf_counter() - t0:.1f} s "
              "(a file the preview maker refuses shows the placeholder)\n")
        variants = {
            "grid": lambda chosen, offset: [studio.preview(a, make=False) or studio.placeholder()
                                            for a in studio.library_page(chosen, offset=offset, limit=PAGE).assets],
            "baseline": lambda chosen, offset: store.page(offset, PAGE, chosen.expression()),
            "milvus sorted": lambda chosen, offset: newest_from_milvus(store, chosen.expression(), offset),
        }
        rows, all_grid, all_base = [], [], []
        for name, (chosen, offset) in scenarios.items():
            times = interleaved(variants, (chosen, offset), args.reps)
            g, b, m = (percentile(times[v], 50) for v in variants)
            all_grid, all_base = all_grid + times["grid"], all_base + times["baseline"]
            rows.append({"scenario": name, "matches": studio.library_page(chosen, limit=0).total, "grid p50 ms": g,
                         "grid p95 ms": percentile(times["grid"], 95), "baseline p50 ms": b, "grid/baseline": g / b,
                         "Milvus-sorted p50 ms": m})
            print(f"{name}: grid {g:.1f} ms, baseline {b:.1f} ms, Milvus-sorted {m:.1f} ms", flush=True)
        store.close()
    print("\n" + table(rows))
    grid_p50, base_p50 = percentile(all_grid, 50), percentile(all_base, 50)
    print(f"\nall scenarios: grid p50 {grid_p50:.1f} ms (target <= {TARGET_MS:.0f} ms: "
          f"{'met' if grid_p50 <= TARGET_MS else 'NOT met'}), baseline p50 {base_p50:.1f} ms, "
          f"ratio {grid_p50 / base_p50:.2f}; cold first page {cold_ms:.0f} ms")
    print(f"RESULT n={args.n} grid_p50_ms={grid_p50:.1f} baseline_p50_ms={base_p50:.1f} ratio={grid_p50 / base_p50:.2f} "
          f"cold_ms={cold_ms:.0f} target_met={int(grid_p50 <= TARGET_MS)}")


if __name__ == "__main__":
    main()

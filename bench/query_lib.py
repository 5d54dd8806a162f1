"""Measurement helpers of bench/query.py: synthetic CLIP-like data, index (re)builds, timed searches.

Kept apart from the script so it stays readable; nothing here runs at import.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, percentile  # noqa: E402

DIM = 512
K = 10
TARGET_VS_NUMPY = 2.0
TARGET_RECALL = 0.99
TARGET_E2E_MS = 80.0
INDEX_PARAMS = {"HNSW": {"M": 16, "efConstruction": 200}, "HNSW_SQ": {"M": 16, "efConstruction": 200}}


def index_params(kind: str) -> dict:
    """The build parameters rag/store/milvus.py gives each index type (Lite needs them nested)."""
    if kind.startswith("HNSW"):
        return INDEX_PARAMS[kind]
    if kind.startswith("IVF"):
        return {"nlist": 1024}
    return {}


class Data:
    """Clustered unit vectors: N/100 centres, each point a centre plus noise (cosine to centre ~0.78)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.centres = self._unit(self.rng.standard_normal((max(10, n // 100), DIM), dtype=np.float32))
        self.vectors = self.draw(n)

    @staticmethod
    def _unit(x):
        import numpy as np

        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def draw(self, n: int):
        import numpy as np

        out = np.empty((n, DIM), dtype=np.float32)
        for s in range(0, n, 100_000):  # in slices: 1M x 512 floats of noise at once is 2 GB
            m = min(100_000, n - s)
            c = self.rng.integers(0, len(self.centres), m)
            noise = self.rng.standard_normal((m, DIM), dtype=np.float32) * np.float32(0.8 / np.sqrt(DIM))
            out[s : s + m] = self._unit(self.centres[c] + noise)
        return out


def asset_for(i: int):
    """A record like a real one; its two tags are words of bench/text.py's queries (each in ~1/12 of
    the library), so that word search has matches to score."""
    from text import ADJ, NOUN

    from rag.core import Asset

    return Asset(
        id=f"{i:064x}", path=f"/library/folder{i % 40}/picture_{i}.png", filename=f"picture_{i}.png",
        folder=f"folder{i % 40}", width=640, height=480, format="PNG", bytes=123_456, created=1.7e9 + i,
        source="folder", meta={"tags": [ADJ[i % len(ADJ)], NOUN[(i // len(ADJ)) % len(NOUN)]]},
    )


def exact_topk(vectors, q, k: int = K):
    import numpy as np

    scores = vectors @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def blas_threads(n: int) -> None:
    """Set the OpenBLAS thread count of this process (rag.store.milvus sets it to 1 when it opens Lite)."""
    import ctypes

    with open("/proc/self/maps") as fh:
        libs = {line.split()[-1] for line in fh if len(line.split()) >= 6 and "openblas" in line.split()[-1].lower()}
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(n)
                break


def wait_indexed(client, collection: str, timeout: float = 5400) -> bool:
    """Until no row waits for the vector index (False after ``timeout``); progress every 5 minutes."""
    t0 = last = time.perf_counter()
    while (waited := time.perf_counter() - t0) < timeout:
        info = client.describe_index(collection, "vector")
        if not info.get("pending_index_rows"):
            return True
        if time.perf_counter() - last > 300:
            print(f"  {waited / 60:.0f} min: {info.get('pending_index_rows')} of {info.get('total_rows')} rows "
                  f"wait for the index ({info.get('state')})", flush=True)
            last = time.perf_counter()
        time.sleep(0.5)
    print(f"  the index was not finished after {timeout / 60:.0f} min: searches below ran beside its build", flush=True)
    return False


def rebuild_index(client, collection: str, kind: str) -> float:
    """Drop the vector index and build ``kind`` on the same rows; returns seconds (release to loaded)."""
    t0 = time.perf_counter()
    client.release_collection(collection)
    client.drop_index(collection, "vector")
    idx = client.prepare_index_params()
    params = index_params(kind)
    idx.add_index("vector", index_type=kind, metric_type="COSINE", params={"params": params} if params else {})
    client.create_index(collection, idx)
    client.load_collection(collection)
    wait_indexed(client, collection)
    return time.perf_counter() - t0


def time_store(store, data: Data, queries, budget_s: float, min_n: int = 20) -> dict:
    """store.search, then numpy exact search over the same queries; recall@10 against numpy.

    The two run in separate passes, not query by query: numpy's OpenBLAS threads keep spinning for
    ~0.1 s after a call and slowed whatever ran next (measured: a text encode went 16 -> 98 ms).
    """
    ids_of = {f"{i:064x}": i for i in range(len(data.vectors))}
    for q in queries[:2]:  # warm-up
        store.search(q, K)
    st, found = [], []
    t_start = time.perf_counter()
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        hits = store.search(q, K)
        st.append(time.perf_counter() - t0)
        found.append({ids_of.get(h.asset.id, -1) for h in hits})
        if j + 1 >= min_n and time.perf_counter() - t_start > budget_s:
            break
    nt, recall = [], []
    blas_threads(os.cpu_count() or 1)  # numpy at its best: all cores (the app's process uses one)
    for q, got in zip(queries, found):
        t0 = time.perf_counter()
        truth = exact_topk(data.vectors, q)
        nt.append(time.perf_counter() - t0)
        recall.append(len(got & set(truth.tolist())) / K)
    blas_threads(1)
    time.sleep(0.3)  # let OpenBLAS's threads go back to sleep before anything else is timed
    return {
        "queries": len(st),
        "store p50 ms": median(st) * 1000,
        "store p95 ms": percentile(st, 95) * 1000,
        "numpy p50 ms": median(nt) * 1000,
        "numpy p95 ms": percentile(nt, 95) * 1000,
        "store/numpy (p50)": median(st) / median(nt),
        "recall@10": sum(recall) / len(recall),
    }


def time_text(studio, texts: list[str]) -> dict:
    """Studio.search(text): distinct texts (cache misses), then the same texts again (hits)."""
    text = studio.embedder.text
    miss, hit, enc = [], [], []
    for t in texts:
        t0 = time.perf_counter()
        studio.search(t, k=K)
        miss.append(time.perf_counter() - t0)
    for t in texts:
        t0 = time.perf_counter()
        studio.search(t, k=K)
        hit.append(time.perf_counter() - t0)
    for t in texts:  # the text tower alone (bypassing the cache)
        t0 = time.perf_counter()
        text.encode([t + " ."])
        enc.append(time.perf_counter() - t0)
    clip = []
    for t in texts:  # words off: CLIP alone, new texts (cache misses)
        t0 = time.perf_counter()
        studio.search(t + " ,", k=K, words=False)
        clip.append(time.perf_counter() - t0)
    return {
        "e2e p50 ms": median(miss) * 1000,
        "e2e p95 ms": percentile(miss, 95) * 1000,
        "CLIP-only e2e p50 ms": median(clip) * 1000,
        "cached p50 ms": median(hit) * 1000,
        "cached p95 ms": percentile(hit, 95) * 1000,
        "encode p50 ms": median(enc) * 1000,
    }


def filtered_query(i: int, text: str) -> tuple[str, dict]:
    """The ``i``-th filtered search of a cycle of five, as (text, Studio.search options): a folder (1/40 of the
    library), a tag (1/12), a quoted phrase (two tags in a row, 1/144), a ``-word`` (drops 1/12; one more text
    encode), a folder with a source and a tag."""
    from text import ADJ, NOUN

    adj, noun, folder = ADJ[i % len(ADJ)], NOUN[(i // len(ADJ)) % len(NOUN)], f"folder{(7 * i) % 40}"
    return [(text, {"folders": (folder,)}), (text, {"tags": (adj,)}), (f'{text} "{adj} {noun}"', {}),
            (f"{text} -{adj}", {}), (text, {"folders": (folder,), "sources": ("folder",), "tags": (noun,)})][i % 5]


def time_filtered(studio, texts: list[str]) -> dict:
    """Studio.search with filters (:func:`filtered_query`), distinct texts (cache misses); how many results came back."""
    times, found = [], []
    for i, t in enumerate(texts):
        text, options = filtered_query(i, t)
        t0 = time.perf_counter()
        hits = studio.search(text, k=K, **options)
        times.append(time.perf_counter() - t0)
        found.append(len(hits))
    return {"filtered e2e p50 ms": median(times) * 1000, "filtered e2e p95 ms": percentile(times, 95) * 1000,
            "filtered hits (mean)": sum(found) / max(1, len(found))}


def time_bounded(client, collection: str, queries, n: int = 50) -> dict:
    """The same search as ``MilvusStore.search`` on a server, but with Bounded consistency: what the
    index and the fetch cost without waiting for the proxy's time tick (Strong consistency waits)."""
    from rag.store.milvus import SCALAR_FIELDS

    times = []
    for q in queries[:n]:
        t0 = time.perf_counter()
        client.search(collection, data=[q.tolist()], limit=K, output_fields=list(SCALAR_FIELDS),
                      search_params={"metric_type": "COSINE", "params": {"ef": 64}}, consistency_level="Bounded")
        times.append(time.perf_counter() - t0)
    return {"bounded p50 ms": median(times) * 1000, "bounded p95 ms": percentile(times, 95) * 1000}


def reload(client, collection: str, tries: int = 10) -> None:
    """Release and load again, as the app does at start. A server that has just started can refuse
    the load for a few seconds ("get memory failed when checkSegmentSize"): try again."""
    client.release_collection(collection)
    for attempt in range(tries):
        try:
            client.load_collection(collection)
            break
        except Exception:  # noqa: BLE001 - pymilvus raises MilvusException; the last try re-raises
            if attempt == tries - 1:
                raise
            time.sleep(3)
    wait_indexed(client, collection)

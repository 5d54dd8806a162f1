"""The fp32 yardsticks of bench/ingest.py, run in a child process with a model of their own.

The app's model runs in whatever CLIP_PRECISION picks (bf16 weights on CPUs with AMX), so the
fp32 ceiling and the notebook loop need a second, fp32 model. Holding it in the benchmark's own
process would add its ~600 MB to the peak RSS reported for the app's ingest, so it lives here:
the parent sends a job down a pipe and waits (idle) while this process runs it, so the two never
compete for the cores.

Jobs: ``("ceiling", files, batch)``: the fp32 batched forward pass over pictures prepared
beforehand (not timed); ``("naive", files, collection)``: the notebook loop, one image at a time
(PIL open, open_clip preprocess, ``encode_image``, ``.tolist()``), then one insert into a fresh
Milvus Lite collection (skipped when ``collection`` is empty: --model-only, no pymilvus).
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def sync(device: str) -> None:
    """Wait for the GPU to finish (CUDA calls return before the work is done)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def ceiling(emb: Any, files: list[Path], batch: int, threads: int) -> tuple[int, float]:
    """A model's batched forward pass over pictures decoded and moved to its device beforehand (untimed)."""
    import torch

    from rag.clip.runtime import inference
    from rag.media import decode

    s, visual = emb.settings, emb.visual
    prepared = [visual.prepare(decode(p.read_bytes(), background=s.background).image) for p in files]
    batches = [visual.pixels(prepared[i : i + batch]) for i in range(0, len(prepared), batch)]
    del prepared
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with inference(visual.numerics):
            sync(visual.device)
            t0 = time.perf_counter()
            for b in batches:
                visual.model.encode_image(b)
            sync(visual.device)
            seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    return sum(len(b) for b in batches), seconds


def naive(emb: Any, files: list[Path], client: Any, collection: str) -> tuple[int, float]:
    """The notebook loop: one image at a time in fp32, then one big insert into a fresh collection."""
    import torch
    from PIL import Image

    model, preprocess, device = emb.visual.model, emb.visual.preprocess, emb.visual.device
    if client is not None:
        client.create_collection(collection, dimension=512)
    t0 = time.perf_counter()
    rows = []
    for i, p in enumerate(files):
        image = Image.open(p).convert("RGB")
        x = preprocess(image).unsqueeze(0).to(device)
        with torch.no_grad():
            f = model.encode_image(x)
            f /= f.norm(dim=-1, keepdim=True)
        rows.append({"id": i, "vector": f[0].tolist(), "path": str(p)})
    if client is not None:
        client.insert(collection, rows)
    return len(files), time.perf_counter() - t0


def serve(conn: Connection, settings: Any, lite_path: str, threads: int) -> None:
    """The child's loop: load the fp32 model, then answer jobs until told to stop."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import peak_rss_mb, quiet_logs

    from rag.clip import ClipEmbedder

    quiet_logs()
    emb = ClipEmbedder(settings.with_(precision="fp32"))
    emb.visual  # noqa: B018 - load now, before anything is timed
    client = None
    if lite_path:
        from pymilvus import MilvusClient

        client = MilvusClient(lite_path)
    conn.send(("ready", emb.precision, peak_rss_mb()))
    while True:
        job = conn.recv()
        if job[0] == "stop":
            break
        if job[0] == "ceiling":
            n, seconds = ceiling(emb, job[1], job[2], threads)
        else:
            n, seconds = naive(emb, job[1], client if job[2] else None, job[2])
        conn.send((n, seconds))
    if client is not None:
        client.close()
    conn.send(("done", peak_rss_mb()))

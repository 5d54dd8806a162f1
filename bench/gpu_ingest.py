"""Ingest on a GPU, on 12 MP camera JPEGs: is the GPU kept busy? (issue 32; bench/gpu.sh runs it on an H100)

    python bench/gpu_ingest.py                                   # on a GPU box: 3,072 files from 192 pictures
    python bench/gpu_ingest.py --photos 48 --base 12 --embed-n 32 --batch 16 --device cpu   # the code, on a CPU

Four pipelines, each over the same 12 MP JPEGs (bench/photos.py), on the model's device:

* ceiling: the app's model in its precision (fp16 autocast on CUDA) over batches of pictures decoded,
  prepared and moved to the device beforehand (not timed), batch 256: what the GPU alone can do;
* nvjpeg: ``ClipEmbedder.embed_images`` with ``JPEG_DECODER=torchvision``: headers read on CPU threads,
  pixels decoded in batches on the device (rag/clip/jpeg.py), resized and cropped there, embedded;
* pillow: the same with ``JPEG_DECODER=pillow``: Pillow on one thread per core (1/8 DCT scaling);
* ingest: ``Ingestor.run`` (hash, skip known, read, header, decode, embed, write in large batches on a
  thread of its own: rag/library/writes.py) into a store: a Milvus server when ``--milvus-uri`` names
  one or PyPI's ``milvus`` package is installed (its embedded server is started), else Milvus Lite
  when ``milvus_lite`` is, else left out.

GPU utilisation is sampled every 50 ms (nvidia-smi or pynvml). The last line is machine-readable:
``RESULT ceiling_img_s=... nvjpeg_img_s=... pillow_img_s=... ingest_img_s=... vs_ceiling=... store=...``;
``vs_ceiling`` is the ingest's (the embed-only nvjpeg figure's when no store ran).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_ref  # noqa: E402
from common import preamble, table  # noqa: E402
from ingest import Sampler  # noqa: E402
from photos import photos  # noqa: E402

TARGET_IMG_S, TARGET_VS_CEILING = 2500.0, 0.3


def start_store(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> tuple[str, str]:
    """(uri, kind) of the store the ingest writes to; ("", "none") when there is none. The embedded server
    runs on loopback in a network namespace of its own (tests/milvus_server.py) where ``unshare`` works, else
    as it is (it binds every interface: on the GPU box nothing outside reaches it)."""
    if args.milvus_uri:
        return args.milvus_uri, "server"
    try:
        from milvus import default_server
    except ImportError:
        default_server = None
    if default_server is not None:
        from tests.milvus_server import embedded_server_unavailable_reason, start_milvus_server

        if embedded_server_unavailable_reason() is None:
            uri, stop = start_milvus_server(tmp / "milvus-server")
            stack.callback(stop)
            return uri, "server"
        default_server.set_base_dir(str(tmp / "milvus-server"))
        default_server.start()
        stack.callback(default_server.stop)
        return f"http://127.0.0.1:{default_server.listen_port}", "server"
    try:
        import milvus_lite  # noqa: F401

        return str(tmp / "milvus.db"), "lite"
    except ImportError:
        return "", "none"


def ceiling(emb, pictures: list[Path], n: int) -> tuple[int, float]:
    """The model alone: ``n`` pictures (``pictures`` decoded once, by Pillow, and cycled), batched and moved to
    the device beforehand (not timed), then embedded."""
    from rag.clip.runtime import inference
    from rag.media import decode

    visual = emb.visual
    prepared = [visual.prepare(decode(p.read_bytes()).image) for p in pictures]
    batches = [visual.pixels([prepared[j % len(prepared)] for j in range(i, min(n, i + emb.batch_size))])
               for i in range(0, n, emb.batch_size)]
    with inference(visual.numerics):
        ingest_ref.sync(emb.device)
        t0 = time.perf_counter()
        for batch in batches:
            visual.model.encode_image(batch)
        ingest_ref.sync(emb.device)
        seconds = time.perf_counter() - t0
    return n, seconds


def timed(sampler: Sampler, phase: str, run, device: str) -> tuple[int, float]:
    sampler.set(phase)
    ingest_ref.sync(device)
    t0 = time.perf_counter()
    n = run()
    ingest_ref.sync(device)
    seconds = time.perf_counter() - t0
    sampler.set("idle")
    print(f"  {phase}: {n} pictures in {seconds:.1f} s = {n / seconds:.0f} img/s", flush=True)
    return n, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=3072, help="distinct files (default 3072)")
    ap.add_argument("--base", type=int, default=192, help="distinct pictures they are made from (default 192)")
    ap.add_argument("--device", default="", help="CLIP_DEVICE (default: the environment's, auto)")
    ap.add_argument("--batch", type=int, default=256, help="model batch (default 256)")
    ap.add_argument("--embed-n", type=int, default=1536, help="files for each embed-only pipeline")
    ap.add_argument("--milvus-uri", default=os.environ.get("BENCH_MILVUS_URI", ""), help="a Milvus server to write to")
    args = ap.parse_args()
    preamble()
    import torch

    from rag.clip import ClipEmbedder
    from rag.core import Settings

    files = photos(args.photos, base=args.base)
    print(f"photos: {len(files)} files from {min(args.base, args.photos)} pictures in {files[0].parent}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp_name, Sampler(torch.cuda.is_available()) as sampler, \
            contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        uri, store_kind = start_store(args, tmp, stack)
        env = {"BANANA_DATA_DIR": str(tmp), "EMBED_BATCH_SIZE": str(args.batch), "MILVUS_COLLECTION": "bench_gpu",
               **({"CLIP_DEVICE": args.device} if args.device else {}), **({"MILVUS_URI": uri} if uri else {})}
        settings = Settings.from_env({**os.environ, **env})
        emb = ClipEmbedder(settings.with_(jpeg_decoder="torchvision"))
        emb.embed_images(files[: emb.batch_size])  # load, choose the precision, warm the decoder and the model
        print(f"model: {emb.precision} on {emb.device}, batch {emb.batch_size}; store: {store_kind} {uri}", flush=True)
        got = {"ceiling": ceiling(emb, files[: args.base], args.embed_n)}
        print(f"  ceiling: {got['ceiling'][0] / got['ceiling'][1]:.0f} img/s", flush=True)
        for name, decoder in (("nvjpeg", "torchvision"), ("pillow", "pillow")):
            emb.settings = settings.with_(jpeg_decoder=decoder)
            part, before = files[: args.embed_n], emb.visual.jpeg_decoder().decoded
            got[name] = timed(sampler, name, lambda part=part: len(emb.embed_images(part)), emb.device)
            print(f"    decoded on the device: {emb.visual.jpeg_decoder().decoded - before} of {len(part)}", flush=True)
        if store_kind != "none":
            got["ingest"] = ingest(emb, settings.with_(jpeg_decoder="torchvision"), files, sampler)
        report(got, sampler, emb, store_kind)


def ingest(emb, settings, files: list[Path], sampler: Sampler) -> tuple[int, float]:
    """The whole ingest (``Ingestor.run``, records pointing at the files where they are) into the store."""
    from rag.library.ingest import Ingestor
    from rag.store import MilvusStore

    emb.settings = settings
    store = MilvusStore(settings, emb.dim, emb.name)
    try:
        pairs = [(p, "photos") for p in files]
        out = timed(sampler, "ingest", lambda: len(Ingestor(settings, emb, store).run(pairs, source="folder",
                                                                                      copy=False).added), emb.device)
        print(f"  the store holds {store.count()} records", flush=True)
        return out
    finally:
        store.close()


def report(got: dict, sampler: Sampler, emb, store_kind: str) -> None:
    rate = {k: n / s for k, (n, s) in got.items()}
    rows = [{"pipeline": k, "pictures": got[k][0], "seconds": got[k][1], "img/s": rate[k],
             "vs ceiling": rate[k] / rate["ceiling"],
             "GPU util %": (sum(u) / len(u)) if (u := sampler.util.get(k)) else float("nan")} for k in got]
    print()
    print(table(rows))
    main_key = "ingest" if "ingest" in rate else "nvjpeg"
    vs = rate[main_key] / rate["ceiling"]
    print(f"\n{main_key}: {rate[main_key]:.0f} img/s = {vs:.2f}x the model's ceiling (targets on an H100: >= "
          f"{TARGET_IMG_S:.0f} img/s and >= {TARGET_VS_CEILING}x)")
    gpu = ""
    if emb.device.startswith("cuda"):
        import torch

        gpu = f' gpu="{torch.cuda.get_device_name(0)}"'
    util = sampler.util.get(main_key)
    print(f"RESULT ceiling_img_s={rate['ceiling']:.0f} nvjpeg_img_s={rate['nvjpeg']:.0f} pillow_img_s={rate['pillow']:.0f} "
          f"ingest_img_s={rate.get('ingest', float('nan')):.0f} vs_ceiling={vs:.2f} store={store_kind} "
          f"precision={emb.precision} batch={emb.batch_size} workers={emb.workers} "
          f"gpu_util_{main_key}={(sum(util) / len(util)) if util else float('nan'):.0f} device={emb.device}{gpu}")


if __name__ == "__main__":
    main()

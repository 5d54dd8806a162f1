"""Text-query encoding cost: ways to run CLIP's text tower on a CPU, with their deviation from fp32.

    python bench/text.py            # about 2 minutes
    python bench/text.py --onnx     # also ONNX Runtime (needs `pip install onnxruntime onnx onnxscript`)

Each variant encodes the same distinct one-line queries, one query per call (as a search box
does), interleaved query by query so that machine noise hits every variant alike. Deviation is
``1 - cosine`` against the fp32 reference over the same queries (max and median). The app's path
(``ClipEmbedder.text.encode``) is measured too; it is what ``Studio.search(text)`` pays on a cache miss.

With CLIP_PRETRAINED=none the weights are random: deviations of lossy variants (bf16, int8) on
real weights may differ, so the app adopts only what is exact by construction.

The last line is machine-readable: ``RESULT text_fp32_ms=... text_app_ms=... speedup=...``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, percentile, preamble, table  # noqa: E402

ADJ = ["red", "blue", "tiny", "giant", "smiling", "rusty", "golden", "striped", "wooden", "glowing", "sleepy", "vintage"]
NOUN = ["cat", "robot", "banana", "castle", "bicycle", "owl", "teapot", "rocket", "tree", "guitar", "lighthouse", "fox"]
PLACE = ["on a beach", "in space", "under the rain", "at night", "in a forest", "on a desk", "in the snow", "by a lake"]
STYLE = ["", ", watercolor", ", flat icon", ", photo", ", pixel art", ", line drawing", ", 3d render"]
REFERENCE = "fp32 (reference)"
APP = "app: ClipEmbedder.text.encode (CLIP_PRECISION from the environment, default auto)"  # the RESULT line's


def queries(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct search-box queries (3-12 words), deterministic."""
    import random

    rnd = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        q = f"a {rnd.choice(ADJ)} {rnd.choice(NOUN)} {rnd.choice(PLACE)}{rnd.choice(STYLE)}"
        if rnd.random() < 0.3:
            q = f"{rnd.choice(NOUN)}"  # one-word queries happen too
            q = f"{q} {rnd.choice(ADJ)} {len(out)}"
        out[q] = None
    return list(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="distinct queries timed per variant (default 120)")
    ap.add_argument("--onnx", action="store_true", help="also try ONNX Runtime (if installed)")
    args = ap.parse_args()

    preamble()
    import torch

    from rag.clip import ClipEmbedder
    from rag.core import Settings

    settings = Settings.from_env()
    text = ClipEmbedder(settings.with_(precision="fp32")).text  # the fp32 model every variant starts from
    app = ClipEmbedder(settings).text  # the app's own (bf16 weights on CPUs with AMX under auto)
    texts = queries(args.n)
    threads = torch.get_num_threads()
    tower = copy.deepcopy(text.model)
    tower.visual = None  # only the text tower is converted (and needed here)
    variants = full_context_variants(text, tower, threads)
    if text.padding_free:
        variants.update(padding_free_variants(text, tower, threads))
    variants[APP] = lambda t: app.encode([t])[0]
    if args.onnx:
        try:
            variants.update(onnx_variants(text.model, text.tokenize, threads))
        except Exception as exc:  # noqa: BLE001
            print(f"onnxruntime: not measured ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")

    times, outs = interleave(variants, texts)
    tok_times = []
    for t in texts:
        t0 = time.perf_counter()
        text.tokenize([t])
        tok_times.append(time.perf_counter() - t0)
    print(f"\n{len(texts)} distinct queries, one per call; torch threads {threads}; "
          f"tokenizer alone p50 {median(tok_times) * 1000:.2f} ms\n")
    report(times, outs)


def full_context_variants(text, tower, threads: int) -> dict:
    """``encode_text`` over the full 77-token context: fp32 (the reference), 1 thread, bf16 autocast, int8."""
    import torch

    from rag.clip.runtime import normalise

    model, tok = text.model, text.tokenize

    def run_full(t: str, dtype: torch.dtype | None = None, nthreads: int | None = None, m=None):
        m = m or model
        tokens = tok([t])
        if nthreads:
            torch.set_num_threads(nthreads)
        try:
            with torch.inference_mode():
                if dtype is None:
                    out = m.encode_text(tokens)
                else:
                    with torch.autocast("cpu", dtype=dtype):
                        out = m.encode_text(tokens)
        finally:
            if nthreads:
                torch.set_num_threads(threads)
        return normalise(out.float().numpy())[0]

    qmodel = copy.deepcopy(tower)
    qmodel.transformer = torch.ao.quantization.quantize_dynamic(qmodel.transformer, {torch.nn.Linear}, dtype=torch.qint8)
    qmodel.transformer.get_cast_dtype = lambda: torch.float32  # quantised Linear has no .weight.dtype
    return {
        REFERENCE: lambda t: run_full(t),
        "fp32, 1 thread": lambda t: run_full(t, nthreads=1),
        "bf16 autocast": lambda t: run_full(t, dtype=torch.bfloat16),
        "int8 dynamic (text Linear layers)": lambda t: run_full(t, m=qmodel),
    }


def padding_free_variants(text, tower, threads: int) -> dict:
    """The text tower cut after the last real token (exact for a causal tower), in fp32, 1 thread and bf16."""
    import torch

    from rag.clip.text import encode_padding_free

    def trunc(texts: list[str], m=text.model):
        return encode_padding_free(m, text.tokenize(texts), text.numerics)

    def trunc_1thread(t: str):
        torch.set_num_threads(1)
        try:
            return trunc([t])[0]
        finally:
            torch.set_num_threads(threads)

    def trunc_bf16(t: str):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return trunc([t])[0]

    bmodel = copy.deepcopy(tower)
    bmodel.to(torch.bfloat16)  # text tower stored in bf16: half the weight bytes read per query
    return {
        "fp32, causal truncation (no padding tokens)": lambda t: trunc([t])[0],
        "fp32, causal truncation, 1 thread": trunc_1thread,
        "bf16 autocast + causal truncation": trunc_bf16,
        "bf16 weights + causal truncation (CLIP_PRECISION=bf16)": lambda t: trunc([t], bmodel)[0],
    }


def interleave(variants: dict, texts: list[str]) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Warm every variant up, then run them query by query in a rotating order: noise hits all alike."""
    for fn in variants.values():
        for t in texts[:3]:
            fn(t)
    times: dict[str, list[float]] = {k: [] for k in variants}
    outs: dict[str, list] = {k: [] for k in variants}
    names = list(variants)
    for i, t in enumerate(texts):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            v = variants[name](t)
            times[name].append(time.perf_counter() - t0)
            outs[name].append(v)
    return times, outs


def report(times: dict[str, list[float]], outs: dict[str, list]) -> None:
    """The table (speed and deviation from fp32 per variant) and the RESULT line."""
    import numpy as np

    ref = np.stack(outs[REFERENCE])
    base = median(times[REFERENCE]) * 1000
    rows = []
    for name in times:
        dev = 1.0 - np.sum(np.stack(outs[name]) * ref, axis=1)
        p50 = median(times[name]) * 1000
        rows.append({
            "variant": name,
            "p50 ms": p50,
            "p95 ms": percentile(times[name], 95) * 1000,
            "speed-up vs fp32": base / p50,
            "max 1-cos": f"{max(float(dev.max()), 0.0):.1e}",
            "median 1-cos": f"{max(float(np.median(dev)), 0.0):.1e}",
            "< 1e-3": "yes" if dev.max() < 1e-3 else "NO",
        })
    print(table(rows))
    app = median(times[APP]) * 1000
    print(f"RESULT text_fp32_ms={base:.1f} text_app_ms={app:.1f} speedup={base / app:.2f}")


def onnx_variants(model, tok, threads: int) -> dict:
    """The text tower in ONNX Runtime: full 77-token context, and padding-free (dynamic length)."""
    import tempfile

    import numpy as np
    import onnxruntime as ort
    import torch
    from open_clip.transformer import text_global_pool

    from rag.clip.runtime import normalise

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, tokens):
            m = self.m
            n = tokens.shape[1]
            x = m.token_embedding(tokens) + m.positional_embedding[:n]
            x = m.transformer(x, attn_mask=m.attn_mask[:n, :n])
            x = text_global_pool(m.ln_final(x), tokens, m.text_pool_type)
            return x @ m.text_projection

    path = Path(tempfile.mkdtemp()) / "text.onnx"
    # The traced attention bakes the sequence length into reshapes: export for the full 77 tokens.
    torch.onnx.export(Text(model).eval(), (tok(["a cat"]),), str(path), input_names=["tokens"],
                      output_names=["features"], dynamic_axes={"tokens": {0: "batch"}},
                      opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run(t: str):
        return normalise(sess.run(None, {"tokens": tok([t]).numpy().astype(np.int64)})[0])[0]

    run("a cat")
    return {"onnxruntime fp32 (77 tokens)": run}


if __name__ == "__main__":
    main()

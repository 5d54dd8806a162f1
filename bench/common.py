"""Helpers shared by the benchmarks: model choice, file selection, timing, memory and tables."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS = ROOT.parent / "shared" / "models"
OPENCLIPART = Path("/usr/share/openclipart/png")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def real_weights() -> Path | None:
    """A real CLIP weights file: CLIP_PRETRAINED if it names one, else ../shared/models."""
    from rag.clip.embedder import find_local_weights

    return find_local_weights(SHARED_MODELS, os.environ.get("CLIP_PRETRAINED", ""))


def choose_model() -> str:
    """Set CLIP_PRETRAINED for this process and its children; return a line saying what was chosen."""
    configured = os.environ.get("CLIP_PRETRAINED", "").strip()
    if configured:
        return f"model: CLIP_PRETRAINED={configured} (from the environment)"
    found = real_weights()
    if found:
        os.environ["CLIP_PRETRAINED"] = str(found)
        return f"model: real weights {found}"
    os.environ["CLIP_PRETRAINED"] = "none"
    return (
        "model: CLIP_PRETRAINED was unset and no real weights were found, so CLIP_PRETRAINED=none "
        "(a seeded random ViT-B-32: same speed as real weights, meaningless similarities)"
    )


def quiet_logs() -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.ERROR)
    for name in ("rag", "root", "pymilvus", "open_clip"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def peak_rss_mb() -> float:
    """This process's peak resident set (Milvus Lite runs in-process, so it is included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import torch

    gpu = f", GPU {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM{gpu}, Python {platform.python_version()}, "
        f"torch {torch.__version__.split('+')[0]}, load avg {os.getloadavg()[0]:.2f}"
    )


def openclipart_files(n: int | None, unique: bool = False) -> list[Path]:
    """``n`` openclipart PNGs spread evenly over the sorted list (every category is represented); all if ``n`` is None.

    ``unique`` drops files whose bytes repeat an earlier file (openclipart has 1,221 such copies,
    which an ingest skips without embedding).
    """
    if not OPENCLIPART.is_dir():
        raise SystemExit(
            f"{OPENCLIPART} is missing: install the images with `apt-get install openclipart-png`."
        )
    return image_files(OPENCLIPART, n, unique)


def image_files(root: Path, n: int | None, unique: bool = False) -> list[Path]:
    """``n`` image files under ``root`` spread evenly over the sorted list; all if ``n`` is None."""
    from rag.media.images import is_image_name

    files = sorted(p for p in Path(root).rglob("*") if p.is_file() and is_image_name(p))
    if unique:
        seen: set[str] = set()
        kept = []
        for p in files:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                kept.append(p)
        files = kept
    if n is None or n >= len(files):
        return files
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def percentile(values: Sequence[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table (readable in a terminal and pasteable into README)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "—"
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def run_child(script: Path, args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (clean memory, no leftover threads); it prints one JSON line."""
    cmd = [sys.executable, str(script), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"child {' '.join(args)} failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            result.setdefault("child_wall_s", time.perf_counter() - t0)
            return result
    raise SystemExit(f"child {' '.join(args)} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def preamble() -> None:
    """What every benchmark prints first: the model it runs (choosing it), the machine, the date."""
    print(choose_model())
    quiet_logs()
    print("machine:", machine())
    print("date:", time.strftime("%Y-%m-%d %H:%M %Z"))

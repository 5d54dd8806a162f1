"""Retrieval quality: does search find the right pictures? Measured through the product's own path.

    CLIP_PRETRAINED=/path/to/ViT-B-32.bin python bench/eval_retrieval.py   # real weights (~10 min on 2 cores)
    python bench/eval_retrieval.py --allow-random                          # the random-model floor
    python bench/eval_retrieval.py --allow-random --per-class 10 --probes 60   # a quick look

Without real CLIP weights (CLIP_PRETRAINED naming a weights file or an open_clip tag, or a
weights file under ../shared/models) the harness refuses to run (exit code 2), because numbers
from an untrained model say nothing about search quality. ``--allow-random`` runs it anyway with
CLIP_PRETRAINED=none (a seeded random ViT-B-32) and labels every number as the random floor.

Two test sets:

* openclipart (Debian's openclipart-png, /usr/share/openclipart/png): folders are the labels. A
  sample (``--per-class`` files from every top/sub folder, ``--limit`` in all) is copied into a
  temporary folder and ingested with ``Studio.ingest_folder`` into a fresh Milvus Lite database.
  The copy is laid out without the category folders (``b0/``, ``b1/``... only keep file names
  apart), so keyword ranking cannot read the answer from the folder names; ``--keep-folders``
  keeps them (an upper bound for libraries whose folders are well named).

  - text -> image: one query per category ("a clip art drawing of birds"), for the 20 or so
    top-level categories (every file below the folder is relevant) and about 40 subfolders
    (files in that subfolder are relevant). ``shapes/stars``, ``special/*`` (gradients,
    patterns), ``unsorted``, ``logos`` and ``buttons`` stay in the library as distractors but
    have no query. Reported: precision@10, recall@100, mAP@100 (AP over the top 100, divided by
    min(relevant, 100)) and dup@10 (share of the top 10 that is a near-copy, cosine >= 0.97, of
    a better-ranked hit).
  - image -> image: ``--probes`` library images as queries (by stored id); precision@10 of the
    other hits having the probe's top-level category (and, for probes in a labelled subfolder,
    its subfolder).
  - text + image: the probe together with its category's text, for several ``image_weight``s.

* creative (bench/creative_queries.json): 30 hand-written searches over assets/sample/ with the
  files that answer them; hit@1/5/10 and MRR@10, also split into the searches that share a word
  with an answer's file name and those that do not.

Each search option of :class:`rag.search.query.Query` is measured against the baseline, CLIP alone
(``words=False``): ``hybrid`` (the default: Milvus' BM25 over each asset's text field, i.e. file
name, folder, tags, embedded text and prompt, ranked with CLIP by one relevance, rag/search/rank.py),
``ensemble`` (prompt ensembling), ``dedupe`` (near-duplicate collapsing) and ``image_weight``.
"words only" ranks by the BM25 side alone: with random weights it is the only number that means
anything, so it is reported on the creative searches too.

The last line is machine-readable: ``RESULT weights=... text_map=... ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OPENCLIPART, ROOT, real_weights, table  # noqa: E402

SAMPLE = ROOT / "assets" / "sample"
CREATIVE = Path(__file__).resolve().with_name("creative_queries.json")

# Folders that are pattern, not subject: kept in the library as distractors, never a query's answer.
ABSTRACT = ("shapes/stars", "special/gradients", "special/patterns")
UNLABELLED = ("special", "unsorted", "logos", "buttons")

# Category folder -> the words a person would use for it. Top-level folders match every file
# below them; "top/sub" folders match the files in that subfolder (and its own subfolders).
LABELS: dict[str, str] = {
    "animals": "animals",
    "animals/birds": "birds",
    "animals/bugs": "bugs and insects",
    "animals/dinosaurs": "dinosaurs",
    "animals/fish": "fish",
    "animals/mammals": "mammals",
    "buildings": "buildings",
    "buildings/furniture": "furniture",
    "buildings/homes": "houses",
    "computer": "computers",
    "computer/buttons": "web buttons",
    "computer/folders": "folder icons",
    "computer/hardware": "computer hardware",
    "containers": "boxes and containers",
    "decorations": "ornamental decorations",
    "education": "education",
    "education/books": "books",
    "electronics": "electronics",
    "electronics/bulb": "light bulbs",
    "food": "food",
    "food/beverages": "drinks",
    "food/breads_and_carbs": "bread",
    "food/desserts": "desserts",
    "food/fruit": "fruit",
    "food/meats_and_eggs": "meat and eggs",
    "food/vegetables": "vegetables",
    "geography": "maps and geography",
    "geography/astronomy": "planets and the moon",
    "office": "office supplies",
    "office/telephone": "telephones",
    "people": "people",
    "people/bodypart": "body parts",
    "people/clothing": "clothing",
    "people/smilies": "smiley faces",
    "people/stickmen": "stick figures",
    "plants": "plants",
    "plants/flowers": "flowers",
    "plants/trees": "trees",
    "recreation": "recreation and leisure",
    "recreation/games": "games",
    "recreation/holiday": "holidays",
    "recreation/music": "music and musical instruments",
    "recreation/party": "party",
    "recreation/religion": "religious symbols",
    "recreation/sports": "sports",
    "recreation/toys": "toys",
    "science": "science",
    "shapes/arrows": "arrows",
    "shapes/callouts": "speech bubbles",
    "shapes/flowchart": "flowchart shapes",
    "shapes/jigsaw": "jigsaw puzzle pieces",
    "signs_and_symbols": "signs and symbols",
    "signs_and_symbols/clocks": "clocks",
    "signs_and_symbols/flags": "flags",
    "signs_and_symbols/led": "LED lights",
    "signs_and_symbols/map_symbols": "map symbols",
    "signs_and_symbols/weather": "weather symbols",
    "tools": "tools",
    "tools/weapons": "weapons",
    "transportation": "transportation",
    "transportation/aiga-symbols": "travel pictograms",
    "transportation/boating": "boats",
    "transportation/roadsigns": "road signs",
    "transportation/vehicles": "vehicles",
}
EVAL_TEMPLATE = "a clip art drawing of {}"
TEXT_DEPTH = 100
IMAGE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
EXIT_NO_WEIGHTS, EXIT_MODEL = 2, 3


# -- metrics ------------------------------------------------------------------------------------
def precision_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the first ``k`` places holding a relevant item (a short list counts as misses)."""
    return sum(1 for x in ranked[:k] if x in relevant) / k


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant items found in the first ``k`` places."""
    if not relevant:
        return float("nan")
    return sum(1 for x in ranked[:k] if x in relevant) / len(relevant)


def average_precision(ranked: Sequence[str], relevant: set[str], k: int | None = None) -> float:
    """AP over the first ``k`` places (all if None): mean of precision@i at each relevant place i,
    divided by min(len(relevant), k) so a perfect top-k scores 1 even when more are relevant."""
    if not relevant:
        return float("nan")
    ranked = list(ranked[:k] if k else ranked)
    found, total = 0, 0.0
    for i, x in enumerate(ranked, start=1):
        if x in relevant:
            found += 1
            total += found / i
    return total / (min(len(relevant), k) if k else len(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int | None = None) -> float:
    for i, x in enumerate(ranked[:k] if k else ranked, start=1):
        if x in relevant:
            return 1.0 / i
    return 0.0


def hit_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if any(x in relevant for x in ranked[:k]) else 0.0


def mean(values: Iterable[float]) -> float:
    vals = [v for v in values if v == v]
    return sum(vals) / len(vals) if vals else float("nan")


# -- model choice ---------------------------------------------------------------------------------
def choose_weights(allow_random: bool) -> tuple[str, bool]:
    """(what CLIP_PRETRAINED will be, whether that is the random model); exits when refused."""
    configured = os.environ.get("CLIP_PRETRAINED", "").strip()
    if configured and configured.lower() != "none":
        return configured, False
    found = None if configured else real_weights()
    if found:
        return str(found), False
    if allow_random:
        return "none", True
    why = "CLIP_PRETRAINED=none asks for the random model" if configured else (
        "no real CLIP weights: CLIP_PRETRAINED is unset and ../shared/models holds no weights file"
    )
    sys.stderr.write(
        f"eval_retrieval: refusing to run: {why}.\n"
        "Retrieval quality measured with an untrained model is meaningless. Set CLIP_PRETRAINED to a\n"
        "ViT-B-32 weights file (or an open_clip tag whose weights are cached), or pass --allow-random\n"
        "to measure the random-model floor.\n"
    )
    raise SystemExit(EXIT_NO_WEIGHTS)


# -- the openclipart sample ---------------------------------------------------------------------
def labels_for(rel: str) -> set[str]:
    """Labels of a file from its path below the openclipart root (``animals/birds/x.png``)."""
    parts = rel.split("/")[:-1]
    folder = "/".join(parts)
    if not parts or parts[0] in UNLABELLED or any(folder == a or folder.startswith(a + "/") for a in ABSTRACT):
        return set()
    out = {parts[0]} if parts[0] in LABELS else set()
    if len(parts) >= 2 and "/".join(parts[:2]) in LABELS:
        out.add("/".join(parts[:2]))
    return out


def spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (deterministic)."""
    if n <= 0 or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def openclipart_sample(per_class: int, limit: int) -> list[Path]:
    """Up to ``per_class`` files from every top/sub folder, then ``limit`` in all (0: no cap)."""
    if not OPENCLIPART.is_dir():
        raise SystemExit(f"{OPENCLIPART} is missing: install the images with `apt-get install openclipart-png`.")
    by_class: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(OPENCLIPART.rglob("*.png")):
        if p.is_file():
            parts = p.relative_to(OPENCLIPART).parts[:-1]
            by_class["/".join(parts[:2])].append(p)
    chosen = sorted(p for files in by_class.values() for p in spread(files, per_class))
    return spread(chosen, limit)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lay_out(files: Sequence[Path], dest: Path, keep_folders: bool) -> None:
    """Copy ``files`` below ``dest``: under their category folders, or in anonymous b0/, b1/..."""
    used: dict[str, int] = {}
    for p in files:
        if keep_folders:
            target = dest / p.relative_to(OPENCLIPART)
        else:
            n = used.get(p.name, 0)
            used[p.name] = n + 1
            target = dest / f"b{n}" / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)


# -- search runs ----------------------------------------------------------------------------------
class Runner:
    """Times searches and counts near-copies in their results with the stored vectors."""

    def __init__(self, studio: Any, dup_cosine: float) -> None:
        import numpy as np

        self.studio = studio
        self.dup_cosine = dup_cosine
        self.vectors: dict[str, Any] = {}
        for rows in studio.store.iter_records(with_vectors=True):
            for r in rows:
                self.vectors[str(r["id"])] = np.asarray(r["vector"], dtype=np.float32)
        self.seconds: list[float] = []

    def search(self, **kwargs: Any) -> list[str]:
        t0 = time.perf_counter()
        hits = self.studio.search(**kwargs)
        self.seconds.append(time.perf_counter() - t0)
        return [h.asset.id for h in hits]

    def dup_share(self, ranked: Sequence[str], k: int = 10) -> float:
        """Share of the first ``k`` hits that are near-copies of a better-ranked hit."""
        import numpy as np

        top = [self.vectors[i] for i in ranked[:k] if i in self.vectors]
        if len(top) < 2:
            return 0.0
        m = np.stack(top) @ np.stack(top).T
        return sum(1 for j in range(1, len(top)) if float(m[j, :j].max()) >= self.dup_cosine) / len(top)

    def pair_share_above(self, threshold: float, n: int = 1500) -> float:
        """Share of library image pairs (a sample) with cosine >= ``threshold``."""
        import numpy as np

        ids = spread(sorted(self.vectors), n)
        m = np.stack([self.vectors[i] for i in ids])
        sims = (m @ m.T)[np.triu_indices(len(ids), 1)]
        return float((sims >= threshold).mean()) if len(sims) else float("nan")

    def take_ms(self) -> float:
        ms = 1000 * mean(self.seconds)
        self.seconds = []
        return ms


# Run per query phrase in this order: the embedder caches text embeddings, so only the first
# variant using a given text pays for embedding it (ms/query of the others is the re-ranking cost).
CLIP_ALONE = {"words": False}
TEXT_VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("baseline", EVAL_TEMPLATE, CLIP_ALONE),
    ("hybrid", EVAL_TEMPLATE, {}),
    ("dedupe", EVAL_TEMPLATE, {"dedupe": True, **CLIP_ALONE}),
    ("bare words", "{}", CLIP_ALONE),
    ("ensemble", "{}", {"ensemble": True, **CLIP_ALONE}),
    ("hybrid+ensemble", "{}", {"ensemble": True}),
]


def eval_text(runner: Runner, relevant: dict[str, set[str]], n_library: int) -> list[dict[str, Any]]:
    rows = []
    labels = sorted(relevant)

    def summary(name: str, per: dict[str, tuple[float, float, float, float]], ms: float) -> dict[str, Any]:
        top = [v for label, v in per.items() if "/" not in label]
        sub = [v for label, v in per.items() if "/" in label]
        return {
            "variant": name,
            "P@10": mean(v[0] for v in per.values()),
            "R@100": mean(v[1] for v in per.values()),
            "mAP@100": mean(v[2] for v in per.values()),
            "mAP top": mean(v[2] for v in top),
            "mAP sub": mean(v[2] for v in sub),
            "dup@10": mean(v[3] for v in per.values()),
            "ms/query": ms,
        }

    chance = {lab: (len(relevant[lab]) / n_library, min(TEXT_DEPTH, n_library) / n_library,
                    len(relevant[lab]) / n_library, float("nan")) for lab in labels}
    rows.append(summary("chance (random order)", chance, float("nan")))
    per: dict[str, dict[str, tuple[float, float, float, float]]] = defaultdict(dict)
    seconds: dict[str, list[float]] = defaultdict(list)
    for n, lab in enumerate(labels, start=1):
        rel = relevant[lab]
        for name, template, options in TEXT_VARIANTS:
            ranked = runner.search(text=template.format(LABELS[lab]), k=TEXT_DEPTH, **options)
            seconds[name].append(runner.seconds.pop())
            per[name][lab] = (precision_at(ranked, rel, 10), recall_at(ranked, rel, TEXT_DEPTH),
                              average_precision(ranked, rel, TEXT_DEPTH), runner.dup_share(ranked))
        if n % 10 == 0 or n == len(labels):
            print(f"  text: {n}/{len(labels)} queries", file=sys.stderr, flush=True)
    for name, _, _ in sorted(TEXT_VARIANTS, key=lambda v: v[0] != "baseline"):
        rows.append(summary(name, per[name], 1000 * mean(seconds[name])))
    rows.append(summary("words only (BM25, no CLIP)", names_only(runner, relevant), float("nan")))
    return rows


def words_only(runner: Runner, text: str, depth: int) -> list[str]:
    """Diagnostic: the ids Milvus' BM25 ranks for ``text`` (the text field alone, no CLIP)."""
    from rag.store import parse_words as parse
    from rag.store.schema import SPARSE_FIELD

    store, sparse = runner.studio.store, parse(text).sparse_text
    if not sparse or not store.full_text:
        return []
    rows = store.client.search(store.collection, data=[sparse], anns_field=SPARSE_FIELD, limit=depth,
                               search_params={"metric_type": "BM25"}, output_fields=["id"])[0]
    return [str(r["id"]) for r in rows]


def names_only(runner: Runner, relevant: dict[str, set[str]]) -> dict[str, tuple[float, float, float, float]]:
    """Rank by BM25 over the text field alone, the rest after it (weights play no part)."""
    per = {}
    for lab, rel in relevant.items():
        ranked = words_only(runner, EVAL_TEMPLATE.format(LABELS[lab]), TEXT_DEPTH)
        per[lab] = (precision_at(ranked, rel, 10), recall_at(ranked, rel, TEXT_DEPTH),
                    average_precision(ranked, rel, TEXT_DEPTH), runner.dup_share(ranked))
    return per


Labels = dict[str, set[str]]  # id -> its labels, or label -> its ids


def eval_images(runner: Runner, probes: list[str], labels: Labels, ids_by_label: Labels) -> list[dict[str, Any]]:
    rows = []
    for name, options in (("baseline", {}), ("dedupe", {"dedupe": True})):
        p_top, p_sub, dups = [], [], []
        for pid in probes:
            ranked = [i for i in runner.search(image_id=pid, k=11, **options) if i != pid][:10]
            top = {lab for lab in labels[pid] if "/" not in lab}
            sub = {lab for lab in labels[pid] if "/" in lab}
            rel_top = set().union(*(ids_by_label[lab] for lab in top)) - {pid}
            p_top.append(precision_at(ranked, rel_top, 10))
            if sub:
                p_sub.append(precision_at(ranked, set().union(*(ids_by_label[lab] for lab in sub)) - {pid}, 10))
            dups.append(runner.dup_share(ranked))
        rows.append({"variant": name, "probes": len(probes), "P@10 top": mean(p_top), "P@10 sub": mean(p_sub),
                     "dup@10": mean(dups), "ms/query": runner.take_ms()})
    print("  image: done", file=sys.stderr, flush=True)
    return rows


def eval_text_image(runner: Runner, probes: list[str], labels: Labels, ids_by_label: Labels) -> list[dict[str, Any]]:
    rows = []
    for w in IMAGE_WEIGHTS:
        p = []
        for pid in probes:
            top = sorted(lab for lab in labels[pid] if "/" not in lab)
            if not top:
                continue
            text = EVAL_TEMPLATE.format(LABELS[top[0]])
            ranked = [i for i in runner.search(text=text, image_id=pid, image_weight=w, k=11) if i != pid][:10]
            p.append(precision_at(ranked, ids_by_label[top[0]] - {pid}, 10))
        rows.append({"image_weight": w, "probes": len(p), "P@10 top": mean(p), "ms/query": runner.take_ms()})
    print("  text+image: done", file=sys.stderr, flush=True)
    return rows


CREATIVE_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("baseline", CLIP_ALONE),
    ("ensemble", {"ensemble": True, **CLIP_ALONE}),
    ("hybrid", {}),
    ("hybrid+ensemble", {"ensemble": True}),
    ("dedupe", {"dedupe": True, **CLIP_ALONE}),
]


def load_creative(path: Path = CREATIVE) -> list[dict[str, Any]]:
    from rag.store.words import STOP_WORDS, words
    from rag.store.words import parse_words as parse

    data = json.loads(path.read_text())
    out = []
    for q in data["queries"]:
        expected = [SAMPLE / e for e in q["expected"]]
        missing = [str(e) for e in expected if not e.is_file()]
        if missing:
            raise SystemExit(f"{path.name}: {q['query']!r} expects files that do not exist: {missing}")
        terms = set(parse(q["query"]).terms) - set(STOP_WORDS)
        lexical = any(terms & set(words(e.stem) + words(e.parent.name)) for e in expected)
        out.append({"query": q["query"], "ids": {sha256(e) for e in expected}, "lexical": lexical})
    return out


def eval_creative(runner: Runner, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, options in [*CREATIVE_VARIANTS, ("words only (BM25, no CLIP)", None)]:
        per = []
        for q in queries:
            if options is None:
                runner.seconds.append(float("nan"))
                ranked = words_only(runner, q["query"], 10)
            else:
                ranked = runner.search(text=q["query"], k=10, **options)
            per.append((q["lexical"], hit_at(ranked, q["ids"], 1), hit_at(ranked, q["ids"], 5),
                        hit_at(ranked, q["ids"], 10), reciprocal_rank(ranked, q["ids"], 10)))
        rows.append({
            "variant": name, "hit@1": mean(v[1] for v in per), "hit@5": mean(v[2] for v in per),
            "hit@10": mean(v[3] for v in per), "MRR@10": mean(v[4] for v in per),
            "MRR word in name": mean(v[4] for v in per if v[0]),
            "MRR no shared word": mean(v[4] for v in per if not v[0]),
            "ms/query": runner.take_ms(),
        })
    print("  creative: done", file=sys.stderr, flush=True)
    return rows


# -- main -----------------------------------------------------------------------------------------
def make_studio(root: Path, pretrained: str, embedder: Any = None) -> Any:
    from rag.core import Settings
    from rag.studio import Studio

    env = dict(os.environ)
    env.update({
        "CLIP_PRETRAINED": pretrained, "BANANA_DATA_DIR": str(root), "MILVUS_URI": str(root / "milvus.db"),
        "MILVUS_COLLECTION": "eval", "LIBRARY_DIR": str(root / "library"), "OUTPUTS_DIR": str(root / "outputs"),
    })
    env.pop("MILVUS_TOKEN", None)
    env.pop("MILVUS_INDEX", None)
    return Studio(Settings.from_env(env), embedder=embedder)


def ingest(studio: Any, folder: Path, what: str) -> tuple[int, float]:
    last = [0.0, -1]

    def progress(done: int, total: int, _msg: str) -> None:
        if done != last[1] and (time.perf_counter() - last[0] > 30 or done == total):
            last[0], last[1] = time.perf_counter(), done
            print(f"  ingest {what}: {done}/{total}", file=sys.stderr, flush=True)

    report = studio.ingest_folder(folder, progress=progress)
    if report.failed:
        print(f"  ingest {what}: {len(report.failed)} failed, e.g. {report.failed[0]}", file=sys.stderr)
    return len(report.added), report.seconds


def delta(rows: list[dict[str, Any]], name: str, metric: str, base: str = "baseline", key: str = "variant") -> float:
    by = {r[key]: r for r in rows}
    return by[name][metric] - by[base][metric]


def verdicts(random: bool, res: dict[str, Any]) -> list[str]:
    text, creative, img, ti = res.get("text"), res.get("creative"), res.get("image"), res.get("text_image")
    out = []
    if text and creative:
        d_map, d_mrr = delta(text, "ensemble", "mAP@100", "bare words"), delta(creative, "ensemble", "MRR@10")
        line = f"ensemble: text mAP@100 {d_map:+.3f} (vs the same words without templates), creative MRR {d_mrr:+.3f}; "
        if random:
            line += ("NOT DECIDED: with random weights this delta is noise. Default stays off; rerun with real "
                     "weights and keep it if both rise.")
        else:
            line += "keep (turn on by default)" if d_map > 0 and d_mrr >= 0 else "drop (leave off)"
        out.append(line)
        d_map, d_mrr = delta(text, "hybrid", "mAP@100"), delta(creative, "hybrid", "MRR@10")
        d_lex = delta(creative, "hybrid", "MRR word in name")
        d_non = delta(creative, "hybrid", "MRR no shared word")
        words_mrr = next(r["MRR@10"] for r in creative if r["variant"].startswith("words only"))
        line = (f"hybrid (words + CLIP, the default) vs CLIP alone: text mAP@100 {d_map:+.3f}, creative MRR {d_mrr:+.3f} "
                f"(searches sharing a word with the file name {d_lex:+.3f}, the rest {d_non:+.3f}); words alone "
                f"reach creative MRR {words_mrr:.3f}; ")
        if random:
            line += ("the word signal is real but here it is fused with a random vector ranking, so the gain over "
                     "real CLIP is not measured; rerun with real weights.")
        else:
            line += "keep on by default" if d_map >= 0 and d_mrr > 0 else "consider turning words off by default"
        out.append(line)
    if img and text:
        d_dup, d_p = delta(img, "dedupe", "dup@10"), delta(img, "dedupe", "P@10 top")
        d_text = delta(text, "dedupe", "dup@10")
        line = f"dedupe: image->image dup@10 {d_dup:+.3f}, P@10 {d_p:+.3f}; text dup@10 {d_text:+.3f}; "
        if random:
            line += (f"with random weights {100 * res['pairs_above_threshold']:.1f}% of all image pairs pass the 0.97 "
                     "cosine cut, so it collapses unrelated pictures: threshold and keep/drop need real weights. "
                     "Default off.")
        else:
            line += "keep as an option (default off: it trades precision for variety)" if d_dup < 0 else "no effect"
        out.append(line)
    if ti:
        best = max(ti, key=lambda r: r["P@10 top"])
        line = f"image_weight: best P@10 at {best['image_weight']} ({best['P@10 top']:.3f}); "
        line += ("NOT DECIDED with random weights; default 0.5 kept." if random
                 else "default 0.5 kept unless the best is clearly better.")
        out.append(line)
    return out


def run_openclipart(args: argparse.Namespace, pretrained: str, tmp: Path, res: dict[str, Any]) -> Any:
    """Sample, lay out and ingest openclipart, run the text, image and text+image evaluations into
    ``res``; return the embedder (loaded) for the next library."""
    from rag.search.rank import DEDUPE_COSINE

    files = openclipart_sample(args.per_class, args.limit)
    ids_by_label: Labels = defaultdict(set)
    labels: Labels = {}
    for p in files:
        fid = sha256(p)
        labels.setdefault(fid, set())
        for lab in labels_for(p.relative_to(OPENCLIPART).as_posix()):
            labels[fid].add(lab)
            ids_by_label[lab].add(fid)
    lay_out(files, tmp / "openclipart", args.keep_folders)
    studio = make_studio(tmp / "db1", pretrained)
    n, secs = ingest(studio, tmp / "openclipart", "openclipart")
    ids = list(labels)  # some files may fail (too large) or repeat another's bytes
    stored = set().union(*(studio.store.existing_ids(ids[i : i + 500]) for i in range(0, len(ids), 500)))
    labels = {i: labs for i, labs in labels.items() if i in stored}
    ids_by_label = defaultdict(set, {lab: ids & stored for lab, ids in ids_by_label.items()})
    relevant = {lab: ids for lab, ids in ids_by_label.items() if len(ids) >= 2}
    n_top = sum("/" not in lab for lab in relevant)
    cap = f", {args.limit} at most" if args.limit else ""
    print(f"openclipart: {len(files)} files sampled ({args.per_class or 'all'} per folder{cap}), {n} distinct "
          f"images ingested in {secs:.0f} s ({n / max(secs, 1e-9):.1f} img/s), {len(relevant)} text queries "
          f"({n_top} top-level, {len(relevant) - n_top} subfolder), "
          f"folders {'kept' if args.keep_folders else 'hidden'}")
    runner = Runner(studio, DEDUPE_COSINE)
    res.update(library=n, ingest_s=secs, queries=len(relevant))
    res["pairs_above_threshold"] = runner.pair_share_above(DEDUPE_COSINE)
    res["text"] = eval_text(runner, relevant, n)
    eligible = sorted(i for i, labs in labels.items() if any("/" not in lab for lab in labs))
    probes = spread(eligible, args.probes)
    res["image"] = eval_images(runner, probes, labels, ids_by_label)
    res["text_image"] = eval_text_image(runner, spread(probes, args.text_image_probes), labels, ids_by_label)
    studio.store.close()
    return studio.embedder


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-random", action="store_true",
                    help="run with CLIP_PRETRAINED=none (the random floor) when no real weights exist")
    ap.add_argument("--per-class", type=int, default=40,
                    help="openclipart files per top/sub folder (default 40; 0: all)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many openclipart files in all (default: no cap)")
    ap.add_argument("--probes", type=int, default=200, help="image->image probe images (default 200)")
    ap.add_argument("--text-image-probes", type=int, default=100, help="probes for the text+image sweep (default 100)")
    ap.add_argument("--keep-folders", action="store_true",
                    help="ingest openclipart under its category folders (folder names then leak the labels)")
    ap.add_argument("--skip-openclipart", action="store_true")
    ap.add_argument("--skip-creative", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every number to this JSON file")
    args = ap.parse_args(argv)

    pretrained, random = choose_weights(args.allow_random)
    os.environ["CLIP_PRETRAINED"] = pretrained

    from common import machine, quiet_logs

    quiet_logs()
    from rag.core import ModelLoadError
    from rag.search.rank import DEDUPE_COSINE

    print(f"machine: {machine()}")
    if random:
        print("model: CLIP_PRETRAINED=none, a seeded RANDOM ViT-B-32. Every number below is the random floor,")
        print("       not search quality. Ensembling, image weights and the dedupe threshold cannot be judged from it.")
    else:
        print(f"model: CLIP_PRETRAINED={pretrained}")
    res: dict[str, Any] = {"weights": "random" if random else pretrained,
                           "args": {k: str(v) for k, v in vars(args).items()}}
    embedder = None
    with tempfile.TemporaryDirectory(prefix="banana-eval-") as tmp:
        tmp_path = Path(tmp)
        try:
            if not args.skip_openclipart:
                embedder = run_openclipart(args, pretrained, tmp_path, res)
            if not args.skip_creative:
                queries = load_creative()
                studio = make_studio(tmp_path / "db2", pretrained, embedder)
                n, secs = ingest(studio, SAMPLE, "sample")
                print(f"creative: {len(queries)} searches over assets/sample ({n} distinct images), "
                      f"{sum(q['lexical'] for q in queries)} share a word with an answer's file name")
                res["creative"] = eval_creative(Runner(studio, DEDUPE_COSINE), queries)
                studio.store.close()
        except ModelLoadError as exc:
            sys.stderr.write(f"eval_retrieval: the model did not load: {exc}\n")
            return EXIT_MODEL

    floor = " (RANDOM FLOOR)" if random else ""
    if "text" in res:
        print(f"\ntext -> image{floor}: one query per category, {res['queries']} queries, library of {res['library']}")
        print(table(res["text"]))
        print(f"\nimage -> image{floor}: same-category precision@10 (the probe itself left out)")
        print(table(res["image"]))
        print(f"\ntext + image{floor}: probe image plus its category's text, by image_weight")
        print(table(res["text_image"]))
    if "creative" in res:
        print(f"\ncreative searches{floor}: bench/creative_queries.json over assets/sample")
        print(table(res["creative"]))
    res["verdicts"] = verdicts(random, res)
    print("\nverdicts:")
    for line in res["verdicts"]:
        print(f"- {line}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))

    parts = [f"weights={'random' if random else 'real'}"]
    if "text" in res:
        base = next(r for r in res["text"] if r["variant"] == "baseline")
        img = next(r for r in res["image"] if r["variant"] == "baseline")
        parts += [f"text_p10={base['P@10']:.3f}", f"text_r100={base['R@100']:.3f}", f"text_map={base['mAP@100']:.3f}",
                  f"img_p10={img['P@10 top']:.3f}",
                  f"hybrid_dmap={delta(res['text'], 'hybrid', 'mAP@100'):+.3f}",
                  f"ensemble_dmap={delta(res['text'], 'ensemble', 'mAP@100', 'bare words'):+.3f}",
                  f"dedupe_ddup={delta(res['image'], 'dedupe', 'dup@10'):+.3f}"]
    if "creative" in res:
        c = next(r for r in res["creative"] if r["variant"] == "baseline")
        parts += [f"creative_hit10={c['hit@10']:.3f}", f"creative_mrr={c['MRR@10']:.3f}",
                  f"hybrid_dmrr={delta(res['creative'], 'hybrid', 'MRR@10'):+.3f}"]
    print("RESULT " + " ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

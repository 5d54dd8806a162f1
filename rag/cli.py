"""Command line: ``python -m rag ingest|search|stats|generate|delete|export|import ...``.

Exit codes: 0 success, 1 a user-facing error (or, for ingest, at least one file failed), 2 usage.
``--json`` prints one JSON document on stdout for scripts; humans get a short table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import ASPECT_RATIOS, Settings
from .errors import BananaError
from .search import hits_frame
from .studio import Studio

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _progress_bar(total_hint: str) -> Callable[[int, int, str], None]:
    from tqdm import tqdm

    bar: list[Any] = []

    def update(done: int, total: int, _message: str) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="img", desc=total_hint, file=sys.stderr))
        bar[0].n = done
        bar[0].refresh()
        if done >= total:
            bar[0].close()

    return update


def cmd_ingest(studio: Studio, args: argparse.Namespace) -> int:
    target = Path(args.path)
    progress = None if args.json or args.quiet else _progress_bar("indexing")
    if target.is_dir():
        report = studio.ingest_folder(target, progress=progress)
    elif target.is_file():
        report = studio.ingest_files([target], folder=args.folder, progress=progress)
    else:
        raise BananaError(f"{target} does not exist.")
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
        for path, reason in report.failed:
            print(f"  failed: {path}: {reason}")
    return EXIT_ERROR if report.failed else EXIT_OK


def cmd_search(studio: Studio, args: argparse.Namespace) -> int:
    if not args.query and not args.image and not args.id:
        raise BananaError("Give a text query, --image PATH or --id ASSET_ID.")
    if args.image and not Path(args.image).is_file():
        raise BananaError(f"--image {args.image} is not a file.")
    hits = studio.search(
        args.query or "",
        image=args.image,
        image_id=args.id or "",
        k=args.k,
        folders=args.folder or (),
        sources=args.source or (),
        image_weight=args.image_weight,
        hybrid=args.names,
        dedupe=args.dedupe,
        ensemble=args.ensemble,
    )
    if args.json:
        _print_json({"query": args.query, "image": args.image, "results": [h.to_dict() for h in hits]})
    elif not hits:
        print("No results: the library is empty or nothing matches the filters.")
    else:
        frame = hits_frame(hits)[["rank", "score", "filename", "folder", "path"]]
        print(frame.to_string(index=False))
    return EXIT_OK


def cmd_stats(studio: Studio, args: argparse.Namespace) -> int:
    stats = studio.stats()
    if args.json:
        _print_json(stats)
    else:
        print(f"{stats['count']} images in {stats['collection']} at {stats['milvus_uri']} (model {stats['model']})")
        for key in ("by_folder", "by_source"):
            for name, n in stats[key].items():
                print(f"  {key[3:]:>6} {name}: {n}")
    return EXIT_OK


def cmd_delete(studio: Studio, args: argparse.Namespace) -> int:
    removed = studio.delete(args.ids)
    if args.json:
        _print_json({"deleted": removed})
    else:
        print(f"{removed} deleted.")
    return EXIT_OK if removed == len(set(args.ids)) else EXIT_ERROR


def cmd_generate(studio: Studio, args: argparse.Namespace) -> int:
    if args.out:
        studio.settings = studio.settings.with_(outputs_dir=Path(args.out))
    ids = [r for r in args.ref if _is_asset_id(r) and not Path(r).exists()]
    files = [r for r in args.ref if r not in ids]
    generation = studio.generate(args.prompt, reference_ids=ids, reference_files=files, aspect_ratio=args.aspect, n=args.n)
    saved = studio.save_generated(generation.paths) if args.save and generation.paths else None
    result = generation.result
    if args.json:
        _print_json(
            {
                "images": [str(p) for p in generation.paths],
                "text": result.text,
                "model": result.model,
                "references": [a.id for a in result.references],
                "saved_to_library": [a.id for a in saved.added] if saved else [],
            }
        )
    else:
        for path in generation.paths:
            print(path)
        if result.text:
            print(f"model: {result.text}")
        if saved:
            print(f"saved to library: {saved.summary()}")
    if not generation.paths:
        print("The model answered without an image" + (f": {result.text}" if result.text else "."), file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_export(studio: Studio, args: argparse.Namespace) -> int:
    from .transfer import export_parquet, stored_model

    store = studio.store
    model = stored_model(store) or studio.embedder.name
    progress = None if args.json or args.quiet else _progress_bar("exporting")
    total = store.count() if progress else 0
    n = export_parquet(
        store, Path(args.file), model=model, batch=args.batch,
        progress=(lambda done: progress(done, total, "")) if progress and total else None,
    )
    if args.json:
        _print_json({"exported": n, "file": str(Path(args.file).resolve()), "collection": studio.settings.collection,
                     "model": model, "dim": studio.embedder.dim})
    else:
        print(f"{n} records (vectors and metadata) exported to {args.file} (model {model}).")
    return EXIT_OK


def cmd_import(studio: Studio, args: argparse.Namespace) -> int:
    from .transfer import import_parquet, parse_rebase, read_header

    rebase = parse_rebase(args.rebase)
    header = read_header(args.file)
    progress = None if args.json or args.quiet else _progress_bar("importing")
    total = int(header["rows"])
    n = import_parquet(
        studio.store, Path(args.file), batch=args.batch, model=studio.embedder.name, force=args.force, rebase=rebase,
        progress=(lambda done: progress(done, total, "")) if progress and total else None,
    )
    if args.json:
        _print_json({"imported": n, "file": str(Path(args.file).resolve()), "collection": studio.settings.collection,
                     "file_model": header["model"], "model": studio.embedder.name, "forced": bool(args.force),
                     "count": studio.store.count()})
    else:
        print(f"{n} records imported into {studio.settings.collection}; it now holds {studio.store.count()}.")
    return EXIT_OK


def _is_asset_id(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description="Banana Studio: index, search and generate images.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[Studio, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        p.set_defaults(func=fn)
        return p

    p = add("ingest", cmd_ingest, "index a folder (recursively) or one image file")
    p.add_argument("path")
    p.add_argument("--folder", default="uploads", help="tag for a single file (folders use their subfolder names)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("search", cmd_search, "search by text, by image, or both")
    p.add_argument("query", nargs="?", default="")
    p.add_argument("-k", type=int, default=9, help="number of results (default 9)")
    p.add_argument("--image", help="an example image (image→image, or text+image with a query)")
    p.add_argument("--id", help="use a library asset as the example image")
    p.add_argument("--image-weight", type=float, default=0.5, help="weight of the image in text+image queries (0-1)")
    p.add_argument("--names", action="store_true", help="also match words in file and folder names (hybrid ranking)")
    p.add_argument("--dedupe", action="store_true", help="collapse near-duplicate images in the results")
    p.add_argument("--ensemble", action="store_true", help="average several prompt templates for the text")
    p.add_argument("--folder", action="append", help="only this folder/tag (repeatable)")
    p.add_argument("--source", action="append", choices=["upload", "folder", "generated"], help="only this source (repeatable)")

    add("stats", cmd_stats, "what the library holds")

    p = add("generate", cmd_generate, "generate images with Gemini from a prompt and reference images")
    p.add_argument("prompt")
    p.add_argument("--ref", action="append", default=[], help="a reference image: a file path or a library asset id (repeatable)")
    p.add_argument("--aspect", default="1:1", choices=ASPECT_RATIOS, help="aspect ratio (default 1:1)")
    p.add_argument("-n", type=int, default=1, help="number of images (default 1)")
    p.add_argument("--out", help="folder for the images (default: the outputs folder)")
    p.add_argument("--save", action="store_true", help="also add the images to the library")

    p = add("delete", cmd_delete, "remove assets by id")
    p.add_argument("ids", nargs="+")

    p = add("export", cmd_export, "write the library (vectors and metadata) to a Parquet file")
    p.add_argument("file", help="the .parquet file to write")
    p.add_argument("--batch", type=int, default=1000, help="records per batch (default 1000)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("import", cmd_import, "add the records of an exported Parquet file to this library (no re-embedding)")
    p.add_argument("file", help="a .parquet file written by export")
    p.add_argument("--batch", type=int, default=1000, help="records per batch (default 1000)")
    p.add_argument("--force", action="store_true", help="import even if the file was embedded with another model")
    p.add_argument("--rebase", metavar="OLD=NEW", help="rewrite image paths starting with OLD to start with NEW")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        studio = Studio(Settings.from_env())
        return int(args.func(studio, args))
    except BananaError as exc:
        if getattr(args, "json", False):
            _print_json({"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

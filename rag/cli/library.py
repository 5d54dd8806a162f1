"""The library commands: ``ingest``, ``search``, ``stats``, ``delete``, ``export``, ``import``, ``reindex``,
``caption``, ``backup`` and ``restore``. Like every command they call :class:`rag.studio.Studio` and print a
short table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from rag.cli.common import EXIT_ERROR, EXIT_OK, Add, print_json, progress_bar
from rag.core import BananaError
from rag.search import Query, hits_frame
from rag.store import KEEP
from rag.studio import Studio


def cmd_ingest(studio: Studio, args: argparse.Namespace) -> int:
    target = Path(args.path)
    progress = None if args.json or args.quiet else progress_bar("indexing")
    if target.is_dir():
        report = studio.ingest_folder(target, progress=progress)
    elif target.is_file():
        report = studio.ingest_files([target], folder=args.folder, progress=progress)
    else:
        raise BananaError(f"{target} does not exist.")
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary())
        for path, reason in report.failed:
            print(f"  failed: {path}: {reason}")
    return EXIT_ERROR if report.failed else EXIT_OK


def cmd_search(studio: Studio, args: argparse.Namespace) -> int:
    query = Query.of({f.name: getattr(args, f.name) for f in fields(Query) if hasattr(args, f.name)})
    if not query.text and query.image is None and not query.image_id:
        raise BananaError("Give a text query, --image PATH or --id ASSET_ID.")
    if query.image is not None and not Path(str(query.image)).is_file():
        raise BananaError(f"--image {query.image} is not a file.")
    found = studio.search_results(query)
    hits = found.hits
    if args.json:
        print_json({"query": query.text, "image": query.image, "results": [h.to_dict() for h in hits],
                     "below_cutoff": found.below_cutoff, "notice": found.notice})
    elif not hits:
        print("No results: the library is empty or nothing matches the filters. " + found.summary())
    else:
        frame = hits_frame(hits)[["rank", "relevance", "match", "score", "filename", "folder", "path"]]
        print(frame.to_string(index=False))
        if found.summary():
            print(found.summary())
    return EXIT_OK


def add_query_options(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`Query` option that has one, with its help text and default."""
    parser.add_argument("text", nargs="?", default="", metavar="query", help=Query.__dataclass_fields__["text"].metadata["help"])
    for f in fields(Query):
        flag = f.metadata.get("flag")
        if not flag:
            continue
        extra = dict(f.metadata["cli"])
        if isinstance(f.default, bool):
            extra["action"] = "store_false" if f.default else "store_true"
        elif isinstance(f.default, tuple):
            extra["action"] = "append"
        elif f.default is not None:
            extra["type"] = type(f.default)
        if "choices" not in extra and extra.get("action", "append") == "append":
            extra.setdefault("metavar", flag.lstrip("-").replace("-", "_").upper())
        default = f" (default {f.default})" if isinstance(f.default, (int, float)) and not isinstance(f.default, bool) else ""
        off = "turn off: " if f.default is True else ""
        parser.add_argument(flag, dest=f.name, help=off + f.metadata["help"] + default, **extra)


def cmd_stats(studio: Studio, args: argparse.Namespace) -> int:
    stats = studio.stats()
    if args.json:
        print_json(stats)
    else:
        print(f"{stats['count']} images in {stats['collection']} at {stats['milvus_uri']} (model {stats['model']}, {stats['precision']})")
        print(stats["words_notice"] or "Word search is on (BM25 over names, tags, embedded text and prompts).")
        print(stats["generation"])
        read = stats["text_in_images"]
        print(f"Text in pictures ({read['engine']}): {read['read']} read, {read['with_text']} with text, "
              f"{read['failed']} could not be read, {read['waiting']} waiting (python -m rag ocr)")
        for key in ("by_folder", "by_source"):
            for name, n in stats[key].items():
                print(f"  {key[3:]:>6} {name}: {n}")
    return EXIT_OK


def cmd_delete(studio: Studio, args: argparse.Namespace) -> int:
    removed = studio.delete(args.ids)
    if args.json:
        print_json({"deleted": removed})
    else:
        print(f"{removed} deleted.")
    return EXIT_OK if removed == len(set(args.ids)) else EXIT_ERROR


def cmd_export(studio: Studio, args: argparse.Namespace) -> int:
    progress = None if args.json or args.quiet else progress_bar("exporting")
    total = studio.count() if progress else 0
    n = studio.export(
        args.file, batch=args.batch, progress=(lambda done: progress(done, total, "")) if progress and total else None
    )
    model = studio.store.model or studio.embedder.name
    if args.json:
        print_json({"exported": n, "file": str(Path(args.file).resolve()), "collection": studio.settings.collection,
                     "model": model, "dim": studio.embedder.dim})
    else:
        print(f"{n} records (vectors and metadata) exported to {args.file} (model {model}).")
    return EXIT_OK


def cmd_import(studio: Studio, args: argparse.Namespace) -> int:
    from rag.store import parse_rebase, read_header

    rebase = parse_rebase(args.rebase)
    header = read_header(args.file)
    progress = None if args.json or args.quiet else progress_bar("importing")
    total = int(header["rows"])
    n = studio.import_(
        args.file, batch=args.batch, force=args.force, rebase=rebase,
        progress=(lambda done: progress(done, total, "")) if progress and total else None,
    )
    if args.json:
        print_json({"imported": n, "file": str(Path(args.file).resolve()), "collection": studio.settings.collection,
                     "file_model": header["model"], "model": studio.embedder.name, "forced": bool(args.force),
                     "count": studio.count()})
    else:
        print(f"{n} records imported into {studio.settings.collection}; it now holds {studio.count()}.")
    return EXIT_OK


def cmd_reindex(studio: Studio, args: argparse.Namespace) -> int:
    bar = None if args.json or args.quiet else progress_bar("re-indexing")
    report = studio.reindex(re_embed=args.re_embed, batch=args.batch, drop_missing=args.drop_missing,
                            progress=(lambda done, total: bar(done, total, "")) if bar else None)
    if args.json:
        print_json({"copied": report.copied, "embedded": report.embedded, "word_search": report.word_search,
                     "left_out": [{"path": p, "reason": r} for p, r in report.left_out], "summary": report.summary()})
    else:
        print(report.summary())
        for path, reason in report.left_out:
            print(f"  left out: {path}: {reason}")
    return EXIT_OK


def cmd_caption(studio: Studio, args: argparse.Namespace) -> int:
    chosen = studio.caption_plan(limit=args.limit)
    if args.dry_run or not chosen.ids:
        if args.json:
            print_json({"images": len(chosen.ids), "model": chosen.model, "estimate_usd": chosen.estimate_usd})
        else:
            print(chosen.summary())
        return EXIT_OK
    if not args.json:
        print(chosen.summary())
    bar = None if args.json or args.quiet else progress_bar("captioning")
    done = studio.caption(chosen, progress=(lambda d, total: bar(d, total, "")) if bar else None)
    if args.json:
        print_json({"captioned": done, "model": chosen.model, "estimate_usd": chosen.estimate_usd})
    else:
        print(f"{done} images captioned (recorded in History).")
    return EXIT_OK


def cmd_backup(studio: Studio, args: argparse.Namespace) -> int:
    path = studio.backup()
    if args.json:
        print_json({"backup": str(path)})
    else:
        print(f"Backed up to {path} (the newest {KEEP} are kept there).")
    return EXIT_OK


def cmd_restore(studio: Studio, args: argparse.Namespace) -> int:
    moved, n = studio.restore_backup(args.file)
    if args.json:
        print_json({"restored": n, "moved_aside": str(moved) if moved else None})
    else:
        aside = f" The previous database was moved to {moved}." if moved else ""
        print(f"{n} records restored; the library holds {studio.count()}.{aside}")
    return EXIT_OK


def add_library_commands(add: Add) -> None:
    p = add("ingest", cmd_ingest, "index a folder (recursively) or one image file")
    p.add_argument("path")
    p.add_argument("--folder", default="uploads", help="tag for a single file (folders use their subfolder names)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("search", cmd_search, "search by text, by image, or both")
    add_query_options(p)

    add("stats", cmd_stats, "what the library holds")

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

    p = add("reindex", cmd_reindex, "rebuild the collection in place (word search; a new CLIP_MODEL re-embeds)")
    p.add_argument("--re-embed", action="store_true", help="embed every file again even if the model is the same")
    p.add_argument("--drop-missing", action="store_true", help="when re-embedding, leave out records whose files are gone")
    p.add_argument("--batch", type=int, default=256, help="records per batch (default 256)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("caption", cmd_caption, "describe images that have no words with CAPTION_MODEL (costs money; see --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="only say how many images and what it would cost")
    p.add_argument("--limit", type=int, default=0, help="caption at most this many images")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    add("backup", cmd_backup, "write a dated backup of the library index into the data folder's backups/")

    p = add("restore", cmd_restore, "replace a damaged Lite library by a backup (the old one is moved aside)")
    p.add_argument("file", nargs="?", help="a .parquet export (default: the newest scheduled backup)")

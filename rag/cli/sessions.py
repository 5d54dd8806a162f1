"""The generation commands: ``generate``, ``refine``, ``history`` and ``sessions``.

Registered by :func:`rag.cli.build_parser`; like every command, they call :class:`rag.studio.Studio`
and print a short table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.cli.common import EXIT_ERROR, EXIT_OK, Add, cli_user, print_json, when
from rag.generation import MAX_IMAGES_PER_RUN, Generation, all_aspect_ratios, all_sizes, retired_models
from rag.studio import Studio


def _report_generation(studio: Studio, args: argparse.Namespace, generation: Generation) -> int:
    """What generate and refine print: the session, each version with its file, the model's words."""
    saved = studio.save_versions([v.id for v in generation.versions]) if args.save and generation.versions else None
    result = generation.result
    if args.json:
        print_json({
            "session": generation.session_id,
            "versions": [{"id": v.id, "label": v.label, "parent": v.parent_id, "path": v.path, "cost_usd": v.cost_usd,
                          "text_check": v.text_check} for v in generation.versions],
            "images": [str(p) for p in generation.paths],
            "text": result.text,
            "model": result.model,
            "references": [a.id for a in result.references],
            "saved_to_library": [a.id for a in saved.added] if saved else [],
        })
    else:
        if generation.session_id:
            print(f"session {generation.session_id}")
        for v in generation.versions:
            print(f"{v.label} {v.id} {v.path}" + (f" · {v.text_check}" if v.text_check else ""))
        if result.text:
            print(f"model: {result.text}")
        if saved:
            print(f"saved to library: {saved.summary()}")
    if not generation.paths:
        print("The model answered without an image" + (f": {result.text}" if result.text else "."), file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _with_outputs(studio: Studio, args: argparse.Namespace) -> None:
    if args.out:
        studio.settings = studio.settings.with_(outputs_dir=Path(args.out))


def cmd_generate(studio: Studio, args: argparse.Namespace) -> int:
    _with_outputs(studio, args)
    ids = [r for r in args.ref if _is_asset_id(r) and not Path(r).exists()]
    files = [r for r in args.ref if r not in ids]
    generation = studio.generate(args.prompt, reference_ids=ids, reference_files=files, aspect_ratio=args.aspect, n=args.n,
                                 model=args.model or "", image_size=args.size or "", session_id=args.session or "",
                                 user=cli_user(), auto_refs=args.auto_refs)
    return _report_generation(studio, args, generation)


def cmd_refine(studio: Studio, args: argparse.Namespace) -> int:
    _with_outputs(studio, args)
    generation = studio.refine(args.session, args.instruction, from_version=args.from_version or "",
                               aspect_ratio=args.aspect or "", image_size=args.size or "", n=args.n,
                               continue_on=args.continue_on or "", user=cli_user())
    return _report_generation(studio, args, generation)


def cmd_models(studio: Studio, args: argparse.Namespace) -> int:
    """Every image model offered, its caps, sizes and prices; which is the default and why."""
    choice, offered = studio.model_choice(), studio.models()
    retired = retired_models() if args.all else []
    if args.json:
        print_json({"default": choice.to_dict(), "listed_by_api": studio.model_list.listed,
                     "models": [m.to_dict() | {"default": m.name == choice.model.name} for m in offered],
                     "retired": [m.to_dict() for m in retired]})
        return EXIT_OK
    print(f"Default: {choice.reason if choice.automatic else f'{choice.model.title}, {choice.reason}'}.")
    if note := studio.model_list.note():
        print(note)
    print("Offered" + (" (as the API lists them for this key):" if studio.model_list.listed else
                       " (the built-in catalogue; the API did not list its models):"))
    for m in offered:
        prices = ", ".join(f"{s} ${p:.3f} (Batch ${m.price(s, batch=True):.3f})" for s, p in m.prices.items())
        mark = "*" if m.name == choice.model.name else " "
        print(f" {mark} {m.title}: up to {m.max_references} references; {prices}")
    for m in retired:
        print(f"   {m.title}: shut down {m.shutdown}; use {m.replacement or 'another model'}")
    return EXIT_OK


def cmd_history(studio: Studio, args: argparse.Namespace) -> int:
    attempts = studio.history(args.limit, user=args.user, day=args.day)
    spend = studio.spend()
    if args.json:
        print_json({"attempts": [vars(a) for a in attempts], **spend})
        return EXIT_OK
    for a in attempts:
        why = f" ({a.reason[:80]})" if a.reason and a.outcome != "ok" else ""
        print(f"{when(a.created)}  {a.user or '-':<10} {a.outcome:<9} {a.images}/{a.requested} img  "
              f"${a.cost_usd:.3f}  {a.model} {a.image_size}  {a.prompt[:50]!r}{why}")
    if not attempts:
        print("No generation requests yet.")
    for row in spend["totals"]:
        print(f"total {row['day']} {row['user'] or '-'}: {row['requests']} requests, {row['images']} images, ${row['cost_usd']:.3f}")
    cap = f" of ${spend['budget']:.2f} (GEMINI_DAILY_BUDGET_USD)" if spend["budget"] is not None else " (no daily cap)"
    print(f"today: ${spend['today']:.3f}{cap}")
    return EXIT_OK


def cmd_sessions(studio: Studio, args: argparse.Namespace) -> int:
    if args.session:
        session, versions = studio.open_session(args.session)
        if args.json:
            print_json({"session": vars(session), "versions": [vars(v) for v in versions]})
        else:
            print(f"session {session.id}: {session.title}")
            for v in versions:
                parent = next((p.label for p in versions if p.id == v.parent_id), "-")
                print(f"  {v.label:<8} {v.id}  from {parent:<8} {v.instruction[:60]!r}  {v.path}")
        return EXIT_OK
    sessions = studio.recent_sessions(args.limit)
    if args.json:
        print_json({"sessions": [vars(s) for s in sessions]})
    elif not sessions:
        print("No sessions yet: `python -m rag generate ...` starts one.")
    for s in [] if args.json else sessions:
        print(f"{s.id}  {when(s.updated)}  {s.n_versions} versions  ${s.cost_usd:.3f}  {s.title[:60]!r}")
    return EXIT_OK


def _is_asset_id(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _generation_options(p: argparse.ArgumentParser, *, aspect_default: str | None) -> None:
    default = f"default {aspect_default}" if aspect_default else "default: the version's"
    p.add_argument("--aspect", default=aspect_default, choices=all_aspect_ratios(), help=f"aspect ratio ({default})")
    p.add_argument("--size", choices=all_sizes(), help="image size, for models that offer several (default 1K or the version's)")
    p.add_argument("-n", type=int, default=1, help=f"number of images, 1 to {MAX_IMAGES_PER_RUN} (default 1)")
    p.add_argument("--out", help="folder for the images (default: the outputs folder)")
    p.add_argument("--save", action="store_true", help="also add the images to the library")


def add_generation_commands(add: Add) -> None:
    """The four commands and their flags."""
    p = add("generate", cmd_generate, "generate images with Gemini from a prompt and reference images (starts a session)")
    p.add_argument("prompt")
    p.add_argument("--ref", action="append", default=[], help="a reference image: a file path or a library asset id (repeatable)")
    p.add_argument("--auto-refs", type=int, default=0, metavar="N",
                   help="also send the N library images the prompt's search ranks first (within the model's cap)")
    p.add_argument("--model", help="image model (default: GEMINI_MODEL, or with auto the preferred one the API lists)")
    p.add_argument("--session", help="add to this session instead of starting one")
    _generation_options(p, aspect_default="1:1")

    p = add("refine", cmd_refine, "a follow-up instruction about a version of a session (the model gets the conversation)")
    p.add_argument("session", help="session id (or its first characters)")
    p.add_argument("instruction")
    p.add_argument("--from", dest="from_version", metavar="VERSION", help="the version to refine: id, v2, or 2 (default the newest)")
    p.add_argument("--continue-on", metavar="MODEL",
                   help="start a new branch from the version's image on this model (when its own model is shut down)")
    _generation_options(p, aspect_default=None)

    p = add("models", cmd_models, "the image models offered, their caps, sizes and prices, and which is the default")
    p.add_argument("--all", action="store_true", help="also list the models Google has shut down, with their dates")

    p = add("history", cmd_history, "every generation request with its outcome and cost; totals per day and user")
    p.add_argument("--limit", type=int, default=50, help="newest N requests (default 50)")
    p.add_argument("--user", help="only this user's requests")
    p.add_argument("--day", metavar="YYYY-MM-DD", help="only this day's requests")

    p = add("sessions", cmd_sessions, "recent sessions, or one session's versions")
    p.add_argument("session", nargs="?", help="show this session's versions")
    p.add_argument("--limit", type=int, default=20, help="newest N sessions (default 20)")

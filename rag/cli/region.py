"""The ``edit`` command: change one region of a session's version, remove it, or expand the canvas.

``python -m rag edit SESSION --mask mask.png "make the label say Oolong" [--from v2]``; ``--remove`` fills the
masked region from its surroundings; ``--expand 16:9`` grows the picture to that shape (no mask). Registered by
:func:`rag.cli.build_parser`; it calls ``studio.regions`` and prints what ``refine`` prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.cli.common import Add, cli_user
from rag.cli.sessions import _report_generation, _with_outputs
from rag.core import BananaError
from rag.generation import all_aspect_ratios, all_sizes
from rag.studio import Studio


def cmd_edit(studio: Studio, args: argparse.Namespace) -> int:
    """The estimate first (on stderr, so ``--json`` stays one document), then the request."""
    mode = "expand" if args.expand else "remove" if args.remove else "edit"
    if mode != "expand" and not args.mask:
        raise BananaError("Give the mask with --mask FILE: a PNG of the picture's size, white (or painted) where "
                          "the picture should change.")
    if args.mask and not Path(args.mask).is_file():
        raise BananaError(f"The mask {args.mask} is not a readable file.")
    _with_outputs(studio, args)
    cost = studio.regions.estimate(model=args.model or "", image_size=args.size or "")
    print(f"Estimated cost: about ${cost:.3f} for one image.", file=sys.stderr)
    generation = studio.regions.edit(
        args.session, args.instruction or "", [Path(args.mask)] if args.mask and mode != "expand" else [],
        from_version=args.from_version or "", mode=mode, expand_to=args.expand or "", model=args.model or "",
        image_size=args.size or "", user=cli_user())
    return _report_generation(studio, args, generation)


def add_region_commands(add: Add) -> None:
    """``edit`` and its flags."""
    p = add("edit", cmd_edit, "change one region of a version (a mask), remove it, or expand the canvas")
    p.add_argument("session", help="session id (or its first characters)")
    p.add_argument("instruction", nargs="?", default="",
                   help="what to do with the region (optional with --remove and --expand)")
    p.add_argument("--mask", metavar="FILE", help="PNG of the picture's size: white or painted where it should change")
    p.add_argument("--from", dest="from_version", metavar="VERSION", help="the version to edit: id, v2, or 2 (default the newest)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--remove", action="store_true", help="remove what the mask covers, continuing the background")
    how.add_argument("--expand", metavar="RATIO", choices=all_aspect_ratios(),
                     help="grow the picture to this aspect ratio, keeping every original pixel (no mask)")
    p.add_argument("--model", help="image model (default: the one that made the version)")
    p.add_argument("--size", choices=all_sizes(), help="image size asked of the model, for models that offer several")
    p.add_argument("--out", help="folder for the image and its mask (default: the outputs folder)")
    p.add_argument("--save", action="store_true", help="also add the new version to the library")

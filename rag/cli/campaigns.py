"""The campaign commands: ``campaign`` (plan, dry-run, run or resume one) and ``campaigns`` (list, or one's items).

Registered by :func:`rag.cli.build_parser`; they call :class:`rag.studio.Studio` like every command.
"""

from __future__ import annotations

import argparse

from rag.campaigns import FIELDS, Plan
from rag.cli.common import EXIT_ERROR, EXIT_OK, Add, cli_user, print_json, progress_bar, when
from rag.core import BananaError
from rag.generation import MAX_IMAGES_PER_RUN, all_aspect_ratios, all_sizes
from rag.studio import Studio


def _ratios(text: str) -> list[str]:
    ratios = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in ratios if r not in all_aspect_ratios()]
    if unknown or not ratios:
        raise BananaError(f"--aspect takes ratios separated by commas, such as 1:1,4:5,9:16; {unknown[0] if unknown else text!r}"
                          f" is not one of {', '.join(all_aspect_ratios())}.")
    return ratios


def _print_plan(plan: Plan) -> None:
    for n, (asset, ratio, prompt) in enumerate(plan.requests, start=1):
        print(f"#{n:<3} {asset.filename} {ratio:<5} {prompt!r}")
    if plan.shared:
        print(f"shared references with every request: {', '.join(a.filename for a in plan.shared)}")
    print(plan.summary())


def _report(studio: Studio, campaign_id: str, args: argparse.Namespace) -> int:
    campaign, items = studio.open_campaign(campaign_id)
    checks = studio.campaign_review(campaign.id).text_checks  # version id -> "text as asked", "text differs: '...'"
    if args.json:
        print_json({"campaign": vars(campaign), "items": [vars(i) for i in items], "text_checks": checks})
    else:
        for i in items:
            why = f" ({i.error[:120]})" if i.error else ""
            text = f" · {checks[i.version_ids[-1]]}" if i.version_ids and i.version_ids[-1] in checks else ""
            print(f"#{i.seq:<3} {i.status:<8} {i.asset_name} {i.aspect_ratio} {len(i.version_ids)} image(s){why}{text}")
        job = f" (Batch job {campaign.batch_job}: {campaign.batch_state})" if campaign.batch_job else ""
        print(f"campaign {campaign.id} {campaign.name!r}: {campaign.status}{job}")
    waiting = campaign.status == "batch"  # submitted: the results come later (`campaign --resume ID` asks)
    return EXIT_OK if waiting or all(i.status == "done" for i in items) else EXIT_ERROR


def cmd_campaign(studio: Studio, args: argparse.Namespace) -> int:
    if args.resume and args.regenerate:  # paid: the items whose latest image was rejected, or whose text differs
        studio.regenerate_rejected(args.resume, which=args.regenerate.replace("-", " "))
        return _report(studio, args.resume, args)
    if args.resume:
        campaign = studio.open_campaign(args.resume)[0]
    else:
        if not args.template:
            raise BananaError("Give --template, such as --template \"A premium ad photo of {name} on a marble counter\".")
        plan = studio.plan_campaign(args.template, folder=args.folder or "", query=args.query or "", tag=args.tag or "",
                                    ids=args.id, refs=args.ref, name=args.name or "", model=args.model or "",
                                    aspect_ratios=_ratios(args.aspect), per_item=args.per_item, image_size=args.size or "",
                                    batch=args.batch, user=cli_user(), limit=args.limit)
        if args.dry_run and args.json:
            print_json({**plan.to_dict(), "dry_run": True})
        elif args.dry_run:
            _print_plan(plan)
        if args.dry_run:
            return EXIT_OK
        campaign = studio.start_campaign(plan)
        if not args.json:
            print(f"campaign {campaign.id}: {plan.summary()}")
    progress = None if args.json or args.quiet else progress_bar("campaign")
    studio.resume_campaign(campaign.id, progress=progress)
    return _report(studio, campaign.id, args)


def cmd_campaigns(studio: Studio, args: argparse.Namespace) -> int:
    if args.campaign:
        _report(studio, args.campaign, args)
        return EXIT_OK
    reviews = [studio.campaign_review(c.id) for c in studio.campaigns(args.limit)]
    if args.json:
        print_json({"campaigns": [{**vars(r.campaign), "items": r.counts, "spent_usd": r.spent} for r in reviews]})
    elif not reviews:
        print("No campaigns yet: `python -m rag campaign --folder FOLDER --template \"...\"` starts one.")
    for r, c in [] if args.json else [(r, r.campaign) for r in reviews]:
        print(f"{c.id}  {when(c.created)}  {c.status:<9} {r.counts['done']}/{r.total} items  ${r.spent:.2f} of "
              f"~${c.estimate_usd:.2f}  {c.name[:50]!r}")
    return EXIT_OK


def add_campaign_commands(add: Add) -> None:
    p = add("campaign", cmd_campaign, "one prompt template over many library images (a folder, a search, a tag)")
    chosen = p.add_mutually_exclusive_group()
    chosen.add_argument("--folder", help="every image in this library folder and its subfolders")
    chosen.add_argument("--query", help="the images this search finds (--limit of them)")
    chosen.add_argument("--tag", help="every image with this tag")
    chosen.add_argument("--id", action="append", default=[], help="a library asset id (repeatable)")
    chosen.add_argument("--resume", metavar="CAMPAIGN", help="continue a campaign from its first unfinished item")
    p.add_argument("--template", help=f"the prompt, with placeholders {', '.join('{' + f + '}' for f in FIELDS)}")
    p.add_argument("--name", help="the campaign's name (saved images carry it)")
    p.add_argument("--ref", action="append", default=[], help="a shared reference sent with every item: an asset id (repeatable)")
    p.add_argument("--aspect", default="1:1", help="aspect ratios, comma-separated (default 1:1), e.g. 1:1,4:5,9:16")
    p.add_argument("--per-item", type=int, default=1, help=f"images per item and ratio, 1 to {MAX_IMAGES_PER_RUN} (default 1)")
    p.add_argument("--model", help="image model (default GEMINI_MODEL)")
    p.add_argument("--size", choices=all_sizes(), help="image size, for models that offer several")
    p.add_argument("--limit", type=int, default=20, help="images a --query campaign covers (default 20)")
    p.add_argument("--batch", action="store_true", help="Gemini Batch mode: about half price, results within 24 h")
    p.add_argument("--dry-run", action="store_true", help="print the requests and their cost; send nothing")
    p.add_argument("--regenerate", choices=["rejected", "text-differs"],
                   help="with --resume: a new image for each item whose latest was rejected, or whose text differs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("campaigns", cmd_campaigns, "campaigns, newest first, or one campaign's items")
    p.add_argument("campaign", nargs="?", help="show this campaign's items")
    p.add_argument("--limit", type=int, default=20, help="newest N campaigns (default 20)")

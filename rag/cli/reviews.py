"""The review-link commands: ``share`` (a link for people outside the team), ``shares`` (the links, or one link's
history of decisions) and ``unshare`` (revoke one).

Registered by :func:`rag.cli.build_parser`; they call ``Studio.reviews`` like the app. The link is answered by
the running app at ``/review/<token>``; the token is printed once, here, and kept only as a hash.
"""

from __future__ import annotations

import argparse
import time

from rag.cli.common import EXIT_OK, Add, print_json, when
from rag.core import BananaError
from rag.studio import Studio

DEFAULT_DAYS = 7


def _ids(text: str) -> list[str]:
    return [i.strip() for i in (text or "").split(",") if i.strip()]


def cmd_share(studio: Studio, args: argparse.Namespace) -> int:
    if not (args.campaign or args.session or args.ids):
        raise BananaError("Say what to share: --campaign ID, --session ID or --ids A,B.")
    share = studio.reviews.share(campaign=args.campaign or "", session=args.session or "", ids=_ids(args.ids),
                                 days=args.days, password=args.password or "", comments=args.comments,
                                 downloads=args.downloads, watermark=args.watermark)
    if args.json:
        print_json(share.to_dict())
        return EXIT_OK
    link = share.link
    can = "approve, reject and comment" if link.comments else "look (view only)"
    print(share.url)
    print(f"link {link.id}: {link.title!r}, reviewers may {can}; valid until {when(link.expires)}"
          f"{'; password protected' if link.password else ''}. The token is shown only now; "
          f"`python -m rag unshare {link.id}` revokes it.")
    if not studio.settings.public_url:
        print("(People outside this machine need the app's public address: set BANANA_PUBLIC_URL, or use the "
              "app's --share link, and replace the start of the link.)")
    return EXIT_OK


def cmd_shares(studio: Studio, args: argparse.Namespace) -> int:
    if args.link:
        link, items, notes = studio.reviews.history(args.link)
        labels = {i.n: i.label for i in items}
        if args.json:
            print_json({**link.to_dict(), "items": [vars(i) for i in items], "notes": [vars(n) for n in notes]})
            return EXIT_OK
        print(f"link {link.id} ({link.state()}): {link.title!r}, {len(items)} image(s)")
        for n in notes:
            said = n.verdict or "comment"
            print(f"{when(n.created)}  {n.reviewer[:40]}  {said:<8} #{n.n} {labels.get(n.n, '')[:40]}"
                  f"{': ' + n.comment[:200] if n.comment else ''}{'  (accepted)' if n.accepted else ''}")
        if not notes:
            print("Nobody has said anything on this link yet.")
        return EXIT_OK
    links = studio.reviews.links(args.limit)
    if args.json:
        print_json({"links": [link.to_dict() for link in links]})
    elif not links:
        print("No review links yet: `python -m rag share --campaign ID` makes one.")
    for link in [] if args.json else links:
        print(f"{link.id}  {when(link.created)}  {link.state():<8} until {time.strftime('%Y-%m-%d', time.localtime(link.expires))}"
              f"  {link.kind:<8} {link.title[:50]!r}")
    return EXIT_OK


def cmd_unshare(studio: Studio, args: argparse.Namespace) -> int:
    link = studio.reviews.revoke(args.link)
    if args.json:
        print_json(link.to_dict())
    else:
        print(f"link {link.id} revoked: it now reads \"not valid\".")
    return EXIT_OK


def add_review_commands(add: Add) -> None:
    p = add("share", cmd_share, "a review link for people outside the team (a campaign, a session, or images)")
    chosen = p.add_mutually_exclusive_group()
    chosen.add_argument("--campaign", metavar="ID", help="the campaign's results")
    chosen.add_argument("--session", metavar="ID", help="the session's generated versions")
    chosen.add_argument("--ids", metavar="A,B", help="library asset ids, comma-separated")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"how long the link works (default {DEFAULT_DAYS}, "
                   "at most REVIEW_MAX_DAYS)")
    p.add_argument("--password", help="a password reviewers must type (6 characters or more)")
    p.add_argument("--comments", action="store_true", help="reviewers may approve, reject and comment (else: view only)")
    p.add_argument("--downloads", action="store_true", help="reviewers may download the originals (else: previews only)")
    p.add_argument("--watermark", action="store_true", help="previews carry \"For review\" and the title")

    p = add("shares", cmd_shares, "review links, newest first, or one link's history of decisions")
    p.add_argument("link", nargs="?", help="a link's id, token or address: show its decisions and comments")
    p.add_argument("--limit", type=int, default=50, help="newest N links (default 50)")

    p = add("unshare", cmd_unshare, "revoke a review link (its id, token or address)")
    p.add_argument("link", help="the link's id, token or address")

"""The ``credentials`` command: what a file's content credentials (C2PA) say, and whether they validate.

Registered by :func:`rag.cli.build_parser`; it calls ``Studio.credentials`` like every command. Exit code 0 when
the file carries credentials that validate; 1 when they do not match the file, or it carries none.
"""

from __future__ import annotations

import argparse

from rag.cli.common import EXIT_ERROR, EXIT_OK, Add, print_json
from rag.media import credentials
from rag.studio import Studio

RELATIONS = {"parentOf": "the image it was edited from", "inputTo": "given to the model", "componentOf": "a part of it"}


def cmd_credentials(studio: Studio, args: argparse.Namespace) -> int:
    found = studio.credentials.read_file(args.file)
    if args.json:
        record = found.to_dict() | {"local_signer": studio.credentials.is_local(found)} if found else None
        print_json({"file": args.file, "credentials": record})
    elif found is None:
        print(f"{args.file}: no content credentials")
    else:
        for line in describe(studio, found):
            print(line)
    return EXIT_OK if found is not None and found.matches else EXIT_ERROR


def describe(studio: Studio, c: credentials.Credentials) -> list[str]:
    """The credentials as lines for a terminal."""
    verdict = {"trusted": "valid, signed by a certificate on a trust list", "valid": "valid: the file is as it was signed",
               "invalid": "INVALID: the credentials do not match this file"}[c.state]
    lines = [f"content credentials: {verdict}"]
    if c.problems:
        lines.append(f"  problems: {', '.join(c.problems)}")
    made = f"{c.generator}" + (f" (model {', '.join(c.agents)})" if c.agents else "")
    lines += [f"  made with: {made}" if made.strip() else "", f"  AI-generated: {'yes' if c.ai_generated else 'no'}"
              + (f" ({', '.join(t.rsplit('/', 1)[-1] for t in c.source_types)})" if c.source_types else ""),
              f"  actions: {', '.join(c.actions)}" if c.actions else "", f"  prompt: {c.prompt}" if c.prompt else ""]
    for ingredient in c.ingredients:
        own = {"valid": ", with its own credentials", "invalid": ", whose own credentials do not match it"}.get(
            ingredient.credentials, "")
        lines.append(f"  made from: {ingredient.title} ({RELATIONS.get(ingredient.relationship, ingredient.relationship)}{own})")
    if c.signer:
        local = studio.credentials.is_local(c)
        lines.append(f"  signed by: {c.signer}" + (" (this app's local certificate)" if local else ""))
    if c.state != "trusted":
        lines.append("  the signer's certificate is on no trust list: this proves the file is unchanged since it was"
                     " signed, not who signed it")
    return [line for line in lines if line]


def add_credentials_commands(add: Add) -> None:
    p = add("credentials", cmd_credentials, "what a file's content credentials (C2PA) say, and whether they validate")
    p.add_argument("file", help="an image file (PNG, JPEG, WebP, ...)")

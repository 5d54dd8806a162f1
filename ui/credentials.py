"""The "Content credentials" section of an image's page: what the file's C2PA credentials say, whether they
still match the image, and what a signature on no trust list proves (integrity, not identity).

``render`` makes the section (inside the page, ``ui/asset.py``); ``listen`` fills it whenever the page opens an
image; ``record`` is what ``/asset`` adds for API callers. Everything shown comes from strangers' files, so it
is escaped; nothing of the signing key is ever read here.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.studio import Studio

from .common import md_escape, user_errors

RELATIONS = {"parentOf": "edited from", "inputTo": "reference", "componentOf": "part of it"}
NOT_TRUSTED = ("It is signed with a certificate that is on no trust list, so it proves the image has not changed "
               "since it was signed (integrity), not who signed it (identity).")
LOCAL = ("Signed with this app's own local certificate: that proves the image has not changed since it was "
         "signed (integrity), not who made it (identity); other validators show it as untrusted.")


def render() -> Any:
    return gr.Markdown(elem_id="asset-credentials")


def section(studio: Studio, asset_id: str) -> str:
    """The section's Markdown for a library image ("" when its file carries no credentials)."""
    found = studio.credentials.read_asset(asset_id) if asset_id else None
    if found is None:
        return ""
    if not found.matches:  # the failure codes are for the API and the CLI; the page says it in words
        head = ("**✗ The credentials do not match this image**: the file was changed after it was signed, or its "
                "credentials are damaged. What they say below is not proven.")
    elif found.state == "trusted":
        head = "**✓ Valid**, signed by a certificate on a trust list."
    else:
        head = "**✓ Valid**: the image is exactly as it was signed."
    facts = [f"**Made with** {md_escape(found.generator)}" if found.generator else "",
             f"**Model** {md_escape(', '.join(found.agents))}" if found.agents else "",
             "**AI-generated**" if found.ai_generated else ""]
    lines = ["#### Content credentials", head, " · ".join(f for f in facts if f)]
    if found.prompt:
        lines.append(f"**Prompt** {md_escape(found.prompt)}")
    if found.ingredients:
        lines.append("**Made from** " + "; ".join(_ingredient(i) for i in found.ingredients))
    if found.signer:
        lines.append(f"**Signed by** {md_escape(found.signer)}")
    if found.state != "trusted":
        lines.append(LOCAL if studio.credentials.is_local(found) else NOT_TRUSTED)
    return "  \n".join(line for line in lines if line)


def _ingredient(ingredient: Any) -> str:
    own = {"valid": ", with its own credentials", "invalid": ", whose own credentials do not match it"}
    relation = RELATIONS.get(ingredient.relationship, ingredient.relationship)
    return f"{md_escape(ingredient.title)} ({md_escape(relation)}{own.get(ingredient.credentials, '')})"


def record(studio: Studio, asset_id: str) -> dict[str, Any] | None:
    """What ``/asset`` says of an image's credentials: the facts, ``matches`` and ``ai_generated`` (None: none)."""
    found = studio.credentials.read_asset(asset_id)
    return None if found is None else found.to_dict() | {"local_signer": studio.credentials.is_local(found)}


def listen(studio: Studio, current: Any, shown: Any) -> None:
    """Fill the section whenever the page opens an image."""

    @user_errors
    def show(asset_id: str) -> str:
        return section(studio, asset_id)

    current.change(show, current, shown, api_name=False)

"""Words a designer or a tool wrote into an image file: XMP, IPTC and PNG text chunks.

Lightroom, Bridge and most asset managers write titles, descriptions and keywords as XMP (Dublin
Core) and IPTC; generators and editors write PNG text chunks. Used by :mod:`rag.images` on an image
it has already opened, so no file is opened twice. XMP is read with a pattern, not an XML parser:
Pillow's ``getxmp`` needs defusedxml, and only the text of a few elements is wanted.
"""

from __future__ import annotations

import html
import re
from typing import Any

MAX_CHARS = 4000  # of embedded text kept per image
# PNG text keys that hold words about the picture ("parameters": a Stable Diffusion prompt).
PNG_KEYS = ("Title", "Description", "Comment", "Keywords", "Subject", "parameters", "prompt")
# IPTC-IIM datasets: object name, headline, keywords, caption/abstract.
IPTC_KEYS = ((2, 5), (2, 105), (2, 25), (2, 120))
_XMP_ELEMENTS = re.compile(
    r"<(dc:title|dc:description|dc:subject|photoshop:Headline|Iptc4xmpCore:Location)\b[^>]*>(.*?)</\1>", re.S
)
_XMP_ATTRS = re.compile(r'\b(?:photoshop:Headline|xmp:Label)="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")


def _xmp_words(packet: Any) -> list[str]:
    if isinstance(packet, bytes):
        packet = packet.decode("utf-8", "replace")
    if not isinstance(packet, str):
        return []
    found = [_TAG.sub(" ", body) for _, body in _XMP_ELEMENTS.findall(packet)] + _XMP_ATTRS.findall(packet)
    return [html.unescape(" ".join(text.split())) for text in found]


def _iptc_words(img: Any) -> list[str]:
    from PIL import IptcImagePlugin  # here: importing a plugin registers it process-wide

    try:
        info = IptcImagePlugin.getiptcinfo(img) or {}
    except Exception:  # noqa: BLE001 - hostile IPTC blocks raise all sorts
        return []
    out: list[str] = []
    for key in IPTC_KEYS:
        values = info.get(key)
        for value in values if isinstance(values, list) else [values] if values else []:
            out.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return out


def embedded_text(img: Any) -> str:
    """The titles, descriptions and keywords embedded in an opened Pillow image, one line ("" if none)."""
    info = getattr(img, "info", {}) or {}
    parts = [str(info[k]) for k in PNG_KEYS if isinstance(info.get(k), str)]
    parts += _xmp_words(info.get("xmp") or info.get("XML:com.adobe.xmp"))
    if getattr(img, "format", "") in ("JPEG", "MPO", "TIFF"):
        parts += _iptc_words(img)
    text = " ".join(" ".join(p.split()) for p in dict.fromkeys(parts) if p.strip())
    return text[:MAX_CHARS]

"""Words a designer or a tool wrote into an image file: XMP, IPTC and PNG text chunks.

Lightroom, Bridge and most asset managers write titles, descriptions and keywords as XMP (Dublin
Core) and IPTC; generators and editors write PNG text chunks. Used by :mod:`rag.media.images` on an image
it has already opened, so no file is opened twice. XMP is parsed with defusedxml (as Pillow's own
``getxmp`` does): linear time, no entity expansion, and a packet cut at :data:`MAX_XMP_BYTES` first,
so a hostile file cannot hold the interpreter (a pattern over a packet of 25,000 repeated openings took
30 s). A packet that is not well-formed XML gives no words.
"""

from __future__ import annotations

from typing import Any

from defusedxml import ElementTree

MAX_CHARS = 4000  # of embedded text kept per image
# PNG text keys that hold words about the picture ("parameters": a Stable Diffusion prompt).
PNG_KEYS = ("Title", "Description", "Comment", "Keywords", "Subject", "parameters", "prompt")
# IPTC-IIM datasets: object name, headline, keywords, caption/abstract.
IPTC_KEYS = ((2, 5), (2, 105), (2, 25), (2, 120))
MAX_XMP_BYTES = 256 * 1024  # Adobe's packets hold titles and keywords in the first few KB
_DC, _PS = "{http://purl.org/dc/elements/1.1/}", "{http://ns.adobe.com/photoshop/1.0/}"
_XMP_ELEMENTS = {f"{_DC}title", f"{_DC}description", f"{_DC}subject", f"{_PS}Headline",
                 "{http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/}Location"}
_XMP_ATTRS = (f"{_PS}Headline", "{http://ns.adobe.com/xap/1.0/}Label")


def _xmp_words(packet: Any) -> list[str]:
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "replace")
    if not isinstance(packet, bytes):
        return []
    try:
        root = ElementTree.fromstring(packet[:MAX_XMP_BYTES].strip(b"\x00 \t\r\n"))
    except Exception:  # noqa: BLE001 - malformed, cut short, or a DTD/entity defusedxml refuses: no words
        return []
    found: list[str] = []
    for element in root.iter():
        if element.tag in _XMP_ELEMENTS:
            found.append(" ".join(element.itertext()))
        found += [element.attrib[a] for a in _XMP_ATTRS if a in element.attrib]
    return [" ".join(text.split()) for text in found]


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

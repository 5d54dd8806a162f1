"""Content credentials (C2PA): signing the images the app makes, and reading what an image's credentials say.

Everything goes through c2pa-python, the Content Authenticity Initiative's bindings (``Builder``, ``Signer``,
``Reader``, ``Context``; c2pa-python 0.38.1, c2pa-rs 0.91.3). The manifest is the SDK's own JSON manifest
definition; nothing here writes the C2PA format by hand. Facts relied on, each checked on 2026-12-07:

- an AI image is a ``c2pa.created`` action whose ``digitalSourceType`` is IPTC's ``trainedAlgorithmicMedia``;
  an edit of an earlier image is ``c2pa.opened`` (its parent, a ``parentOf`` ingredient) then ``c2pa.edited``
  (c2pa-python docs/intents.md and README, https://github.com/contentauth/c2pa-python; the CAI actions
  reference, https://opensource.contentauthenticity.org/docs/manifest/assertions-actions);
- an action's ``softwareAgent`` takes the same structure as ``claim_generator_info`` (name, version), and its
  ``description`` is free text (same CAI reference): the model id and the prompt go there;
- ``Context`` settings: ``builder.thumbnail.enabled`` false (a thumbnail grew a 3 KB PNG to 200 KB and cost
  0.15 s a signature here), ``verify.remote_manifest_fetch`` and ``verify.ocsp_fetch`` false, so reading a
  stranger's file never makes the server fetch anything (c2pa-python docs/settings.md);
- ``Reader.get_validation_state()`` is ``Trusted``, ``Valid`` or ``Invalid``: a signer on no trust list reads
  ``Valid`` with the failure code ``signingCredential.untrusted``; a changed byte reads ``Invalid`` with
  ``assertion.dataHash.mismatch`` (seen with this version).

The IPTC ``DigitalSourceType`` also goes into the file's XMP (:func:`ai_xmp`), which social platforms read
for their "AI info" labels: property ``Iptc4xmpExt:DigitalSourceType``, namespace
``http://iptc.org/std/Iptc4xmpExt/2008-02-29/`` (the IPTC Photo Metadata TechReference,
https://www.iptc.org/std/photometadata/specification/iptc-pmd-techreference_2024.1.json, and the IPTC Extension
schema's namespace as exiv2 lists it, https://exiv2.org/tags-xmp-iptcExt.html; both checked 2026-12-07).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.core import BananaError
from rag.media.certificates import SigningKey

IPTC_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = IPTC_TYPES + "trainedAlgorithmicMedia"
AI_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")  # the last part of a type's URL
APP = "Banana Studio"
AI_TAG = "ai-generated"
UNTRUSTED = "signingCredential.untrusted"  # a signer on no trust list: the file itself is intact
MAX_TEXT, MAX_ITEMS = 300, 40  # of what a stranger's manifest may put on a page
_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
             "builder": {"thumbnail": {"enabled": False}}}
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
        ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp", ".avif": "image/avif", ".heic": "image/heic"}


@dataclass(frozen=True)
class Ingredient:
    """An image another was made from. Signing: ``path`` is read for its hash and its own credentials ("" when
    only its name is known). Reading: ``credentials`` says whether it carried some ("valid", "invalid" or "")."""

    title: str
    relationship: str = "inputTo"  # parentOf (the image edited), inputTo (a reference the model was given)
    path: str = ""
    credentials: str = ""


@dataclass(frozen=True)
class Facts:
    """What one generated image's credentials say: the model, the prompt ("" to leave it out), the references,
    and the version it refines (an edit) or None (made new)."""

    model: str
    prompt: str = ""
    title: str = ""
    references: tuple[Ingredient, ...] = ()
    parent: Ingredient | None = None
    version: str = ""


@dataclass(frozen=True)
class Credentials:
    """What a file's C2PA manifest says and whether it validates. ``state``: "trusted" (a signer on a trust
    list), "valid" (intact, signer on no trust list) or "invalid" (the file changed since it was signed, or the
    manifest is broken: ``problems`` has the codes)."""

    state: str
    generator: str = ""  # the app that signed: name and version
    app: str = ""  # its name alone
    agents: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    source_types: tuple[str, ...] = ()
    prompt: str = ""
    ingredients: tuple[Ingredient, ...] = ()
    signer: str = ""
    signed_at: str = ""
    problems: tuple[str, ...] = ()
    serial: str = ""  # the signing certificate's serial number

    @property
    def matches(self) -> bool:
        """Whether the file is the one that was signed."""
        return self.state != "invalid"

    @property
    def ai_generated(self) -> bool:
        return any(t.rstrip("/").rsplit("/", 1)[-1] in AI_TYPES for t in self.source_types)

    def words(self) -> str:
        """What word search should find the image by: "ai-generated" and the app that made it (not this app's own
        name, which every image it makes would otherwise match)."""
        return " ".join(p for p in (AI_TAG if self.ai_generated else "", "" if self.app == APP else self.app) if p)

    def to_dict(self) -> dict[str, Any]:
        """A record for the API and ``--json`` (an ingredient's ``path`` is a signing detail, left out)."""
        ingredients = [{k: v for k, v in asdict(i).items() if k != "path"} for i in self.ingredients]
        return {**asdict(self), "ingredients": ingredients, "matches": self.matches, "ai_generated": self.ai_generated}


def tagged(meta: dict[str, Any], ai: bool) -> dict[str, Any]:
    """``meta`` with the "ai-generated" tag when ``ai``: the tag filter of the Library and Search finds AI images."""
    tags = [t for t in meta.get("tags") or [] if isinstance(t, str)]
    return {**meta, "tags": [*tags, AI_TAG]} if ai and AI_TAG not in tags else meta


def ai_xmp() -> str:
    """An XMP packet saying the picture is AI-made (IPTC DigitalSourceType), for the PNG's ``XML:com.adobe.xmp``."""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
            ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
            f' Iptc4xmpExt:DigitalSourceType="{TRAINED}"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def mime_of(path: str | Path) -> str:
    return MIME.get(Path(path).suffix.lower(), "")


def sign(data: bytes, mime: str, facts: Facts, key: SigningKey) -> bytes:
    """``data`` (PNG, JPEG or WebP bytes) with a signed C2PA manifest of ``facts``; the pixels are untouched.
    An ingredient whose file is gone or unreadable is named without its hash. Raises :class:`BananaError` (a
    sentence) when c2pa cannot sign."""
    import c2pa

    every = ([("parent", facts.parent)] if facts.parent else []) + [(f"ref{i}", r) for i, r in enumerate(facts.references)]
    streamed = [(label, i) for label, i in every if i.path and mime_of(i.path) and Path(i.path).is_file()]
    info = c2pa.C2paSignerInfo(alg=c2pa.C2paSigningAlg[key.alg.upper()], sign_cert=key.chain, private_key=key.key,
                               ta_url=None)
    while True:
        named = [(label, i) for label, i in every if (label, i) not in streamed]
        out = io.BytesIO()
        try:
            with c2pa.Context.from_dict(_SETTINGS) as ctx, c2pa.Signer.from_info(info) as signer, \
                    c2pa.Builder(_definition(facts, mime, every, named), ctx) as builder:
                for label, ingredient in streamed:
                    _add(builder, label, ingredient)
                builder.sign(signer, mime, io.BytesIO(data), out)
            return out.getvalue()
        except _Unreadable as bad:
            streamed.remove(bad.item)  # c2pa could not read that file: named only, and signed again
        except c2pa.C2paError as exc:
            raise BananaError(f"content credentials could not be added ({_said(exc)})") from None


def _definition(facts: Facts, mime: str, every: list[tuple[str, Ingredient]],
                named: list[tuple[str, Ingredient]]) -> dict[str, Any]:
    """The SDK's manifest definition: the app, the action (created, or opened and edited) and the ingredients
    known only by name (the others are added from their files)."""
    inputs = [label for label, i in every if label != "parent"]
    made = {"digitalSourceType": TRAINED, "softwareAgent": {"name": facts.model or APP},
            **({"description": facts.prompt} if facts.prompt else {}),
            **({"parameters": {"ingredientIds": inputs}} if inputs else {})}
    actions = ([{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}}, {"action": "c2pa.edited", **made}]
               if facts.parent else [{"action": "c2pa.created", **made}])
    return {"claim_generator_info": [{"name": APP, **({"version": facts.version} if facts.version else {})}],
            "title": facts.title or "image", "format": mime,
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
            "ingredients": [_ingredient_json(label, i) | {"format": mime_of(i.title) or "image/png"} for label, i in named]}


def _ingredient_json(label: str, ingredient: Ingredient) -> dict[str, Any]:
    return {"title": ingredient.title[:MAX_TEXT] or "image", "relationship": ingredient.relationship, "label": label}


class _Unreadable(Exception):
    def __init__(self, item: tuple[str, Ingredient]) -> None:
        self.item = item


def _add(builder: Any, label: str, ingredient: Ingredient) -> None:
    """The file as an ingredient: c2pa hashes it and keeps its own manifest store, if it has one."""
    import c2pa

    try:
        with open(ingredient.path, "rb") as stream:
            builder.add_ingredient(_ingredient_json(label, ingredient), mime_of(ingredient.path), stream)
    except (OSError, c2pa.C2paError):
        raise _Unreadable((label, ingredient)) from None


def _said(exc: Exception) -> str:
    return " ".join(str(exc).split())[:MAX_TEXT] or type(exc).__name__


def read(source: str | Path | bytes) -> Credentials | None:
    """What the file's content credentials say, or None when it carries none (or is a kind c2pa cannot read).
    Credentials that cannot even be parsed read as "invalid": they do not match the image."""
    import c2pa

    stream = io.BytesIO(source) if isinstance(source, bytes) else None
    try:
        with c2pa.Context.from_dict(_SETTINGS) as ctx, (stream or open(source, "rb")) as data:
            reader = c2pa.Reader.try_create(data, context=ctx)
            if reader is None:
                return None
            with reader:
                store, state = json.loads(reader.json()), reader.get_validation_state() or ""
    except (c2pa.C2paError.NotSupported, c2pa.C2paError.ManifestNotFound, OSError):
        return None
    except c2pa.C2paError as exc:
        return Credentials(state="invalid", problems=(f"the credentials cannot be read: {_said(exc)}",))
    return _credentials(store, state)


def _credentials(store: dict[str, Any], state: str) -> Credentials:
    """The facts of a manifest store's active manifest (the Reader's JSON), bounded: strangers write it."""
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "") or {}
    actions = [a for s in manifest.get("assertions") or [] if str(s.get("label", "")).startswith("c2pa.actions")
               for a in (s.get("data") or {}).get("actions") or [] if isinstance(a, dict)][:MAX_ITEMS]
    failures = tuple(dict.fromkeys(c for c in _failures(store) if c != UNTRUSTED))
    verdict = "invalid" if failures or state.lower() == "invalid" else "trusted" if state.lower() == "trusted" else "valid"
    info = (manifest.get("claim_generator_info") or [{}])[0] or {}
    generator = " ".join(str(info.get(k) or "") for k in ("name", "version")).strip() or str(manifest.get("claim_generator") or "")
    signature = manifest.get("signature_info") or {}
    signer = " · ".join(dict.fromkeys(str(signature[k]) for k in ("common_name", "issuer") if signature.get(k)))
    return Credentials(
        state=verdict, generator=_text(generator), app=_text(info.get("name") or generator), agents=_texts(_agent(a) for a in actions),
        actions=_texts(a.get("action") for a in actions), source_types=_texts(a.get("digitalSourceType") for a in actions),
        prompt=_text(next((a.get("description") for a in actions if a.get("description")), "")),
        ingredients=tuple(_ingredient(i) for i in (manifest.get("ingredients") or [])[:MAX_ITEMS] if isinstance(i, dict)),
        signer=_text(signer), signed_at=_text(signature.get("time") or ""), problems=failures[:MAX_ITEMS],
        serial=_text(signature.get("cert_serial_number") or ""),
    )


def _failures(record: dict[str, Any]) -> list[str]:
    """The failure codes of a store or an ingredient: ``validation_results`` (C2PA 2) or ``validation_status`` (1)."""
    results = record.get("validation_results") or {}
    codes = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure") or [] if isinstance(f, dict)]
    codes += [s.get("code") for s in record.get("validation_status") or [] if isinstance(s, dict)
              and not str(s.get("code", "")).endswith((".match", ".validated", ".insideValidity", ".trusted"))]
    return [str(c) for c in codes if c]


def _agent(action: dict[str, Any]) -> str:
    agent = action.get("softwareAgent")
    return str(agent.get("name") or "") if isinstance(agent, dict) else str(agent or "")


def _ingredient(raw: dict[str, Any]) -> Ingredient:
    own = ""
    if raw.get("active_manifest") or raw.get("manifest_data"):
        own = "invalid" if any(c != UNTRUSTED for c in _failures(raw)) else "valid"
    return Ingredient(title=_text(raw.get("title") or "untitled"), relationship=_text(raw.get("relationship") or ""),
                      credentials=own)


def _text(value: Any) -> str:
    return " ".join(str(value or "").split())[:MAX_TEXT]


def _texts(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in (_text(v) for v in values) if t))


def check(key: SigningKey) -> None:
    """Sign a small picture with ``key`` and read it back: c2pa's own verdict on a certificate, asked at start,
    since c2pa refuses a self-signed signer or a missing key usage only when it signs. Raises a sentence."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 200, 0)).save(buf, "PNG")
    found = read(sign(buf.getvalue(), "image/png", Facts(model=APP), key))
    if found is None or not found.matches:
        problems = ", ".join(found.problems) if found else "nothing could be read back"
        raise BananaError(f"content credentials signed with it do not validate ({problems})")

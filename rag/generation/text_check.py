"""The text check on generated images: the words a prompt asks for, read back from the picture the model made.

Image models garble lettering quietly (a tin labelled "Acme Oolong" comes back reading "Acrne Oolong"). A
prompt asks for text by quoting it (``a tin labelled "Acme Oolong"``, or a campaign template's quotes); a
refinement without quotes of its own keeps asking for its parent's. Each new version's picture is read
(:func:`rag.media.reader_for`) and gets one of three verdicts in words: "text as asked", "text differs:
'Acrne Oolong'" (what the picture says instead) or "no text found". Versions whose prompts quote nothing
are not read and carry no verdict. The verdict is stored beside the version in ``sessions.db``
(:meth:`rag.generation.sessions.SessionStore.record_text_checks`), so the version strip, a campaign's
review, the API and the CLI all read the same one.

Comparison ignores case, accents, spaces and punctuation (OCR often drops the space between two words),
and takes "i" and "l" for one letter (OCR's commonest confusion, which a model's garbling rarely is).
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rag.core import ImageError, Settings
from rag.generation.sessions import SessionStore, Version
from rag.media import reader_for

log = logging.getLogger(__name__)

AS_ASKED, DIFFERS, NO_TEXT, UNCHECKED = "text as asked", "text differs", "no text found", "text not checked"
MAX_ASKED = 10  # quoted strings checked per prompt
_QUOTED = re.compile(r'"([^"\n]{1,200})"|“([^”\n]{1,200})”')  # straight or curly double quotes, on one line


@dataclass(frozen=True)
class TextCheck:
    """One verdict: what the prompt asked for, what the picture says, and the words a person reads."""

    verdict: str  # one of AS_ASKED, DIFFERS, NO_TEXT, UNCHECKED
    asked: tuple[str, ...]
    found: tuple[str, ...]
    wrong: tuple[str, ...] = ()  # the picture's lines nearest each asked text it does not hold
    why: str = ""  # for UNCHECKED

    @property
    def label(self) -> str:
        if self.verdict == DIFFERS:
            return f"{DIFFERS}: " + ", ".join(f"'{w}'" for w in self.wrong)
        return f"{UNCHECKED} ({self.why})" if self.verdict == UNCHECKED and self.why else self.verdict


def asked_text(prompt: str) -> list[str]:
    """The quoted strings of a prompt or template: ``a tin labelled "Acme Oolong"`` -> ``["Acme Oolong"]``."""
    found = [(a or b).strip() for a, b in _QUOTED.findall(prompt or "")]
    return list(dict.fromkeys(t for t in found if _key(t)))[:MAX_ASKED]


def asked_in_branch(prompt: str, parent: Version | None, versions: Mapping[str, Version]) -> list[str]:
    """What a turn asks for: its own quotes, else those of the nearest turn above it in its branch that quoted."""
    asked = asked_text(prompt)
    while not asked and parent is not None:
        asked = asked_text(parent.instruction)
        parent = versions.get(parent.parent_id or "")
    return asked


def _key(text: str) -> str:
    """Letters and digits only, lower case, accents and the i/l confusion folded."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", plain).replace("l", "i")


def compare(asked: Sequence[str], lines: Sequence[str]) -> TextCheck:
    """The verdict on a picture whose OCR gave ``lines``, for a prompt that asked for ``asked``."""
    found = tuple(line for line in lines if _key(line))
    if not found:
        return TextCheck(NO_TEXT, tuple(asked), ())
    whole = _key("".join(found))
    missing = [a for a in asked if _key(a) not in whole]
    if not missing:
        return TextCheck(AS_ASKED, tuple(asked), found)
    return TextCheck(DIFFERS, tuple(asked), found, tuple(dict.fromkeys(_nearest(a, found) for a in missing)))


def _nearest(asked: str, lines: Sequence[str]) -> str:
    """The stretch of the picture's text most like ``asked``: a line, or as many words of one as ``asked`` has."""
    width = max(1, len(asked.split()))
    spans = list(lines)
    for line in lines:
        words = line.split()
        spans += [" ".join(words[i:i + width]) for i in range(len(words) - width + 1)]
    return max(spans, key=lambda s: difflib.SequenceMatcher(None, _key(asked), _key(s)).ratio())[:80]


def check_file(settings: Settings, asked: Sequence[str], path: str) -> TextCheck:
    """Read one generated picture and compare; a failure to read is a verdict of its own, never an error."""
    reader = reader_for(settings)
    if reader is None:
        return TextCheck(UNCHECKED, tuple(asked), (), why="reading text is off")
    try:
        reading = reader.read(path)
    except ImageError as exc:
        log.warning("The text of generated image %s could not be read: %s", path, exc)
        return TextCheck(UNCHECKED, tuple(asked), (), why=str(exc))
    return compare(asked, reading.lines)


def check_versions(store: SessionStore, settings: Settings, asked: Sequence[str], versions: list[Version]) -> list[Version]:
    """Check each new version's picture against ``asked`` (nothing to do when it is empty); the verdicts are
    stored with the versions, and the versions come back carrying them."""
    if not asked or not versions:
        return versions
    checks = {v.id: check_file(settings, asked, v.path) for v in versions}
    try:
        store.record_text_checks({vid: (c.verdict, c.label, list(c.asked), list(c.found)) for vid, c in checks.items()})
    except Exception as exc:  # noqa: BLE001 - a verdict is advice: the paid, saved versions stand without it
        log.warning("The text check could not be recorded: %s", exc)
    return [replace(v, text_check=checks[v.id].label) for v in versions]


def differs(label: str) -> bool:
    """Whether a version's verdict says its text differs from what was asked."""
    return label.startswith(DIFFERS)

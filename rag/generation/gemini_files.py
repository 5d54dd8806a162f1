"""Long conversations through the Files API: earlier images go by reference once a request would be too big.

A refinement resends every earlier image of its branch. Inline, that passes Gemini's request size
after a handful of turns at 2K, so when a request would exceed :data:`MAX_REQUEST_BYTES` the oldest
images of the conversation are uploaded once (``client.files.upload``) and sent as ``file_data``
parts instead, each keeping its ``thought_signature``. Uploads are remembered by content until
shortly before the file's expiry (48 hours); a file the server no longer knows is uploaded again.
The sessions database keeps every turn inline, so nothing depends on a file staying on Google's side.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Google's "File input methods" page (ai.google.dev/gemini-api/docs/file-input-methods) and the 2026 announcement
# "Increased file size limits and expanded inputs support in Gemini API" (blog.google), stored copies read with the
# search tool 2026-12-06: use the Files API once a request's total size passes 100 MB (earlier pages said 20 MB).
MAX_REQUEST_BYTES = 100 * 1024 * 1024
# Files API: a file is kept 48 hours (same sources). Re-upload a little before that rather than race the expiry.
FILE_LIFETIME_S = 48 * 3600
EXPIRY_MARGIN_S = 3600


def b64_len(n: int) -> int:
    """Bytes of ``n`` bytes once base64-encoded, as they travel inline."""
    return 4 * -(-n // 3)


def turn_bytes(turn: dict[str, Any]) -> int:
    """A stored turn's size on the wire (its JSON, images as base64)."""
    return len(json.dumps(turn))


@dataclass(frozen=True)
class Uploaded:
    uri: str
    mime_type: str
    expires: float  # time.time()


class FileCache:
    """Images uploaded to the Files API, by content, until shortly before they expire."""

    def __init__(self, upload: Callable[[bytes, str], Uploaded], *, clock: Callable[[], float] = time.time) -> None:
        self._upload = upload
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, Uploaded] = {}
        self.uploads = 0  # how many uploads were made (a session's images go up once)

    def uri(self, data: bytes, mime_type: str) -> Uploaded:
        key = hashlib.sha256(data).hexdigest()
        with self._lock:
            known = self._files.get(key)
            if known is not None and known.expires - EXPIRY_MARGIN_S > self._clock():
                return known
        made = self._upload(data, mime_type)
        with self._lock:
            self._files[key] = made
            self.uploads += 1
        return made

    def forget(self, uris: Sequence[str]) -> None:
        """The server no longer knows these files: upload them again next time."""
        gone = set(uris)
        with self._lock:
            self._files = {k: f for k, f in self._files.items() if f.uri not in gone}


def sdk_uploader(client: Any, clock: Callable[[], float] = time.time) -> Callable[[bytes, str], Uploaded]:
    """``FileCache``'s upload through the SDK's ``files.upload`` (resumable, from memory)."""

    def upload(data: bytes, mime_type: str) -> Uploaded:
        made = client.files.upload(file=io.BytesIO(data), config={"mime_type": mime_type})
        expires = made.expiration_time.timestamp() if made.expiration_time else clock() + FILE_LIFETIME_S
        return Uploaded(str(made.uri), str(made.mime_type or mime_type), expires)

    return upload


def offload(turns: list[Any], excess: int, cache: FileCache, types: Any) -> list[Any]:
    """``turns`` (SDK ``Content``) with their oldest inline images sent as files until ``excess`` bytes are saved.

    Returns the new turns; a part keeps its ``thought_signature`` and ``thought`` flags, only its data moves.
    """
    out = []
    for turn in turns:
        parts = []
        for part in turn.parts or []:
            blob = part.inline_data
            if excess > 0 and blob is not None and blob.data:
                made = cache.uri(blob.data, blob.mime_type or "image/png")
                excess -= b64_len(len(blob.data))
                part = part.model_copy(update={"inline_data": None,
                                               "file_data": types.FileData(file_uri=made.uri, mime_type=made.mime_type)})
            parts.append(part)
        out.append(turn.model_copy(update={"parts": parts}))
    return out


def file_uris(turns: list[Any]) -> list[str]:
    return [p.file_data.file_uri for t in turns for p in t.parts or [] if p.file_data is not None]


def is_file_gone(code: int, message: str) -> bool:
    """Whether an API error says a file the request names is gone (expired or deleted), not the model."""
    lowered = message.lower()
    return code in (400, 403, 404) and "file" in lowered and "models/" not in lowered

"""A fake Gemini REST server for tests: real HTTP, real SDK, no network.

It speaks just enough of ``POST /{v1beta|v1}/models/{model}:generateContent`` for the
google-genai SDK: every request is recorded (path, headers, JSON body) and answered from a
script, a queue of :class:`Reply` objects (status, JSON body, optional delay). When the
queue is empty the ``fallback`` reply is used (by default a 500 saying nothing was
scripted), so a test that makes more calls than it planned fails loudly.

``route`` answers by content (a campaign's items run in any order) before the queue is asked, and
``answered`` lists the generateContent requests whose 200 reply was sent in full: what was generated
(and paid for), where ``requests`` also holds calls the client gave up on.

The models it serves follow the real API as of 2026-12-06 (../shared/notes/gemini.md): ``GET
/{version}/models`` (the SDK's ``models.list``) lists :attr:`FakeGemini.models` (today's GA image
models, :data:`TODAY`) and :attr:`FakeGemini.text_models`, and generateContent for any other model
is a 404 NOT_FOUND, as the real API answers for a shut-down id. ``list_error`` makes listing fail
(a key without the permission, a gateway that hides it) while the models still answer; ``models =
None`` is a gateway that cannot list and answers for any model. Listing calls go to
``model_lists``, not ``requests``, so ``requests`` holds exactly the paid calls.

The Files API takes uploads (Batch JSONL files, a long conversation's images) and generateContent
resolves ``file_data`` parts against them: an unknown or ``expire()``d file is a 403, as Google
answers; a request over :data:`MAX_REQUEST_BYTES` is a 400, as Google's size limit answers.

Use the ``fake_gemini`` fixture (defined at the bottom) or ``with FakeGemini() as fake:``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, MutableSequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_PATH_RE = re.compile(r"^/(?P<version>v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_BATCH_RE = re.compile(r"^/(?P<version>v1beta|v1|v1alpha)/batches/(?P<name>[^/:]+)$")
_UPLOAD_RE = re.compile(r"^/upload/(?P<version>v1beta|v1|v1alpha)/files$")
_DOWNLOAD_RE = re.compile(r"^(?:/download)?/(?P<version>v1beta|v1|v1alpha)/files/(?P<name>[^/:]+):download$")
_LIST_RE = re.compile(r"^/(?P<version>v1beta|v1|v1alpha)/models/?$")
# Today's GA image models and a current text model (Google's deprecations and models pages, read 2026-12-06).
TODAY = ["gemini-3.1-flash-image", "gemini-3-pro-image"]
TEXT_MODELS = ["gemini-3.1-flash-lite"]
MAX_REQUEST_BYTES = 100 * 1024 * 1024  # Google's file-input-methods page, read 2026-12-06


def b64decode_any(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (the SDK sends URL-safe)."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def _get(d: dict[str, Any], snake: str, camel: str) -> Any:
    """Read a field the SDK may spell either way."""
    return d.get(snake, d.get(camel))


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is
    delay: float = 0.0  # seconds to wait before answering
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    body: Any  # parsed JSON or None
    version: str | None = None
    model: str | None = None

    def parts(self) -> list[dict[str, Any]]:
        """All parts of all contents, in order."""
        out: list[dict[str, Any]] = []
        for content in (self.body or {}).get("contents", []) or []:
            out.extend(content.get("parts", []) or [])
        return out

    def texts(self) -> list[str]:
        return [p["text"] for p in self.parts() if "text" in p]

    def inline(self) -> list[tuple[str, bytes]]:
        """``(mime_type, decoded bytes)`` for each inline-data part."""
        out = []
        for part in self.parts():
            blob = _get(part, "inline_data", "inlineData")
            if blob is not None:
                out.append((_get(blob, "mime_type", "mimeType"), b64decode_any(blob.get("data", ""))))
        return out

    def generation_config(self) -> dict[str, Any]:
        return _get(self.body or {}, "generation_config", "generationConfig") or {}

    def image_config(self) -> dict[str, Any]:
        return _get(self.generation_config(), "image_config", "imageConfig") or {}

    def aspect_ratio(self) -> str | None:
        return _get(self.image_config(), "aspect_ratio", "aspectRatio")

    def image_size(self) -> str | None:
        return _get(self.image_config(), "image_size", "imageSize")

    def modalities(self) -> list[str]:
        return list(_get(self.generation_config(), "response_modalities", "responseModalities") or [])

    def contents(self) -> list[dict[str, Any]]:
        """The turns sent, oldest first (each ``{"role": ..., "parts": [...]}``)."""
        return list((self.body or {}).get("contents", []) or [])

    def roles(self) -> list[str]:
        return [c.get("role", "") for c in self.contents()]

    def file_uris(self) -> list[str]:
        """The ``file_data`` URIs the request names, in order."""
        found = (_get(p, "file_data", "fileData") for p in self.parts())
        return [_get(f, "file_uri", "fileUri") for f in found if f]

    def signatures(self) -> list[bytes]:
        """Every thought signature sent back, decoded, in order."""
        found = (_get(p, "thought_signature", "thoughtSignature") for p in self.parts())
        return [b64decode_any(sig) for sig in found if sig]


# ----------------------------------------------------------------------------- replies


def image_part(data: bytes, mime_type: str = "image/png", *, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode()}}
    if thought:
        part["thought"] = True
    return part


def candidate_reply(parts: list[dict[str, Any]], finish: str = "STOP", **extra: Any) -> Reply:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
    candidate.update(extra)
    return Reply(200, {"candidates": [candidate], "modelVersion": "fake", "responseId": "fake-1"})


def image_reply(*images: bytes, text: str | None = None, mime_type: str = "image/png") -> Reply:
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    parts += [image_part(img, mime_type) for img in images]
    return candidate_reply(parts)


def signed_reply(image: bytes, signature: bytes, *, thought: str = "Planning the edit.", text: str | None = None) -> Reply:
    """What a Gemini 3 image model sends: a thought summary, then the image carrying its thought signature."""
    parts: list[dict[str, Any]] = [{"text": thought, "thought": True}]
    if text:
        parts.append({"text": text})
    parts.append({**image_part(image), "thoughtSignature": base64.b64encode(signature).decode()})
    return candidate_reply(parts)


def models_body(names: list[str], text_models: list[str] = TEXT_MODELS) -> dict[str, Any]:
    """A ``models.list`` page: the image models named, the text models, and an embedding model the app must skip."""
    models = [{"name": f"models/{n}", "displayName": n, "supportedGenerationMethods": ["generateContent", "countTokens"]}
              for n in [*names, *text_models]]
    models.append({"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]})
    return {"models": models}


def text_reply(text: str, finish: str = "STOP") -> Reply:
    return candidate_reply([{"text": text}], finish)


def blocked_prompt_reply(reason: str = "SAFETY", message: str | None = None) -> Reply:
    feedback: dict[str, Any] = {"blockReason": reason}
    if message:
        feedback["blockReasonMessage"] = message
    return Reply(200, {"promptFeedback": feedback, "modelVersion": "fake"})


def finish_reply(reason: str, text: str | None = None) -> Reply:
    candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
    if text:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    return Reply(200, {"candidates": [candidate], "modelVersion": "fake"})


def error_reply(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return Reply(code, {"error": error})


def rate_limit_reply(retry_delay: str | None = "2s") -> Reply:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}] if retry_delay else []
    return error_reply(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", details)


def png_bytes(size: tuple[int, int] = (8, 8), color: tuple[int, ...] = (255, 200, 0)) -> bytes:
    """A tiny real PNG (what the model would return)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB" if len(color) == 3 else "RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- server


class FakeGemini:
    """The server. ``base_url`` goes into ``Settings.gemini_base_url``."""

    def __init__(self, keep: int | None = None) -> None:
        # ``keep``: remember only the newest requests (a long benchmark run would otherwise hold every body)
        self.requests: MutableSequence[Recorded] = deque(maxlen=keep) if keep else []
        self.answered: MutableSequence[Recorded] = deque(maxlen=keep) if keep else []  # whole reply sent
        self.route: Callable[[Recorded], Reply | None] | None = None  # answers by content before the queue
        self.batches: dict[str, list[dict[str, Any]]] = {}  # Batch jobs: name -> their inlined requests
        self.batch_states: list[str] = []  # what the next polls of a job say; the last one stays
        self.batch_delay = 0.0  # seconds a job's creation takes to answer (two submissions can overlap)
        self.files: dict[str, bytes] = {}  # the Files API: uploaded files and Batch results, by name
        self._uploads: dict[str, tuple[str, bytes]] = {}  # upload id -> (mime type, bytes so far)
        self._upload_count = 0
        self.model_lists: list[Recorded] = []
        self.models: list[str] | None = list(TODAY)
        self.text_models: list[str] = list(TEXT_MODELS)
        self.list_error: Reply | None = None  # what models.list answers instead of the list
        self.fallback = error_reply(500, "INTERNAL", "fake gemini: no scripted response left")
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script
    def push(self, *replies: Reply) -> FakeGemini:
        with self._lock:
            self._queue.extend(replies)
        return self

    def always(self, reply: Reply) -> FakeGemini:
        """Answer ``reply`` whenever the queue is empty."""
        self.fallback = reply
        return self

    def expire(self, name: str) -> None:
        """Forget an uploaded file, as the Files API does after 48 hours."""
        with self._lock:
            self.files.pop(name, None)

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self.models is not None and recorded.model not in [*self.models, *self.text_models]:
                return error_reply(404, "NOT_FOUND", f"models/{recorded.model} is not found for API version "
                                   f"{recorded.version}, or is not supported for generateContent.")
            if len(recorded.raw) > MAX_REQUEST_BYTES:
                return error_reply(400, "INVALID_ARGUMENT", f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
            gone = [u for u in recorded.file_uris() if f"files/{u.rsplit('/', 1)[-1]}" not in self.files]
            if gone:
                return error_reply(403, "PERMISSION_DENIED", f"You do not have permission to access the File "
                                   f"{gone[0].rsplit('/', 1)[-1]} or it may not exist.")
            routed = self.route(recorded) if self.route is not None else None
            return routed or (self._queue.popleft() if self._queue else self.fallback)

    def _list(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.model_lists.append(recorded)
            if self.list_error is not None:
                return self.list_error
            if self.models is None:
                return error_reply(404, "NOT_FOUND", "fake gemini: models.list is not scripted")
            return Reply(200, models_body(self.models, self.text_models))

    # -- the Files API's resumable upload (start, then one "upload, finalize" chunk)
    def _upload(self, headers: Any, url: str, raw: bytes) -> Reply:
        command = (headers.get("X-Goog-Upload-Command") or "").lower()
        with self._lock:
            if command == "start":
                self._upload_count += 1
                upload_id = str(self._upload_count)
                meta = (json.loads(raw or b"{}").get("file") or {})
                mime = meta.get("mimeType") or headers.get("X-Goog-Upload-Header-Content-Type") or "application/octet-stream"
                self._uploads[upload_id] = (mime, b"")
                return Reply(200, {}, headers={"X-Goog-Upload-URL": f"{self.base_url}/upload/v1beta/files?upload_id={upload_id}"})
            upload_id = url.partition("upload_id=")[2]
            mime, data = self._uploads[upload_id]
            self._uploads[upload_id] = (mime, data + raw)
            if "finalize" not in command:
                return Reply(200, {}, headers={"X-Goog-Upload-Status": "active"})
            name = f"files/upload{upload_id}"
            self.files[name] = self._uploads.pop(upload_id)[1]
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 48 * 3600))
        return Reply(200, {"file": {"name": name, "mimeType": mime, "sizeBytes": str(len(self.files[name])),
                                    "uri": f"{self.base_url}/v1beta/{name}", "expirationTime": expires,
                                    "state": "ACTIVE"}}, headers={"X-Goog-Upload-Status": "final"})

    # -- Batch mode
    def _create_batch(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            name = f"batches/job{len(self.batches) + 1}"
            config = ((recorded.body or {}).get("batch") or {}).get("inputConfig") or {}
            if config.get("fileName"):  # JSONL lines {"key", "request"} from the Files API
                lines = self.files[config["fileName"]].decode().splitlines()
                self.batches[name] = [{"metadata": {"key": row["key"]}, "request": row["request"], "file": True}
                                      for row in map(json.loads, filter(str.strip, lines))]
            else:
                self.batches[name] = (config.get("requests") or {}).get("requests") or []
        return Reply(200, {"name": name, "metadata": {"state": "BATCH_STATE_PENDING", "model": recorded.model}},
                     delay=self.batch_delay)

    def _batch(self, name: str) -> Reply:
        """A job's state (the next of ``batch_states``); once SUCCEEDED, each request answered by ``route``."""
        with self._lock:
            requests = self.batches.get(f"batches/{name}")
            state = (self.batch_states.pop(0) if len(self.batch_states) > 1 else
                     (self.batch_states or ["BATCH_STATE_SUCCEEDED"])[0])
        if requests is None:
            return error_reply(404, "NOT_FOUND", f"fake gemini: no batch {name}")
        metadata: dict[str, Any] = {"state": state}
        if state == "BATCH_STATE_SUCCEEDED":
            answers = []
            for entry in requests:
                one = Recorded("POST", "", {}, b"", entry.get("request"))
                reply = (self.route(one) if self.route is not None else None) or self.fallback
                answers.append({"metadata": entry.get("metadata"), **({"response": reply.body} if reply.status == 200
                                                                       else {"error": reply.body.get("error")})})
            if requests and requests[0].get("file"):  # file in, file out: a JSONL of {"key", "response"|"error"}
                out = f"files/results-{name}"
                self.files[out] = "\n".join(json.dumps({"key": a["metadata"]["key"], **{k: v for k, v in a.items()
                                                          if k != "metadata"}}) for a in answers).encode()
                metadata["output"] = {"responsesFile": out}
            else:
                metadata["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
        return Reply(200, {"name": f"batches/{name}", "metadata": metadata})

    # -- lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGemini:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                path = self.path.split("?", 1)[0]
                match = _PATH_RE.match(path)
                recorded = Recorded(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    raw=raw,
                    body=body,
                    version=match["version"] if match else None,
                    model=match["model"] if match else None,
                )
                if self.command == "GET" and _LIST_RE.match(path):
                    reply = fake._list(recorded)
                elif self.command == "POST" and _UPLOAD_RE.match(path):
                    reply = fake._upload(self.headers, self.path, raw)
                elif self.command == "GET" and (wanted := _DOWNLOAD_RE.match(path)):
                    found = fake.files.get(f"files/{wanted['name']}")
                    reply = Reply(200, found) if found is not None else error_reply(404, "NOT_FOUND", "no such file")
                elif match is not None and match["method"] == "batchGenerateContent":
                    reply = fake._create_batch(recorded)
                elif self.command == "GET" and (job := _BATCH_RE.match(path)):
                    reply = fake._batch(job["name"])
                elif match is None or match["method"] != "generateContent" or self.command != "POST":
                    with fake._lock:
                        fake.requests.append(recorded)
                    reply = error_reply(404, "NOT_FOUND", f"fake gemini: unknown route {self.command} {path}")
                else:
                    reply = fake._next(recorded)
                if reply.delay and fake._stopping.wait(reply.delay):
                    return
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    ctype = "application/json; charset=UTF-8"
                elif isinstance(reply.body, str):
                    payload, ctype = reply.body.encode(), "text/plain; charset=UTF-8"
                else:
                    payload, ctype = reply.body or b"", "application/octet-stream"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                    if match is not None and match["method"] == "generateContent" and reply.status == 200:
                        with fake._lock:
                            fake.answered.append(recorded)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    """A running :class:`FakeGemini`; stopped after the test."""
    with FakeGemini() as fake:
        yield fake

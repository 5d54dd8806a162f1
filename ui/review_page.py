"""The review page at ``/review/<token>``: plain routes on the server Gradio runs on, outside Gradio's own.

A reviewer has no account: the token in the address is the key, and it opens this page and nothing else
(Gradio's pages, endpoints and file route keep asking for sign-in). The page is server-rendered HTML with
every value escaped (Jinja2's autoescape), one form and no script; its images come only from
``/review/<token>/img/<n>``, the previews of the link's own items. An unknown, revoked or expired token and a
wrong password all read "this link is not valid", each failure waits a second, and an address that fails too
often is refused for a while, as sign-in is (:class:`rag.users.LoginThrottle`).
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rag.core import BananaError
from rag.reviews import NOT_VALID, LinkNotValid, ReviewLink
from rag.studio import Studio
from rag.users import ACCOUNT_FAILURES_PER_MINUTE, LoginThrottle

from .auth import FAILED_DELAY_S

log = logging.getLogger("banana.review")
MAX_BODY = 512 * 1024  # one form post: a name, a verdict and the comments typed on the page
PASS, NAME = "review_pass", "review_name"  # cookies, scoped to the link's own path
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}


def _day(ts: float) -> str:
    t = time.localtime(ts)
    return f"{t.tm_mday} {time.strftime('%b %Y', t)}"


def _moment(ts: float) -> str:
    t = time.localtime(ts)
    return f"on {t.tm_mday} {time.strftime('%b, %H:%M', t)}"


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters.update(day=_day, moment=_moment)
    return env


class ReviewDoor:
    """The routes of the review page for one app, with their throttles (per address, and per link for passwords)."""

    def __init__(self, studio: Studio, throttle: LoginThrottle | None = None, delay_s: float = FAILED_DELAY_S) -> None:
        self.studio, self.delay_s = studio, delay_s
        self.throttle = throttle or LoginThrottle()
        self.per_link = LoginThrottle(limit=ACCOUNT_FAILURES_PER_MINUTE)
        self.page_html = _templates().get_template("review.html")

    def routes(self) -> list[BaseRoute]:
        return [Route("/review/{token}", self.page, methods=["GET"]),
                Route("/review/{token}/enter", self.enter, methods=["POST"]),
                Route("/review/{token}/notes", self.notes, methods=["POST"]),
                Route("/review/{token}/img/{n:int}", self.image, methods=["GET"]),
                Route("/review/{token}/file/{n:int}", self.original, methods=["GET"]),
                Route("/review", self.nothing, methods=["GET", "POST"]),
                Route("/review/{rest:path}", self.nothing, methods=["GET", "POST"])]

    # -- responses ---------------------------------------------------------------------------------
    def html(self, status: int = 200, **values: Any) -> HTMLResponse:
        body = self.page_html.render(**{"message": "", "asking": False, "sheet": None, "error": "", **values})
        return HTMLResponse(body, status_code=status, headers={**HEADERS, "Cache-Control": "no-store"})

    def not_valid(self) -> HTMLResponse:
        return self.html(404, message=NOT_VALID)

    def too_many(self, wait: float) -> HTMLResponse:
        response = self.html(429, message=f"Too many tries from your address; try again in {wait:.0f} s.")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    # -- the door ------------------------------------------------------------------------------------
    async def _failed(self, address: str, why: str) -> HTMLResponse:
        """One failed try: counted against the address, logged (never the token), a second's wait."""
        self.throttle.failed(address)
        log.warning("review link refused from %s: %s", address, why)
        await asyncio.sleep(self.delay_s)
        return self.not_valid()

    async def _link(self, request: Request, *, admitted: bool = True) -> ReviewLink | Response:
        """The link the request's token opens (and, with ``admitted``, that this browser may see), or the
        response that says no: not valid, or too many tries from this address."""
        address = _address(request)
        wait = self.throttle.wait(address)
        if wait > 0:
            return self.too_many(wait)
        try:
            link = await run_in_threadpool(self.studio.reviews.door, request.path_params["token"])
        except LinkNotValid:
            return await self._failed(address, "unknown, revoked or expired token")
        if admitted and not self.studio.reviews.admitted(link, request.cookies.get(PASS, "")):
            return self.not_valid()  # no pass: the page asks for the password; nothing else is served
        return link

    # -- the routes --------------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        link = await self._link(request, admitted=False)
        if not isinstance(link, ReviewLink):
            return link
        if not self.studio.reviews.admitted(link, request.cookies.get(PASS, "")):
            return self.html(asking=True, base=_base(request))
        sheet = await run_in_threadpool(self.studio.reviews.sheet, link)
        return self.html(sheet=sheet, base=_base(request), reviewer=unquote(request.cookies.get(NAME, ""))[:80])

    async def enter(self, request: Request) -> Response:
        """The password form: a right password sets the pass cookie and opens the page."""
        link = await self._link(request, admitted=False)
        if not isinstance(link, ReviewLink):
            return link
        address = _address(request)
        wait = self.throttle.begin(address)  # a try in progress counts: passwords sent at once wait their turn
        if wait > 0:
            return self.too_many(wait)
        try:
            if self.per_link.begin(link.id) > 0:  # guessed at from many addresses: the link waits
                return await self._failed(address, "too many wrong passwords for this link")
            try:
                form = _form(await _body(request)) or {}
                granted = await run_in_threadpool(self.studio.reviews.admit, link, form.get("password", ""))
            except LinkNotValid:
                self.per_link.failed(link.id)
                return await self._failed(address, "wrong password")
            finally:
                self.per_link.end(link.id)
            self.throttle.succeeded(address)
        finally:
            self.throttle.end(address)
        response = RedirectResponse(_base(request), status_code=303, headers=HEADERS)
        _cookie(response, request, link, PASS, granted)
        return response

    async def notes(self, request: Request) -> Response:
        """A reviewer's verdict and comments; then back to the image they acted on."""
        link = await self._link(request)
        if not isinstance(link, ReviewLink):
            return link
        form = _form(await _body(request))
        if form is None:
            return self.html(413, message="Too much text at once; send fewer comments at a time.")
        comments = {int(k[8:]): v for k, v in form.items() if k.startswith("comment-") and k[8:].isdigit() and len(k) < 14}
        reviewer = form.get("reviewer", "")
        try:
            n = await run_in_threadpool(self.studio.reviews.note, link, reviewer, form.get("act", ""), comments)
        except BananaError as exc:
            sheet = await run_in_threadpool(self.studio.reviews.sheet, link)
            return self.html(400, sheet=sheet, base=_base(request), reviewer=reviewer[:80], error=str(exc))
        response = RedirectResponse(f"{_base(request)}#item-{n}", status_code=303, headers=HEADERS)
        _cookie(response, request, link, NAME, quote(" ".join(reviewer.split())[:80]))
        return response

    async def image(self, request: Request) -> Response:
        link = await self._link(request)
        if not isinstance(link, ReviewLink):
            return link
        found = await run_in_threadpool(self.studio.reviews.image, link, request.path_params["n"])
        headers = {**HEADERS, "Cache-Control": "private, no-cache"}  # asked again: a revoked link shows nothing
        if found is None:
            return self.not_valid()
        if isinstance(found, bytes):
            return Response(found, media_type="image/webp", headers=headers)
        return FileResponse(found, media_type=mimetypes.guess_type(found.name)[0] or "image/webp", headers=headers)

    async def original(self, request: Request) -> Response:
        link = await self._link(request)
        if not isinstance(link, ReviewLink):
            return link
        found = await run_in_threadpool(self.studio.reviews.original, link, request.path_params["n"])
        if found is None:
            return self.not_valid()
        path, name = found
        return FileResponse(path, filename=name, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                            headers={**HEADERS, "Cache-Control": "private, no-store",
                                     "Content-Security-Policy": "default-src 'none'; sandbox"})

    async def nothing(self, request: Request) -> Response:
        """Any other address under /review: not valid, and counted like a wrong token."""
        wait = self.throttle.wait(_address(request))
        return self.too_many(wait) if wait > 0 else await self._failed(_address(request), "no such review address")


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"  # X-Forwarded-For only from trusted proxies


def _base(request: Request) -> str:
    return f"/review/{request.path_params['token']}"  # well formed: the door checked it


def _cookie(response: Response, request: Request, link: ReviewLink, name: str, value: str) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(name, value, max_age=max(60, int(link.expires - time.time())), path=_base(request),
                        httponly=True, samesite="lax", secure=secure)


async def _body(request: Request) -> bytes | None:
    """The request's body, or None past :data:`MAX_BODY` (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _form(body: bytes | None) -> dict[str, str] | None:
    """A url-encoded form as a dict (the last value of a repeated field); None for a body too large."""
    if body is None:
        return None
    try:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000))
    except ValueError:
        return {}


def with_review_pages(options: dict[str, Any], studio: Studio | None) -> dict[str, Any]:
    """``launch()`` options with the review page's routes added to the server Gradio builds (none without a studio)."""
    if studio is None:
        return options
    kwargs = dict(options.get("app_kwargs") or {})
    kwargs["routes"] = [*kwargs.get("routes", []), *ReviewDoor(studio).routes()]
    return {**options, "app_kwargs": kwargs}

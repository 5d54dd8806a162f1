"""Sign-in for the web app: Gradio's login checked against :class:`rag.users.Accounts`, with failed
tries per address slowed down and logged (user name and address, never the password).

Gradio's ``auth`` callable is not told who is asking, so a small ASGI middleware in front of
``/login`` refuses an address that has failed too often and hands the address to the check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from html import escape
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from rag.users import ACCOUNT_FAILURES_PER_MINUTE, Accounts, LoginThrottle

from .session_view import user_of

log = logging.getLogger("banana.auth")
FAILED_DELAY_S = 1.0  # each wrong password costs the guesser this long
_address: ContextVar[str] = ContextVar("sign_in_address", default="unknown")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class _GuardLogin:
    """Refuses ``POST /login`` with 429 while the address is throttled; otherwise notes the address."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle) -> None:
        self.app, self.throttle = app, throttle

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path", "").rstrip("/") != "/login":
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]  # X-Forwarded-For only from BANANA_TRUSTED_PROXIES
        wait = self.throttle.begin(address)
        if wait <= 0:
            token = _address.set(address)
            try:
                await self.app(scope, receive, send)
            finally:
                _address.reset(token)
                self.throttle.end(address)
            return
        log.warning("sign-in refused from %s: too many failed tries; allowed again in %.0f s", address, wait)
        body = json.dumps({"detail": f"Too many failed sign-ins from your address; try again in {wait:.0f} s."}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", str(int(wait) + 1).encode())]})
        await send({"type": "http.response.body", "body": body})


def sign_in_options(accounts: Accounts | None, throttle: LoginThrottle | None = None) -> dict[str, Any]:
    """``launch()`` arguments for sign-in (none when ``accounts`` is None)."""
    if accounts is None:
        return {}
    throttle = throttle or LoginThrottle()
    per_account = LoginThrottle(limit=ACCOUNT_FAILURES_PER_MINUTE)

    async def check(user: str, password: str) -> bool:
        address, account = _address.get(), user[:100]
        if per_account.begin(account) > 0:  # guessed at from many addresses: the account waits, whatever the password
            log.warning("sign-in as %r from %s refused: too many failed tries for this account", user[:100], address)
            await asyncio.sleep(FAILED_DELAY_S)
            return False
        try:
            ok = accounts.check(user, password)
            if not ok:
                log.warning("failed sign-in as %r from %s", user[:100], address)
                await asyncio.sleep(FAILED_DELAY_S)  # meanwhile the try counts as one in progress
            for limit, key in ((throttle, address), (per_account, account)):
                (limit.succeeded if ok else limit.failed)(key)
            return ok
        finally:
            per_account.end(account)

    return {"auth": check, "auth_message": "Banana Studio: sign in with the account your team gave you.",
            "app_kwargs": {"middleware": [Middleware(_GuardLogin, throttle=throttle)]}}


def signed_in_html(request: gr.Request) -> str:
    """The header's corner with sign-in: who is signed in, and Sign out (Gradio's /logout, in this tab).
    Empty without sign-in."""
    user = user_of(request)
    return (f'Signed in as <b>{escape(user)}</b> · <a href="/logout" target="_self">Sign out</a>' if user else "")

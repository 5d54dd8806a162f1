"""The secrets of a review link: its token, kept only as a hash, and its optional password, kept only as a
slow salted hash, so a copy of the database opens no link.

A token is 256 random bits (``secrets.token_urlsafe(32)``, 43 characters); the database holds its SHA-256.
A password is hashed with scrypt (RFC 7914) at the cost recommended for interactive logins (n=2**15, r=8, p=1:
32 MiB and tens of milliseconds a try; golang.org/x/crypto/scrypt's documentation, checked 2026-12-07), and
compared in constant time; wrong tries are also throttled where the page is served.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from rag.core import BananaError

NOT_VALID = "This link is not valid. Check that it was copied whole, or ask whoever sent it for a new one."
TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what token_urlsafe(32) gives: nothing else is looked up
_SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 2**26}
MIN_PASSWORD, MAX_PASSWORD = 6, 200


class LinkNotValid(BananaError):
    """A review link that is unknown, revoked, expired, or asked with a wrong password: all read alike."""

    def __init__(self) -> None:
        super().__init__(NOT_VALID)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def well_formed(token: str) -> bool:
    """Whether ``token`` has a token's shape; anything else is refused before the database is asked."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$salt$hash`` (hex) for a new link's password; "" for none. Too short or long is a sentence."""
    if not password:
        return ""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BananaError(f"A review link's password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (a link without one takes any)."""
    if not stored:
        return True
    _, salt, digest = stored.split("$")
    given = hashlib.scrypt(str(password)[:MAX_PASSWORD].encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(given, bytes.fromhex(digest))

"""Who may sign in, and how fast a wrong password may be tried again.

Accounts come from ``--users FILE`` / ``BANANA_USERS_FILE`` (one ``user:password`` per line, ``#``
comments) or the single ``--auth user:password``. Each signed-in user's sessions and history are
theirs (see :mod:`rag.studio.sessions`); the library is shared. A password never reaches a log line.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from pathlib import Path

from rag.core import ConfigError, Settings

FAILURES_PER_MINUTE = 5  # per address; then sign-in is refused until the oldest failure is a minute old
ACCOUNT_FAILURES_PER_MINUTE = 10  # per account from any addresses: guesses spread over many addresses stop too


class Accounts:
    """User names and passwords, compared in constant time."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = {user: password.encode() for user, password in passwords.items()}

    def __len__(self) -> int:
        return len(self._passwords)

    @property
    def names(self) -> list[str]:
        return sorted(self._passwords)

    def check(self, user: str, password: str) -> bool:
        expected = self._passwords.get(user)
        given = password.encode()
        if expected is None:  # spend the same time on an unknown user as on a wrong password
            hmac.compare_digest(given, given)
            return False
        return hmac.compare_digest(given, expected)

    @staticmethod
    def parse(lines: list[str], where: str) -> dict[str, str]:
        """``user:password`` lines as a dict; a malformed line is a sentence naming ``where`` and its number."""
        passwords: dict[str, str] = {}
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, password = line.partition(":")
            user = user.strip()
            if not sep or not user or not password:
                raise ConfigError(f"{where}, line {number}: each line must look like user:password.")
            if user in passwords:
                raise ConfigError(f"{where}, line {number}: the user {user!r} is listed twice.")
            passwords[user] = password
        return passwords

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts | None:
        """The accounts ``BANANA_USERS_FILE`` and ``BANANA_AUTH`` name together; None when sign-in is off."""
        passwords: dict[str, str] = {}
        if settings.users_file:
            path = Path(settings.users_file).expanduser()
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"Cannot read the users file {path} ({getattr(exc, 'strerror', None) or exc}).") from None
            passwords.update(cls.parse(lines, str(path)))
            if not passwords:
                raise ConfigError(f"The users file {path} lists nobody; add lines like user:password.")
        if settings.auth:
            passwords.update(cls.parse([settings.auth], "--auth / BANANA_AUTH"))
        return cls(passwords) if passwords else None


class LoginThrottle:
    """At most ``limit`` failed sign-ins per key (an address, or an account) in ``window`` seconds; a success
    clears the key. A try in progress counts against the limit until it ends (:meth:`begin`, :meth:`end`), so
    guesses sent all at once cannot slip past it together."""

    def __init__(self, limit: int = FAILURES_PER_MINUTE, window: float = 60.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._now = limit, window, now
        self._failures: dict[str, deque[float]] = {}
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            return self._wait(key)

    def begin(self, key: str) -> float:
        """Reserve a try for ``key`` (then 0), or say how many seconds it must wait (nothing reserved)."""
        with self._lock:
            wait = self._wait(key)
            if wait <= 0:
                self._pending[key] += 1
            return wait

    def end(self, key: str) -> None:
        """A reserved try is over (its outcome went to :meth:`failed` or :meth:`succeeded` first)."""
        with self._lock:
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                del self._pending[key]

    def failed(self, key: str) -> None:
        with self._lock:
            self._recent(key).append(self._now())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _wait(self, key: str) -> float:
        failures = self._recent(key)
        if len(failures) + self._pending[key] < self.limit:
            return 0.0
        if not failures:  # only tries in progress fill the limit: they end within seconds
            return 1.0
        return max(0.0, failures[0] + self.window - self._now())

    def _recent(self, key: str) -> deque[float]:
        cutoff = self._now() - self.window
        for old in [k for k, times in self._failures.items() if not times or times[-1] < cutoff]:
            del self._failures[old]  # forget keys that have been quiet for a window
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

"""Content credentials: who signs the images the app makes, and what any image's credentials say.

:class:`CredentialsService` is ``Studio.credentials``. Built with the Studio, it checks the signer at start: an
organisation's certificate (``CREDENTIALS_CERT``/``CREDENTIALS_KEY``) that cannot sign is refused with a
sentence naming its file; without one, the app's local certificate is made on first start. Signing itself
happens where images are saved (:mod:`rag.generation.signing`); reading is :mod:`rag.media.credentials`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from rag.core import BananaError, ConfigError, Settings
from rag.media import certificates, credentials
from rag.store import VectorStore

log = logging.getLogger(__name__)


class CredentialsService:
    """Checks the signer when built; reads credentials from library images and from files (the CLI)."""

    def __init__(self, settings: Callable[[], Settings], store: Callable[[], VectorStore]) -> None:
        self._settings = settings
        self._store = store
        self._serial = ""  # the local signer's, to tell the app's own signature from another's
        self.check()

    def check(self) -> None:
        """Refuse a configured certificate that cannot sign (ConfigError naming the file); make the local one.
        A local certificate that cannot be made (a read-only or full disk) only means unsigned images, each
        saying so in History; one that exists but is damaged is refused, named."""
        settings = self._settings()
        if not settings.credentials:
            return
        if settings.credentials_cert or settings.credentials_key:
            key = certificates.signing_key(settings)
            try:
                if key is not None:
                    credentials.check(key)
            except BananaError as exc:
                raise ConfigError(f"The content credentials certificate {settings.credentials_cert} cannot sign: "
                                  f"{str(exc).rstrip('.')}.") from None
            return
        try:
            certificates.local_certificate(certificates.credentials_dir(settings))
        except ConfigError as exc:
            log.warning("%s Generated images are saved without content credentials until it can.", exc)
            return
        key = certificates.signing_key(settings)
        self._serial = key.serial if key is not None else ""

    def is_local(self, found: credentials.Credentials) -> bool:
        """Whether ``found`` was signed by this app's local certificate."""
        return bool(self._serial) and found.serial == self._serial

    def read_file(self, path: str | Path) -> credentials.Credentials | None:
        """What a file's content credentials say (None: it carries none). Refuses what is not a file, or is over
        the app's file size limit, before reading it."""
        file = Path(path)
        if not file.is_file():
            raise BananaError(f"{file.name or path} is not a readable file.")
        limit = self._settings().max_file_mb
        if file.stat().st_size > limit * 2**20:
            raise BananaError(f"{file.name} is over the {limit:g} MB limit set for this app; it was not read.")
        return credentials.read(file)

    def read_asset(self, asset_id: str) -> credentials.Credentials | None:
        """The content credentials of a library image as its file is now (a change since it was signed shows)."""
        found = self._store().get([asset_id])
        if not found:
            raise BananaError(f"No asset with id {asset_id[:64]} is in the library.")
        try:
            return self.read_file(found[0].path)
        except BananaError as exc:
            log.info("credentials of %s not read: %s", asset_id[:16], exc)
            return None

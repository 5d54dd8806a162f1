"""The heavy pieces behind :class:`rag.studio.Studio`, each opened on first use and released together.

Building a Studio must connect to nothing (the app starts before Milvus is reachable, the CLI's ``--help``
loads no model, and search works without a Gemini key), so the Milvus store, the Gemini client and the
sessions database live here behind properties, and the services get getters for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rag.campaigns import CampaignStore
from rag.clip import Embedder
from rag.core import BananaError, GenerationDisabled, Settings
from rag.generation import ImageGenerator, SessionStore, make_generator
from rag.store import MilvusStore, VectorStore

log = logging.getLogger(__name__)
GENERATION_OFF = ("Generation is off: this app has no Gemini API key yet. Whoever runs it adds one (from "
                  "https://aistudio.google.com/apikey; the README says where) and restarts it. Search works without it.")


class Resources:
    """The store, generator and databases, opened on first use (a ``store`` or ``generator`` handed in, such
    as a test's fake, is used as is).

    ``settings`` is a getter, since Studio's settings can be replaced after it is built (the CLI's ``--out``).
    """

    def __init__(self, settings: Callable[[], Settings], embedder: Embedder, store: VectorStore | None,
                 generator: ImageGenerator | None) -> None:
        self._settings = settings
        self._embedder = embedder
        self._store = store
        self._generator = generator
        self._lock = threading.Lock()
        self._warm = False
        self._sessions: SessionStore | None = None
        self._campaign_store: CampaignStore | None = None  # opened with the sessions database

    def warm_up(self) -> None:
        """Load the model and, on Milvus Lite, the library's vectors ahead of the first search (the
        app runs this in the background at start); never raises."""
        self._embedder.warm_up()
        try:
            self.store.warm_up()
        except BananaError as exc:
            log.error("%s", exc)
        self._warm = True  # a store opened again later (after a restore or a re-index) is warmed too

    def close(self) -> None:
        """Release the databases (Milvus Lite lets one process hold its file at a time); they reopen on next use."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._sessions is not None:
                self._sessions.close()
                self._sessions, self._campaign_store = None, None

    @property
    def store(self) -> VectorStore:
        """The library's vectors and records (Milvus Lite or a server)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = MilvusStore(self._settings(), self._embedder.dim, self._embedder.name)
                    if self._warm:
                        threading.Thread(target=self._store.warm_up, name="lite-vectors", daemon=True).start()
        return self._store

    @property
    def generator(self) -> ImageGenerator:
        """The Gemini client; :class:`rag.core.errors.GenerationDisabled` says why when no API key is set."""
        if self._generator is None:
            settings = self._settings()
            if not settings.gemini_api_key:
                raise GenerationDisabled(GENERATION_OFF)
            self._generator = make_generator(settings)
        return self._generator

    def generator_built(self) -> bool:
        """Whether a generator exists already (handed in, or built), without building one."""
        return self._generator is not None

    @property
    def sessions(self) -> SessionStore:
        """The sessions, versions and attempts database (``sessions.db`` in BANANA_DATA_DIR)."""
        if self._sessions is None:
            with self._lock:
                if self._sessions is None:
                    self._sessions = SessionStore(self._settings().data_dir)
        return self._sessions

    @property
    def campaign_store(self) -> CampaignStore:
        """The campaigns' records, in the sessions database (closed and reopened with it)."""
        if self._campaign_store is None:
            sessions = self.sessions
            with self._lock:
                if self._campaign_store is None:
                    self._campaign_store = CampaignStore(sessions)
        return self._campaign_store

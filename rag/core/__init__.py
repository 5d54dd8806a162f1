"""The ground floor: settings, the product's exceptions, plain records, safe file writes and bounded prefetching.

Everything else may import it; it imports nothing of ``rag``.
"""

from rag.core.config import SAMPLE_DIR, Settings
from rag.core.errors import (
    BananaError,
    BudgetExceeded,
    ConfigError,
    GenerationBlocked,
    GenerationDisabled,
    GenerationError,
    GenerationTimeout,
    ImageError,
    LibraryDamaged,
    ModelLoadError,
    ModelUnavailable,
    NothingToDo,
    RateLimited,
    StoreError,
    TransferError,
)
from rag.core.files import atomic_path, atomic_write, os_error_text, sha256_bytes, sha256_file
from rag.core.pipeline import chunked, prefetch_map
from rag.core.types import SOURCES, Asset, Hit

__all__ = ["Asset", "atomic_path", "atomic_write", "BananaError", "BudgetExceeded", "chunked", "ConfigError", "GenerationBlocked", "GenerationDisabled", "GenerationError", "GenerationTimeout", "Hit", "ImageError", "LibraryDamaged", "ModelLoadError", "ModelUnavailable", "NothingToDo", "os_error_text", "prefetch_map", "RateLimited", "SAMPLE_DIR", "Settings", "sha256_bytes", "sha256_file", "SOURCES", "StoreError", "TransferError"]

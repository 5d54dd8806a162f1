"""The vector store behind :class:`VectorStore` (Milvus Lite or a server), its words, filters, backups and transfers.
"""

from rag.store.backup import KEEP, BackupSchedule, backups, write_backup
from rag.store.candidates import Candidates
from rag.store.filters import build_filter, folder_names, joined, parents_filter, within
from rag.store.milvus import QUERY_PAGE, MilvusStore, VectorStore
from rag.store.schema import asset_from_row
from rag.store.swap import REBUILD_SUFFIX
from rag.store.transfer import export_parquet, import_parquet, parse_rebase, read_header
from rag.store.words import WordQuery, parse_words

__all__ = ["asset_from_row", "backups", "BackupSchedule", "build_filter", "Candidates", "export_parquet", "folder_names", "import_parquet", "joined", "KEEP", "MilvusStore", "parents_filter", "parse_words", "parse_rebase", "QUERY_PAGE", "read_header", "REBUILD_SUFFIX", "VectorStore", "within", "WordQuery", "write_backup"]

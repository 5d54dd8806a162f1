"""The asset bank: ingesting files, the grid, an asset's page, the Trash, rebuilding the index, captions, the text
printed in the pictures (:mod:`rag.library.ocr`).
"""

from rag.library import ocr
from rag.library.assets import AssetDetails, campaign_folder, campaign_tag, clean_campaign_name
from rag.library.grid import ADDED, PAGE_SIZE, LibraryFilter, LibraryIndex, LibraryPage
from rag.library.ingest import Ingestor, IngestReport, Progress
from rag.library.reindex import ReindexReport, reindex
from rag.library.trash import Trash

__all__ = ["ADDED", "AssetDetails", "campaign_folder", "campaign_tag", "clean_campaign_name", "Ingestor", "IngestReport", "LibraryFilter", "LibraryIndex", "LibraryPage", "ocr", "PAGE_SIZE", "Progress", "reindex", "ReindexReport", "Trash"]

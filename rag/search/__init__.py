"""Search over the store: one :class:`Query` in, ranked hits out (CLIP, words, or both).
"""

from rag.search.engine import SearchResults, hits_frame, search_results
from rag.search.query import Query

__all__ = ["hits_frame", "Query", "search_results", "SearchResults"]

"""Search over the store: one :class:`Query` in, ranked hits out (CLIP, words, or both).
"""

from rag.search.engine import SearchResults, hits_frame, search_results
from rag.search.query import Query
from rag.search.rank import CUTOFFS, relevance_cue

__all__ = ["CUTOFFS", "hits_frame", "Query", "relevance_cue", "search_results", "SearchResults"]

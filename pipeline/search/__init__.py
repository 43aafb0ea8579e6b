"""Live retrieval: a query encoded by each chosen run's encoder, ranked against that run's
stored candidates in memory, and placed on the run's stored map."""

from pipeline.search.encoders import EncoderPool, EncoderSource, EncoderUnavailable, resolve_device
from pipeline.search.engine import Hit, MapPlacement, RunAnswer, RunInfo, SearchEngine, SearchResult
from pipeline.search.index import BoundedCache, CandidateIndex, top_k, unit_rows
from pipeline.search.query import EMPTY_QUERY, Query, QueryError

__all__ = [
    "EMPTY_QUERY",
    "BoundedCache",
    "CandidateIndex",
    "EncoderPool",
    "EncoderSource",
    "EncoderUnavailable",
    "Hit",
    "MapPlacement",
    "Query",
    "QueryError",
    "RunAnswer",
    "RunInfo",
    "SearchEngine",
    "SearchResult",
    "resolve_device",
    "top_k",
    "unit_rows",
]

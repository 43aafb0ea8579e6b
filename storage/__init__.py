"""The results store: one DuckDB file with runs, scores, projections and the paper's published
numbers, and each run's embeddings in a float16 file beside it (`storage.vectors`). Only this
package writes SQL."""

from storage.console import EXAMPLE_QUERIES, ConsoleResult, run_query
from storage.errors import (
    RunConflictError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreLocationError,
    StoreMissingError,
    StoreReadOnlyError,
    StoreSchemaError,
)
from storage.paths import default_store_path, vlmembed_home
from storage.reader import StoreReader
from storage.records import (
    DatasetRecord,
    DatasetRow,
    ItemRecord,
    ModelRecord,
    RankRecord,
    ReportedAverage,
    RunRecord,
    ScoreRecord,
    TrainLogRecord,
    config_hash,
)
from storage.schema import SCHEMA_VERSION
from storage.writer import MergeReport, StoreWriter

__all__ = [
    "EXAMPLE_QUERIES",
    "SCHEMA_VERSION",
    "ConsoleResult",
    "DatasetRecord",
    "DatasetRow",
    "ItemRecord",
    "ModelRecord",
    "RankRecord",
    "ReportedAverage",
    "RunConflictError",
    "RunRecord",
    "ScoreRecord",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreLocationError",
    "StoreMissingError",
    "StoreReadOnlyError",
    "StoreReader",
    "StoreSchemaError",
    "MergeReport",
    "StoreWriter",
    "TrainLogRecord",
    "config_hash",
    "default_store_path",
    "run_query",
    "vlmembed_home",
]

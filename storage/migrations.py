"""Creating a store and bringing an older one up to the current schema.

A migration is a function that takes a connection inside a transaction and changes a
store of version N into version N + 1. Writers migrate; readers (read-only) refuse an
out-of-date store with a message naming `vlmembed migrate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import duckdb

from storage.errors import StoreSchemaError
from storage.paper import paper_models
from storage.records import VISION_FROZEN, VISION_TRAINED
from storage.schema import DATASET_ITEMS_OF, INTERVALS_TABLE, SCHEMA_VERSION, TABLES, VIEWS
from storage.vectors import ensure_functions, vectors_dir, write_matrix
from storage.vocabulary import PARADIGMS, sql_choices

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _models_per_variant(con: duckdb.DuckDBPyConnection) -> None:
    """1 -> 2: `models` keyed by (model, variant) instead of model alone.

    Version 1 kept one record per name, so an ablation (the paper's MMaDA 'vision-unfrozen') and
    the main run shared a record whose vision_update was whichever was written last. Each old
    record becomes its model's 'default' record, and every other variant that runs use gets a copy;
    then each pipeline-written vision_update is set from what that variant's runs recorded in their
    config, and a paper variant's from the paper's data. No run, score or other row changes.
    """
    columns = "family, display_name, paradigm, attention, pooling, vision_encoder, vision_update, backbone, " \
              "params, scale, description"
    con.execute(f"""
        CREATE TABLE models_v2 (
            model VARCHAR NOT NULL, variant VARCHAR NOT NULL DEFAULT 'default', family VARCHAR,
            display_name VARCHAR NOT NULL,
            paradigm VARCHAR NOT NULL CHECK (paradigm IN ({sql_choices(PARADIGMS)})),
            attention VARCHAR, pooling VARCHAR, vision_encoder VARCHAR, vision_update VARCHAR, backbone VARCHAR,
            params BIGINT, scale VARCHAR NOT NULL, description VARCHAR, PRIMARY KEY (model, variant))""")
    con.execute(f"INSERT INTO models_v2 SELECT model, 'default', {columns} FROM models")
    con.execute(f"""INSERT INTO models_v2 SELECT v.model, v.variant, {columns} FROM models
                    JOIN (SELECT DISTINCT model, variant FROM runs WHERE variant <> 'default') v USING (model)""")
    con.execute("""
        UPDATE models_v2 m SET vision_update = CASE WHEN t.trained THEN ? ELSE ? END
        FROM (SELECT model, variant, bool_or(CAST(json_extract(config, '$.model.train_vision') AS BOOLEAN)) AS trained
              FROM runs WHERE source <> 'paper' AND json_extract(config, '$.model.train_vision') IS NOT NULL
              GROUP BY ALL) t
        WHERE m.model = t.model AND m.variant = t.variant AND m.vision_update IN (?, ?)""",
                [VISION_TRAINED, VISION_FROZEN, VISION_TRAINED, VISION_FROZEN])
    published = {(r.model, r.variant): r for r in paper_models()}
    for (model, variant), record in published.items():
        default = published.get((model, "default"))
        if variant != "default" and default is not None:
            con.execute("UPDATE models_v2 SET vision_update = ?, description = ? WHERE model = ? AND variant = ? "
                        "AND vision_update IS NOT DISTINCT FROM ?",
                        [record.vision_update, record.description, model, variant, default.vision_update])
    con.execute("DROP TABLE models")
    con.execute("ALTER TABLE models_v2 RENAME TO models")


def _add_intervals(con: duckdb.DuckDBPyConnection) -> None:
    """2 -> 3: the `intervals` table (and the `v_intervals` view, made with every view after a migration).

    Storage computes no statistics, so the table starts empty: `vlmembed stats` fills it for the
    runs already stored, and every run landed from now on brings its own.
    """
    con.execute(INTERVALS_TABLE)


def _baseline_source(con: duckdb.DuckDBPyConnection) -> None:
    """3 -> 4: runs of source 'baseline' (chance, a text-only model, untrained miniatures) and models of
    paradigm 'baseline'. DuckDB cannot alter a CHECK constraint, so `runs` and `models` are rebuilt with
    the wider ones (the DDL is spelt out: a migration must not follow later schema changes)."""
    con.execute("""
        CREATE TABLE models_v4 (
            model VARCHAR NOT NULL, variant VARCHAR NOT NULL DEFAULT 'default', family VARCHAR,
            display_name VARCHAR NOT NULL,
            paradigm VARCHAR NOT NULL CHECK (paradigm IN ('autoregressive', 'diffusion', 'baseline')),
            attention VARCHAR, pooling VARCHAR, vision_encoder VARCHAR, vision_update VARCHAR, backbone VARCHAR,
            params BIGINT, scale VARCHAR NOT NULL, description VARCHAR, PRIMARY KEY (model, variant))""")
    con.execute("""
        CREATE TABLE runs_v4 (
            run_id VARCHAR PRIMARY KEY,
            source VARCHAR NOT NULL CHECK (source IN ('paper', 'pipeline', 'demo', 'baseline')),
            model VARCHAR NOT NULL, label VARCHAR NOT NULL, variant VARCHAR NOT NULL DEFAULT 'default',
            experiment VARCHAR, train_task VARCHAR, stage VARCHAR NOT NULL DEFAULT 'final', train_samples BIGINT,
            status VARCHAR NOT NULL DEFAULT 'complete', config JSON, config_hash VARCHAR, code_version VARCHAR,
            checkpoint VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, timings JSON, notes VARCHAR)""")
    for table in ("models", "runs"):
        con.execute(f"INSERT INTO {table}_v4 BY NAME SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}_v4 RENAME TO {table}")


def table_ddl(table: str, new_name: str) -> str:
    """The current schema's CREATE TABLE statement of `table`, creating `new_name` instead."""
    match = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \(.*?\n\);", TABLES, flags=re.S)
    if match is None:
        raise StoreSchemaError(f"the schema defines no table {table!r}")
    return match.group(0).replace(f"CREATE TABLE IF NOT EXISTS {table} (", f"CREATE TABLE {new_name} (", 1)


def _import_sources(con: duckdb.DuckDBPyConnection) -> None:
    """4 -> 5: `runs.source` admits the imported sources ('mteb', 'vlm2vec').

    DuckDB cannot alter a CHECK constraint, so the table is rebuilt with the current one and
    every row copied; no value changes.
    """
    con.execute(table_ddl("runs", "runs_v5"))
    con.execute("INSERT INTO runs_v5 BY NAME SELECT * FROM runs")
    con.execute("DROP TABLE runs")
    con.execute("ALTER TABLE runs_v5 RENAME TO runs")


def _dual_encoders_and_text(con: duckdb.DuckDBPyConnection) -> None:
    """5 -> 6: `models.paradigm` admits 'dual-encoder' (CLIP, SigLIP) and `datasets.meta_task` admits
    'text' (text-only retrieval). The two tables are rebuilt with the current CHECKs; no value changes."""
    for table in ("models", "datasets"):
        con.execute(table_ddl(table, f"{table}_v6"))
        con.execute(f"INSERT INTO {table}_v6 BY NAME SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}_v6 RENAME TO {table}")


def _real_scale(con: duckdb.DuckDBPyConnection, store: str) -> None:
    """6 -> 7 (issue 18): each run's embeddings move to a float16 file beside the store (`storage.vectors`),
    so a publish no longer copies them; thumbnail md5s and dataset_items are kept, not computed at app start.
    The files are written before the migrated catalogue is published; if it never is, the next writer
    removes them."""
    folder = vectors_dir(Path(store))
    con.execute("""CREATE TABLE IF NOT EXISTS embedding_files (run_id VARCHAR PRIMARY KEY, file VARCHAR NOT NULL, origin VARCHAR,
                   dim INTEGER NOT NULL, n_items BIGINT NOT NULL, dtype VARCHAR NOT NULL)""")
    con.execute("""CREATE TABLE IF NOT EXISTS embedding_rows (run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
                   dim INTEGER NOT NULL, "row" INTEGER NOT NULL)""")
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'")
              .fetchall()}
    old_runs = "SELECT DISTINCT run_id FROM embeddings ORDER BY run_id" if "embeddings" in tables else "SELECT 1 WHERE false"
    for (run_id,) in con.execute(old_runs).fetchall():
        table = con.sql("SELECT item_id, vec FROM embeddings WHERE run_id = ? ORDER BY item_id",
                        params=[run_id]).to_arrow_table()
        ids = table.column("item_id").to_pylist()
        flat = table.column("vec").combine_chunks()
        dim = len(flat[0])
        matrix = flat.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), dim)
        file = write_matrix(folder, run_id, matrix)
        con.execute("INSERT INTO embedding_files VALUES (?, ?, ?, ?, ?, 'float16')",
                    [run_id, file, str(folder / file), dim, len(ids)])
        con.execute("INSERT INTO embedding_rows SELECT ?, item_id, ?, (row_number() OVER (ORDER BY item_id) - 1)::INTEGER "
                    "FROM embeddings WHERE run_id = ?", [run_id, dim, run_id])
    con.execute("DROP VIEW IF EXISTS v_embeddings")
    if "embeddings" in tables:
        con.execute("DROP TABLE embeddings")
    con.execute("ALTER TABLE items ADD COLUMN IF NOT EXISTS thumbnail_md5 VARCHAR")
    con.execute("UPDATE items SET thumbnail_md5 = md5(thumbnail) WHERE thumbnail IS NOT NULL")
    if "dataset_items" not in tables:
        con.execute("DROP VIEW IF EXISTS dataset_items")
        con.execute("CREATE TABLE dataset_items (dataset VARCHAR NOT NULL, item_id VARCHAR NOT NULL, "
                    "role VARCHAR NOT NULL)")
    con.execute("DELETE FROM dataset_items")
    con.execute("INSERT INTO dataset_items " + DATASET_ITEMS_OF.format(wanted="SELECT dataset FROM dataset_rows"))


_real_scale.needs_store = True  # called with the store's path too (it writes files beside it)


# MIGRATIONS[n] turns a version-n store into version n+1.
MIGRATIONS: dict[int, Migration] = {1: _models_per_variant, 2: _add_intervals, 3: _baseline_source,
                                    4: _import_sources, 5: _dual_encoders_and_text, 6: _real_scale}


def stored_version(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> int | None:
    """The schema version recorded in a store (`catalog`: an attached one), None for a file with
    no vlmembed tables."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = coalesce(?, current_database())",
        [catalog]).fetchall()}
    if "meta" not in tables:
        return 0 if tables else None  # tables but no meta: a pre-release layout
    # fetchall, not fetchone: an unfinished result makes DuckDB refuse the connection's next
    # `register` (StoreWriter._missing_items, the first call of add_run on a reopened store)
    rows = con.execute(f"SELECT value FROM {catalog + '.' if catalog else ''}meta WHERE key = 'schema_version'").fetchall()
    if not rows:
        return 0
    row = rows[0]
    try:
        return int(row[0])
    except ValueError:
        raise StoreSchemaError(f"schema_version {row[0]!r} is not a number: the store is damaged") from None


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(TABLES)
    con.execute(VIEWS)
    con.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('created_by', 'vlmembed')",
        [str(SCHEMA_VERSION)],
    )


def ensure_current(con: duckdb.DuckDBPyConnection, path: str, migrations: dict[int, Migration] | None = None,
                   target: int = SCHEMA_VERSION) -> int:
    """Create the schema in an empty file or migrate an old one; returns the version found."""
    migrations = MIGRATIONS if migrations is None else migrations
    ensure_functions(con, vectors_dir(Path(path)))  # the views call them
    version = stored_version(con)
    if version is None:
        con.begin()
        create_schema(con)
        con.commit()
        return target
    if version > target:
        raise StoreSchemaError(
            f"{path} has schema version {version}, newer than this vlmembed understands ({target}). "
            "Upgrade vlmembed (pip install -U -e .) or point --store at another file."
        )
    missing = [v for v in range(version, target) if v not in migrations]
    if missing:
        raise StoreSchemaError(
            f"{path} has schema version {version} and there is no migration from version {missing[0]} "
            f"to {missing[0] + 1}. Rebuild it: `vlmembed import-paper --store {path} --fresh` "
            "(then re-run your experiments, or `vlmembed demo`)."
        )
    for v in range(version, target):
        con.begin()
        try:
            step = migrations[v]
            step(con, path) if getattr(step, "needs_store", False) else step(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(v + 1)])
            con.commit()
        except Exception:
            con.rollback()
            raise
    if version < target:
        con.execute(VIEWS)
    return version


def check_readable(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """For read-only connections: the store must be exactly the current version."""
    version = stored_version(con)
    if version is None:
        raise StoreSchemaError(f"{path} holds no vlmembed tables. Build it with `vlmembed import-paper --store {path}`.")
    if version < SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path} has schema version {version}; this vlmembed reads version {SCHEMA_VERSION}. "
            f"Run `vlmembed migrate --store {path}` to upgrade it in place (a new file is swapped in)."
        )
    if version > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path} has schema version {version}, newer than this vlmembed ({SCHEMA_VERSION}). Upgrade vlmembed."
        )

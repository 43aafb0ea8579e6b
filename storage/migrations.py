"""Creating a store and bringing an older one up to the current schema.

A migration is a function that takes a connection inside a transaction and changes a
store of version N into version N + 1. Writers migrate; readers (read-only) refuse an
out-of-date store with a message naming `vlmembed migrate`.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from storage.errors import StoreSchemaError
from storage.schema import SCHEMA_VERSION, TABLES, VIEWS

Migration = Callable[[duckdb.DuckDBPyConnection], None]

# MIGRATIONS[n] turns a version-n store into version n+1. Version 1 is the first layout
# released, so there is nothing to migrate yet; the mechanism is tested with a fake step.
MIGRATIONS: dict[int, Migration] = {}


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version recorded in a store, None for a file with no vlmembed tables."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()").fetchall()}
    if "meta" not in tables:
        return 0 if tables else None  # tables but no meta: a pre-release layout
    # fetchall, not fetchone: an unfinished result makes DuckDB refuse the connection's next
    # `register` (StoreWriter._missing_items, the first call of add_run on a reopened store)
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
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
            migrations[v](con)
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

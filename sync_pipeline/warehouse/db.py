"""Open the DuckDB warehouse and keep its schema current (idempotent, on every connection)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb

from sync_pipeline.warehouse.countries import country_aliases
from sync_pipeline.warehouse.currencies import ISO_4217


def read_sql(package: str, name: str) -> str:
    """SQL lives in .sql files beside the code that runs it (STYLE 6)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


# Steps that bring an older warehouse file up to date, by the version they lead to. Derived tables
# (rebuilt on every run) are simply dropped and created anew by schema.sql.
MIGRATIONS: dict[int, list[str]] = {
    2: ["DROP TABLE IF EXISTS marts.account_metrics"],  # aging, billed_90d, dso_90d added
    3: ["ALTER TABLE IF EXISTS staging.accounts ADD COLUMN IF NOT EXISTS country_code VARCHAR"],
    4: ["DROP TABLE IF EXISTS sync.staging_builds"],  # replaced by sync.builds (one row per derived table set)
    5: ["ALTER TABLE IF EXISTS staging.invoices ADD COLUMN IF NOT EXISTS department VARCHAR"],  # departments map
}
SCHEMA_VERSION = max(MIGRATIONS)


def _migrate(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    conn.execute("CREATE TABLE IF NOT EXISTS meta.schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM meta.schema_version").fetchone()
    current = row[0] if row and row[0] is not None else None
    if current is None:
        # a new file, or one from before versioning (version 1): run every step, all are idempotent
        current = 1
    for version in sorted(v for v in MIGRATIONS if v > current):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    if current < SCHEMA_VERSION:
        conn.execute("DELETE FROM meta.schema_version")
        conn.execute("INSERT INTO meta.schema_version VALUES (?)", [SCHEMA_VERSION])


@cache
def _schema_fingerprint() -> str:
    """What a current file was set up from: the schema SQL, the migrations and the reference lists."""
    parts = [read_sql("sync_pipeline.warehouse", "sql/schema.sql"), repr(sorted(MIGRATIONS.items())),
             repr(sorted(ISO_4217)), repr(sorted(country_aliases().items()))]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Bring the file's schema up to date. A file that records the fingerprint of this code's schema is
    current: one query instead of the whole schema script on each of a run's connections."""
    conn.execute(read_sql("sync_pipeline.warehouse", "sql/session.sql"))
    try:
        row = conn.execute("SELECT fingerprint FROM meta.schema_applied").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is not None and row[0] == _schema_fingerprint():
        return
    _migrate(conn)
    conn.execute(read_sql("sync_pipeline.warehouse", "sql/schema.sql"))
    (have,) = conn.execute("SELECT count(*) FROM meta.currencies").fetchone()
    if have != len(ISO_4217):
        conn.execute("DELETE FROM meta.currencies")
        conn.executemany("INSERT INTO meta.currencies VALUES (?)", [(c,) for c in sorted(ISO_4217)])
    aliases = country_aliases()
    (have,) = conn.execute("SELECT count(*) FROM meta.countries").fetchone()
    if have != len(aliases):
        conn.execute("DELETE FROM meta.countries")
        conn.execute("INSERT INTO meta.countries SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                     [list(aliases), list(aliases.values())])
    conn.execute("CREATE TABLE IF NOT EXISTS meta.schema_applied (fingerprint VARCHAR NOT NULL)")
    conn.execute("DELETE FROM meta.schema_applied")
    conn.execute("INSERT INTO meta.schema_applied VALUES (?)", [_schema_fingerprint()])


@contextmanager
def connect(path: Path | str, *, read_only: bool = False,
            config: dict[str, str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file with the schema in place (used outside Dagster: CLI, tests, benches).
    `config`: DuckDB settings, such as the memory_limit runs use (defs/build.py)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only, config=config or {})
    try:
        if not read_only:
            ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

"""Land raw source records: one table per system and entity, upserted by source id.

Pages are buffered into a temporary table and merged in one transaction together with the
extraction cursor, so a crash leaves either the old state or the new one, never half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

from sync_pipeline.warehouse.db import transaction

_FLUSH_EVERY = 5_000


@dataclass(frozen=True)
class RawKeys:
    """Where a vendor's record keeps its id, its last-change time and (invoices) its issue date."""

    id: str = "id"
    updated_at: str = "updated_at"
    issue_date: str = "issue_date"


# system type → entity → keys. Only what landing needs; the mapping to the canonical model is SQL.
RAW_KEYS: dict[str, dict[str, RawKeys]] = {
    "fakturownia": {"clients": RawKeys(), "invoices": RawKeys()},
    "invoiceocean": {"clients": RawKeys(), "invoices": RawKeys()},
    "zoho_invoice": {
        "clients": RawKeys("contact_id", "last_modified_time", "date"),
        "invoices": RawKeys("invoice_id", "last_modified_time", "date"),
        "creditnotes": RawKeys("creditnote_id", "last_modified_time", "date"),
    },
}


def raw_table(system: str, entity: str) -> str:
    return f"raw.{system}_{entity}"


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, system: str, entity: str) -> str:
    table = raw_table(system, entity)
    # No PRIMARY KEY: uniqueness of record_key is kept by delete-then-insert in one transaction,
    # which DuckDB's index constraints would reject within a single transaction.
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {table} (
            record_key VARCHAR NOT NULL, source_id VARCHAR, payload JSON,
            source_updated_at TIMESTAMPTZ, issue_date DATE, extracted_at TIMESTAMPTZ, run_id VARCHAR)"""
    )
    return table


@dataclass(frozen=True)
class LandingStats:
    received: int          # records in the pages
    landed: int            # distinct records written (a record seen twice in one extraction lands once)
    without_id: int        # records with no id, kept under a content hash so they reach quarantine
    replaced_window: int   # rows removed by a window delete (history partitions)
    cursor: datetime | None


class RawLanding:
    """Collects pages of raw records, then merges them into the raw table in one transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, system: str, entity: str, run_id: str,
                 keys: RawKeys = RawKeys()):
        self.conn, self.system, self.entity, self.run_id, self.keys = conn, system, entity, run_id, keys
        self.table = ensure_raw_table(conn, system, entity)
        self._buffer: list[str] = []
        self._received = 0
        conn.execute("CREATE OR REPLACE TEMP TABLE _landing (seq BIGINT, payload VARCHAR)")

    def add_page(self, records: list[dict]) -> None:
        self._buffer.extend(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
        if len(self._buffer) >= _FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        batch = pd.DataFrame({"seq": range(self._received, self._received + len(self._buffer)), "payload": self._buffer})
        self.conn.register("_landing_df", batch)
        self.conn.execute("INSERT INTO _landing SELECT seq, payload FROM _landing_df")
        self.conn.unregister("_landing_df")
        self._received += len(self._buffer)
        self._buffer = []

    def commit(self, *, window: tuple[date, date] | None = None, advance_cursor: bool = False) -> LandingStats:
        """Merge into the raw table. `window` (inclusive issue dates) deletes that window first, so a
        history partition is replaced, not appended; `advance_cursor` moves the system's cursor."""
        self._flush()
        c = self.conn
        c.execute(
            """CREATE OR REPLACE TEMP TABLE _keyed AS
            WITH parsed AS (
                SELECT seq, payload::JSON AS payload, nullif(trim(payload::JSON ->> $id), '') AS source_id
                FROM _landing
            )
            SELECT coalesce(source_id, 'nokey:' || md5(payload::VARCHAR)) AS record_key,
                   source_id, payload,
                   TRY_CAST(payload ->> $updated_at AS TIMESTAMPTZ) AS source_updated_at,
                   TRY_CAST(payload ->> $issue_date AS DATE) AS issue_date,
                   now() AS extracted_at, $run_id AS run_id
            FROM parsed
            QUALIFY row_number() OVER (PARTITION BY record_key ORDER BY source_updated_at DESC NULLS LAST, seq DESC) = 1""",
            {"run_id": self.run_id, "id": self.keys.id, "updated_at": self.keys.updated_at,
             "issue_date": self.keys.issue_date},
        )
        (landed, without_id, newest) = c.execute(
            "SELECT count(*), count(*) FILTER (WHERE source_id IS NULL), max(source_updated_at) FROM _keyed"
        ).fetchone()
        replaced = 0
        with transaction(c):
            if window is not None:
                (replaced,) = c.execute(
                    f"SELECT count(*) FROM {self.table} WHERE issue_date BETWEEN ? AND ?", list(window)
                ).fetchone()
                c.execute(f"DELETE FROM {self.table} WHERE issue_date BETWEEN ? AND ?", list(window))
            c.execute(f"DELETE FROM {self.table} WHERE record_key IN (SELECT record_key FROM _keyed)")
            c.execute(f"INSERT INTO {self.table} SELECT * FROM _keyed")
            cursor = read_cursor(c, self.system, self.entity)
            if advance_cursor and newest is not None and (cursor is None or newest > cursor):
                cursor = newest
                c.execute(
                    "INSERT OR REPLACE INTO sync.cursors VALUES (?, ?, ?, now(), ?)",
                    [self.system, self.entity, cursor, self.run_id],
                )
        c.execute("DROP TABLE IF EXISTS _keyed")
        c.execute("DELETE FROM _landing")
        return LandingStats(self._received, landed, without_id, replaced, cursor)


def read_cursor(conn: duckdb.DuckDBPyConnection, system: str, entity: str) -> datetime | None:
    row = conn.execute("SELECT cursor_ts FROM sync.cursors WHERE system = ? AND entity = ?", [system, entity]).fetchone()
    return row[0] if row else None

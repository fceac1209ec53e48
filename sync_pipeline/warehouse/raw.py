"""Land raw source records: one table per system and entity, upserted by source id.

Pages go into the raw table as they come, inside one transaction that is merged with the table's
earlier rows and committed together with the extraction cursor, so a crash leaves either the old
state or the new one, never half.

A record delivered twice in one read is landed once when both copies agree; when they differ, the
newer `updated_at` wins (the record changed while it was being paged). Two different versions with
the same `updated_at` cannot be told apart: both are landed with a `conflict` note, and staging puts
both in quarantine. The cursor never moves past now + `max_clock_skew`: a record stamped in the future
would otherwise hide every real change after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import orjson


_FLUSH_EVERY = 5_000
DEFAULT_CLOCK_SKEW = timedelta(minutes=10)
_COLUMNS = "record_key, source_id, payload, source_updated_at, issue_date, extracted_at, run_id, conflict, content"


@dataclass(frozen=True)
class RawKeys:
    """Where a vendor's record keeps its id, its last-change time and (invoices) its issue date."""

    id: str = "id"
    updated_at: str = "updated_at"
    issue_date: str = "issue_date"


def raw_table(system: str, entity: str) -> str:
    return f"raw.{system}_{entity}"


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, system: str, entity: str) -> str:
    table = raw_table(system, entity)
    # No PRIMARY KEY: uniqueness of record_key is kept by delete-then-insert in one transaction,
    # which DuckDB's index constraints would reject within a single transaction.
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {table} (
            record_key VARCHAR NOT NULL, source_id VARCHAR, payload JSON,
            source_updated_at TIMESTAMPTZ, issue_date DATE, extracted_at TIMESTAMPTZ, run_id VARCHAR,
            conflict VARCHAR)"""
    )
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS conflict VARCHAR")  # files from before it existed
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS content VARCHAR")   # md5 of the payload
    # the order records were landed in, rising from landing to landing (RawLanding tells a read's rows by it)
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS landing_seq BIGINT")
    return table


@dataclass(frozen=True)
class LandingStats:
    received: int          # records in the pages, as delivered
    landed: int            # rows written: received − duplicates − superseded
    without_id: int        # records with no id, kept under a content hash so they reach quarantine
    replaced_window: int   # rows removed by a window delete (history partitions)
    cursor: datetime | None
    duplicates: int = 0    # identical copies of a record delivered more than once (landed once)
    superseded: int = 0    # older versions of a record whose newer version came in the same read
    conflicts: int = 0     # rows landed with a `conflict` note (same id and updated_at, other content)
    from_future: int = 0   # records stamped later than now + the clock skew (the cursor ignores them)
    changed: int = 0       # records written or removed because their content changed (0: the raw table is as it was)


class RawLanding:
    """Lands pages of raw records straight into the raw table, in one transaction that stays open from the
    first page to `commit`, where the read is merged with what the table held before.

    New rows carry a `landing_seq` above every earlier one (the page order within the read), so the merge
    tells them from the old rows by a range; a transaction's appends are written to the file as they
    grow, so memory does not grow with the read. A crash before `commit` leaves the table as it was."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, system: str, entity: str, run_id: str,
                 keys: RawKeys = RawKeys(), max_clock_skew: timedelta = DEFAULT_CLOCK_SKEW, journal: bool = True):
        self.conn, self.system, self.entity, self.run_id, self.keys = conn, system, entity, run_id, keys
        self.journal = journal  # False: records staging never reads (a two-way side of a system that is no source)
        self.max_clock_skew = max_clock_skew
        self.table = ensure_raw_table(conn, system, entity)
        self._pages: list[str] = []      # pages serialised whole (one JSON array each), not yet in DuckDB
        self._page_seqs: list[int] = []  # the seq of each buffered page's first record
        self._buffered = 0
        self._received = 0
        self._base: int | None = None    # landing_seq of this read's first record; set when its transaction opens

    def add_page(self, records: list) -> None:
        """Buffer one page. It is serialised as one JSON array (orjson, in C) and split into records by DuckDB
        when the buffer is flushed: no per-record work in Python."""
        if not records:
            return
        self._page_seqs.append(self._received + self._buffered)
        self._pages.append(_dump_page(records))
        self._buffered += len(records)
        if self._buffered >= _FLUSH_EVERY:
            self._flush()

    def _begin(self) -> None:
        if self._base is None:
            self.conn.execute("BEGIN TRANSACTION")
            (top,) = self.conn.execute(f"SELECT coalesce(max(landing_seq), 0) FROM {self.table}").fetchone()
            self._base = top + 1

    def _flush(self) -> None:
        if not self._pages:
            return
        self._begin()
        # Split and key the buffered pages into the raw table (the page texts are let go).
        self.conn.execute(
            f"""INSERT INTO {self.table} ({_COLUMNS}, landing_seq)
            WITH pages AS (
                SELECT unnest($seqs::BIGINT[]) AS seq, unnest($pages::VARCHAR[]) AS page
            ), records AS (
                -- seq is the page's: it only picks among identical copies of a record, so any copy will do
                SELECT seq, unnest(page::JSON::JSON[]) AS payload FROM pages
            ), fields AS (
                -- the three keys read in one parse of the record (each `->` would parse all of it again)
                SELECT seq, payload, json_extract(payload, [$id, $updated_at, $issue_date]) AS f,
                       md5(payload::VARCHAR) AS content
                FROM records
            ), parsed AS (
                SELECT seq, payload, content, f,
                       -- an object, a list or a boolean is no id: such a record is kept by content and quarantined
                       CASE WHEN json_type(f[1]) NOT IN ('OBJECT', 'ARRAY', 'BOOLEAN')
                            THEN nullif(trim(f[1] ->> '$'), '') END AS source_id
                FROM fields
            )
            SELECT coalesce(source_id, 'nokey:' || content), source_id, payload,
                   TRY_CAST(f[2] ->> '$' AS TIMESTAMPTZ), TRY_CAST(f[3] ->> '$' AS DATE), now(), $run_id, NULL,
                   content, $base + seq
            FROM parsed""",
            {"seqs": self._page_seqs, "pages": self._pages, "id": self.keys.id, "updated_at": self.keys.updated_at,
             "issue_date": self.keys.issue_date, "run_id": self.run_id, "base": self._base})
        self._received += self._buffered
        self._pages, self._page_seqs, self._buffered = [], [], 0

    def commit(self, *, window: tuple[date, date] | None = None, advance_cursor: bool = False) -> LandingStats:
        """Merge the read with the table and commit. `window` (inclusive issue dates) removes the records of that
        window the read did not bring, so a history partition is replaced, not appended; `advance_cursor` moves
        the system's cursor."""
        self._flush()
        self._begin()
        c, base = self.conn, {"base": self._base}
        try:
            stats = self._merge(c, base, window, advance_cursor)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        finally:
            self._base = None
            for t in ("_new", "_keyed", "_changed_keys"):
                c.execute(f"DROP TABLE IF EXISTS {t}")
        return stats

    def _merge(self, c: duckdb.DuckDBPyConnection, base: dict, window: tuple[date, date] | None,
               advance_cursor: bool) -> LandingStats:
        # This read's rows, without their payloads.
        c.execute(f"""CREATE OR REPLACE TEMP TABLE _new AS
                      SELECT rowid AS rid, landing_seq AS seq, record_key, source_id, source_updated_at, content
                      FROM {self.table} WHERE landing_seq >= $base""", base)
        # The newest version of each record; among equally new versions, one row per distinct content.
        c.execute(
            """CREATE OR REPLACE TEMP TABLE _keyed AS
            WITH newest AS (
                SELECT * FROM _new
                QUALIFY dense_rank() OVER (PARTITION BY record_key ORDER BY source_updated_at DESC NULLS LAST) = 1
            ), versions AS (
                SELECT * FROM newest QUALIFY row_number() OVER (PARTITION BY record_key, content ORDER BY seq DESC) = 1
            )
            SELECT rid, record_key, source_id, source_updated_at, content,
                   CASE WHEN count(*) OVER (PARTITION BY record_key) > 1
                        THEN 'conflicting duplicate: id ' || coalesce(source_id, record_key) || ' came '
                             || count(*) OVER (PARTITION BY record_key)
                             || ' times in one read with different content and the same updated_at' END AS conflict
            FROM versions""",
        )
        (landed, without_id, newest, conflicts, future) = c.execute(
            """SELECT count(*), count(*) FILTER (WHERE source_id IS NULL),
                      max(source_updated_at) FILTER (WHERE source_updated_at <= now() + $skew),
                      count(*) FILTER (WHERE conflict IS NOT NULL),
                      count(*) FILTER (WHERE source_updated_at > now() + $skew)
               FROM _keyed""", {"skew": self.max_clock_skew},
        ).fetchone()
        (distinct_versions,) = c.execute("SELECT count(*) FROM (SELECT DISTINCT record_key, content FROM _new)").fetchone()
        duplicates = self._received - distinct_versions
        superseded = distinct_versions - landed
        replaced = removed = 0
        old = f"(SELECT * FROM {self.table} WHERE landing_seq IS NULL OR landing_seq < $base)"
        # Only records whose content changed are written: a re-read of identical records (the re-read lag, a
        # repeated backfill) leaves the raw table, and so staging, as it was. A record that was stamped in the
        # future when last read, or that carries a conflict, is written again, so it is judged anew.
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE _changed_keys AS
            SELECT DISTINCT k.record_key FROM _keyed k
            WHERE k.conflict IS NOT NULL OR NOT EXISTS (
                SELECT 1 FROM {old} r
                WHERE r.record_key = k.record_key AND r.content = k.content AND r.conflict IS NULL
                  AND NOT coalesce(r.source_updated_at > r.extracted_at + $skew, false))
            UNION
            SELECT r.record_key FROM {old} r
            WHERE r.conflict IS NOT NULL AND r.record_key IN (SELECT record_key FROM _keyed)""",
            {**base, "skew": self.max_clock_skew})
        (changed,) = c.execute("SELECT count(*) FROM _changed_keys").fetchone()  # before the window's removals
        if window is not None:
            params = {**base, "start": window[0], "end": window[1]}
            (replaced,) = c.execute(f"SELECT count(*) FROM {old} WHERE issue_date BETWEEN $start AND $end",
                                    params).fetchone()
            gone = f"""FROM {old} WHERE issue_date BETWEEN $start AND $end
                       AND record_key NOT IN (SELECT record_key FROM _keyed)"""
            (removed,) = c.execute(f"SELECT count(*) {gone}", params).fetchone()
            c.execute(f"INSERT INTO _changed_keys SELECT DISTINCT record_key {gone}", params)
        # the journal: which records changed, for staging to redo only those (transform/staging.py)
        if self.journal:
            c.execute("INSERT INTO sync.raw_journal SELECT nextval('sync.raw_journal_seq'), ?, ?, record_key "
                      "FROM _changed_keys", [self.system, self.entity])
        # the old rows of changed (or removed) records go; of the new rows, the kept versions of changed records stay
        c.execute(f"""DELETE FROM {self.table} WHERE (landing_seq IS NULL OR landing_seq < $base)
                      AND record_key IN (SELECT record_key FROM _changed_keys)""", base)
        c.execute(f"""DELETE FROM {self.table} WHERE landing_seq >= $base AND rowid NOT IN (
                          SELECT rid FROM _keyed WHERE record_key IN (SELECT record_key FROM _changed_keys))""", base)
        if conflicts:
            c.execute(f"""UPDATE {self.table} SET conflict = k.conflict FROM _keyed k
                          WHERE {self.table}.rowid = k.rid AND k.conflict IS NOT NULL""")
        if changed or removed:
            c.execute("INSERT OR REPLACE INTO sync.raw_changes VALUES (?, ?, now(), ?)",
                      [self.system, self.entity, self.run_id])
        cursor = read_cursor(c, self.system, self.entity)
        if advance_cursor and newest is not None and (cursor is None or newest > cursor):
            cursor = newest
            c.execute(
                "INSERT OR REPLACE INTO sync.cursors VALUES (?, ?, ?, now(), ?)",
                [self.system, self.entity, cursor, self.run_id],
            )
        return LandingStats(self._received, landed, without_id, replaced, cursor, duplicates, superseded, conflicts,
                            future, changed=changed + removed)


def _dump_page(records: list) -> str:
    try:
        return orjson.dumps(records).decode()
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits (kept as int by the parser)
        return json.dumps(records, ensure_ascii=False, separators=(",", ":"))


def read_cursor(conn: duckdb.DuckDBPyConnection, system: str, entity: str) -> datetime | None:
    row = conn.execute("SELECT cursor_ts FROM sync.cursors WHERE system = ? AND entity = ?", [system, entity]).fetchone()
    return row[0] if row else None

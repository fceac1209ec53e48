"""Full key scans: the ids a system's whole list holds now (`sync.scan_keys`, the latest scan only) and when the
scan ran (`sync.scans`). A record in raw that the latest scan did not find, and that was not landed after it,
was deleted at its source (DESIGN §5a: deletions are flagged, never propagated)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import duckdb

from sync_pipeline.warehouse.db import transaction


def scan_due(conn: duckdb.DuckDBPyConnection, system: str, entity: str, every: timedelta) -> bool:
    row = conn.execute("SELECT scanned_at FROM sync.scans WHERE system = ? AND entity = ?", [system, entity]).fetchone()
    return row is None or datetime.now(timezone.utc) - row[0] >= every


def record_scan(conn: duckdb.DuckDBPyConnection, *, system: str, entity: str, keys: Iterable[str], run_id: str,
                started_at: datetime) -> int:
    """Replace the system's scan of `entity` with `keys`; `started_at`: when the scan began (a record landed
    after it and missing from it was created meanwhile, not deleted)."""
    keys = sorted(set(keys))
    with transaction(conn):
        conn.execute("DELETE FROM sync.scan_keys WHERE system = ? AND entity = ?", [system, entity])
        conn.execute("INSERT INTO sync.scan_keys SELECT ?, ?, unnest(?::VARCHAR[])", [system, entity, keys])
        conn.execute("INSERT OR REPLACE INTO sync.scans VALUES (?, ?, ?, ?, ?)",
                     [system, entity, started_at, len(keys), run_id])
    return len(keys)


def page_keys(page: list, id_key: str) -> list[str]:
    """The ids of a page's records, as raw tables key them (text, trimmed)."""
    return [str(r[id_key]).strip() for r in page if isinstance(r, dict) and r.get(id_key) not in (None, "")]

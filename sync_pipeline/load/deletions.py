"""Records deleted at the source whose copy a target holds (a deal whose invoice was deleted in Fakturownia):
flagged once in `sync.deletions`, never propagated. Seen through the source's latest full key scan
(warehouse/scans.py): in raw, not in the scan, and not landed after it."""

from __future__ import annotations

import duckdb

from sync_pipeline.warehouse.raw import ensure_raw_table


def flag_source_deletions(conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, source: str,
                          source_entity: str, run_id: str) -> tuple[int, int]:
    """Flag the ledger's records of `entity` whose source record (`<source>:<id>`) is gone; returns (newly
    flagged, flagged in all)."""
    raw = ensure_raw_table(conn, source, source_entity)
    (new,) = conn.execute(
        f"""INSERT INTO sync.deletions (connection, entity, system, record_id, other_id, detected_at, run_id)
            SELECT $connection, $entity, $source, r.record_key, l.target_id, now(), $run_id
            FROM {raw} r
            JOIN sync.scans s ON s.system = $source AND s.entity = $source_entity AND r.extracted_at <= s.scanned_at
            JOIN sync.ledger l ON l.connection = $connection AND l.entity = $entity
                              AND l.our_key = $source || ':' || r.record_key AND l.target_id IS NOT NULL
            WHERE r.record_key NOT IN (SELECT record_key FROM sync.scan_keys
                                       WHERE system = $source AND entity = $source_entity)
            ON CONFLICT DO NOTHING""",
        {"connection": connection, "entity": entity, "source": source, "source_entity": source_entity,
         "run_id": run_id}).fetchone()
    (total,) = conn.execute(
        "SELECT count(*) FROM sync.deletions WHERE connection = ? AND entity = ? AND system = ?",
        [connection, entity, source]).fetchone()
    return new, total

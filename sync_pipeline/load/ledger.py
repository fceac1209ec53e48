"""`sync.ledger` (what each target holds, by our key) and `sync.log` (every write, with the answer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from sync_pipeline.warehouse.db import transaction


@dataclass(frozen=True)
class Outcome:
    our_key: str
    action: str                # create | update | adopt | fail | unknown | plan_create | plan_update | plan_recover
    target_id: str | None = None
    content_hash: str | None = None
    message: str | None = None


class Ledger:
    def __init__(self, conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, run_id: str):
        self.conn, self.connection, self.entity, self.run_id = conn, connection, entity, run_id

    def mark_intended(self, keys: Iterable[str]) -> None:
        """Recorded before a create is sent: after a crash the next run looks the record up first."""
        rows = [(self.connection, self.entity, k, self.run_id) for k in keys]
        if not rows:
            return
        with transaction(self.conn):
            self.conn.executemany(
                """INSERT INTO sync.ledger (connection, entity, our_key, state, attempts, updated_at, run_id)
                   VALUES (?, ?, ?, 'intended', 0, now(), ?)
                   ON CONFLICT (connection, entity, our_key) DO UPDATE
                   SET state = 'intended', updated_at = now(), run_id = excluded.run_id""",
                rows,
            )

    def record(self, outcomes: list[Outcome], *, dry_run: bool = False) -> None:
        if not outcomes:
            return
        with transaction(self.conn):
            self.conn.executemany(
                """INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run, message)
                   VALUES (now(), ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(self.run_id, self.connection, self.entity, o.our_key, o.action, o.target_id, dry_run, o.message)
                 for o in outcomes],
            )
            if dry_run:
                return
            ok = [o for o in outcomes if o.action in ("create", "update", "adopt")]
            if ok:
                self.conn.executemany(
                    """INSERT INTO sync.ledger (connection, entity, our_key, target_id, content_hash, state, attempts,
                                                last_error, updated_at, run_id)
                       VALUES (?, ?, ?, ?, ?, 'synced', 0, NULL, now(), ?)
                       ON CONFLICT (connection, entity, our_key) DO UPDATE
                       SET target_id = excluded.target_id, content_hash = excluded.content_hash, state = 'synced',
                           attempts = 0, last_error = NULL, updated_at = now(), run_id = excluded.run_id""",
                    [(self.connection, self.entity, o.our_key, o.target_id, o.content_hash, self.run_id) for o in ok],
                )
            failed = [o for o in outcomes if o.action == "fail"]
            if failed:
                self.conn.executemany(
                    """INSERT INTO sync.ledger (connection, entity, our_key, target_id, state, attempts, last_error,
                                                updated_at, run_id)
                       VALUES (?, ?, ?, ?, 'failed', 1, ?, now(), ?)
                       ON CONFLICT (connection, entity, our_key) DO UPDATE
                       SET state = 'failed', attempts = sync.ledger.attempts + 1, last_error = excluded.last_error,
                           target_id = coalesce(sync.ledger.target_id, excluded.target_id),
                           updated_at = now(), run_id = excluded.run_id""",
                    [(self.connection, self.entity, o.our_key, o.target_id, o.message, self.run_id) for o in failed],
                )

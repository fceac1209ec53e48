"""`sync.ledger` (what each target holds, by our key) and `sync.log` (every write, with the answer).

Rows are written set-based: a chunk's keys and outcomes go in as lists unnested by DuckDB (one statement per
kind of row), and a dry run's plan is logged with one INSERT … SELECT from the plan table; never one
statement per record."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from sync_pipeline.load.plan import ACTIONABLE, TABLE
from sync_pipeline.warehouse.db import transaction


@dataclass(frozen=True)
class Outcome:
    our_key: str
    action: str                # create | update | adopt | fail | unknown | gone | plan_create | plan_update | plan_recover
    target_id: str | None = None
    content_hash: str | None = None
    message: str | None = None


class Ledger:
    def __init__(self, conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, run_id: str,
                 system: str | None = None):
        self.conn, self.connection, self.entity, self.run_id = conn, connection, entity, run_id
        self.system = system  # the target: where a record found deleted was deleted (sync.deletions)

    def _scope(self) -> dict:
        return {"connection": self.connection, "entity": self.entity, "run_id": self.run_id}

    def mark_intended(self, keys: Iterable[str]) -> None:
        """Recorded before a create is sent: after a crash the next run looks the record up first."""
        keys = list(keys)
        if not keys:
            return
        with transaction(self.conn):
            self.conn.execute(
                """INSERT INTO sync.ledger (connection, entity, our_key, state, attempts, updated_at, run_id)
                   SELECT $connection, $entity, unnest($keys::VARCHAR[]), 'intended', 0, now(), $run_id
                   ON CONFLICT (connection, entity, our_key) DO UPDATE
                   SET state = 'intended', updated_at = now(), run_id = excluded.run_id""",
                {**self._scope(), "keys": keys},
            )

    def log_plan(self, copy_from: str | None = None) -> int:
        """A dry run: one `plan_<action>` row per record the run would send, straight from the plan table, or
        copied from the log of the run `copy_from` whose plan this run's is (same inputs, same plan)."""
        if copy_from is not None:
            with transaction(self.conn):
                (n,) = self.conn.execute(
                    """INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run,
                                              message)
                       SELECT now(), $run_id, connection, entity, our_key, action, target_id, true, NULL
                       FROM sync.log WHERE run_id = $source AND connection = $connection AND entity = $entity
                         AND dry_run AND action LIKE 'plan_%'
                       ORDER BY rowid""",
                    {**self._scope(), "source": copy_from},
                ).fetchone()
            return n
        with transaction(self.conn):
            (n,) = self.conn.execute(
                f"""INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run,
                                          message)
                    SELECT now(), $run_id, $connection, $entity, our_key, 'plan_' || action, target_id, true, NULL
                    FROM {TABLE} WHERE action IN {ACTIONABLE} ORDER BY seq""",
                self._scope(),
            ).fetchone()
        return n

    def record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        with transaction(self.conn):
            self.conn.execute(
                """INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run,
                                         message)
                   SELECT now(), $run_id, $connection, $entity, unnest($keys::VARCHAR[]), unnest($actions::VARCHAR[]),
                          unnest($targets::VARCHAR[]), false, unnest($messages::VARCHAR[])""",
                {**self._scope(), "keys": [o.our_key for o in outcomes], "actions": [o.action for o in outcomes],
                 "targets": [o.target_id for o in outcomes], "messages": [o.message for o in outcomes]},
            )
            ok = [o for o in outcomes if o.action in ("create", "update", "adopt")]
            if ok:
                self.conn.execute(
                    """INSERT INTO sync.ledger (connection, entity, our_key, target_id, content_hash, state, attempts,
                                                last_error, updated_at, run_id)
                       SELECT $connection, $entity, unnest($keys::VARCHAR[]), unnest($targets::VARCHAR[]),
                              unnest($hashes::VARCHAR[]), 'synced', 0, NULL, now(), $run_id
                       ON CONFLICT (connection, entity, our_key) DO UPDATE
                       SET target_id = excluded.target_id, content_hash = excluded.content_hash, state = 'synced',
                           attempts = 0, last_error = NULL, updated_at = now(), run_id = excluded.run_id""",
                    {**self._scope(), "keys": [o.our_key for o in ok], "targets": [o.target_id for o in ok],
                     "hashes": [o.content_hash for o in ok]},
                )
            gone = [o for o in outcomes if o.action == "gone"]
            if gone:  # deleted in the target by someone: never written again, flagged once
                self.conn.execute(
                    """UPDATE sync.ledger SET state = 'gone', last_error = m.message, updated_at = now(), run_id = $run_id
                       FROM (SELECT unnest($keys::VARCHAR[]) AS our_key, unnest($messages::VARCHAR[]) AS message) m
                       WHERE connection = $connection AND entity = $entity AND sync.ledger.our_key = m.our_key""",
                    {**self._scope(), "keys": [o.our_key for o in gone], "messages": [o.message for o in gone]})
                self.conn.execute(
                    """INSERT INTO sync.deletions (connection, entity, system, record_id, other_id, detected_at, run_id)
                       SELECT $connection, $entity, $system, unnest($targets::VARCHAR[]), unnest($keys::VARCHAR[]),
                              now(), $run_id
                       ON CONFLICT DO NOTHING""",
                    {**self._scope(), "system": self.system or "target", "keys": [o.our_key for o in gone],
                     "targets": [o.target_id for o in gone]})
            failed = [o for o in outcomes if o.action == "fail"]
            if failed:
                self.conn.execute(
                    """INSERT INTO sync.ledger (connection, entity, our_key, target_id, state, attempts, last_error,
                                                updated_at, run_id)
                       SELECT $connection, $entity, unnest($keys::VARCHAR[]), unnest($targets::VARCHAR[]), 'failed', 1,
                              unnest($messages::VARCHAR[]), now(), $run_id
                       ON CONFLICT (connection, entity, our_key) DO UPDATE
                       SET state = 'failed', attempts = sync.ledger.attempts + 1, last_error = excluded.last_error,
                           target_id = coalesce(sync.ledger.target_id, excluded.target_id),
                           updated_at = now(), run_id = excluded.run_id""",
                    {**self._scope(), "keys": [o.our_key for o in failed], "targets": [o.target_id for o in failed],
                     "messages": [o.message for o in failed]},
                )

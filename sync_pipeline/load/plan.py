"""The plan: what the target should hold versus what `sync.ledger` says it holds (DESIGN §5).

The plan stays in DuckDB (a temp table on the step's connection): counts and examples are read with SQL,
a dry run logs it with one INSERT … SELECT, and a real run reads it in chunks, so neither time nor memory
grows with a per-row trip through Python for records that are only counted.

A plan is a function of the tables its desired SQL reads (staging, metrics: their builds in sync.builds),
the SQL and its parameters, and the connection's ledger. `inputs_fingerprint` hashes them; when it equals
the one recorded after the last run, that run's plan holds again and is not recomputed (see defs/load.py):
a plan with nothing to send, or a dry run's plan (its log rows are copied from the run that logged it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sync_pipeline.warehouse.builds import fingerprint

TABLE = "_plan"
ACTIONABLE = ("create", "recover", "update")  # what a run sends (blocked, unchanged and deleted are only counted)

# A change is a change only if the content hash differs from the ledger's: our own writes never bounce.
_PLAN_SQL = """
WITH desired AS ({desired}),
hashed AS (SELECT our_key, payload, md5(payload) AS content_hash, blocked FROM desired),
planned AS (
    SELECT d.our_key, d.payload, d.content_hash, d.blocked, l.target_id,
           CASE WHEN l.state = 'gone' THEN 'deleted'                 -- deleted in the target: never sent again
                WHEN d.blocked IS NOT NULL THEN 'blocked'
                WHEN l.our_key IS NULL THEN 'create'
                WHEN l.state = 'intended' THEN 'recover'          -- crashed between intent and answer
                WHEN l.target_id IS NULL THEN 'create'            -- an earlier create was rejected
                WHEN l.state = 'failed' THEN 'update'
                WHEN l.content_hash IS DISTINCT FROM d.content_hash THEN CASE WHEN $updates THEN 'update' ELSE 'unchanged' END
                ELSE 'unchanged' END AS action
    FROM hashed d
    LEFT JOIN sync.ledger l ON l.connection = $connection AND l.entity = $entity AND l.our_key = d.our_key
)
-- seq numbers the records to send 1..n in key order (NULL for the rest), so chunks are read by range; only
-- the payloads a run will send are kept (a dry run sends none): the table stays small however large the plan
SELECT our_key, CASE WHEN $keep_payloads AND action IN ('create', 'recover', 'update') THEN payload END AS payload,
       content_hash, blocked, target_id, action,
       CASE WHEN action IN ('create', 'recover', 'update')
            THEN row_number() OVER (PARTITION BY action IN ('create', 'recover', 'update') ORDER BY our_key) END
       AS seq
FROM planned
ORDER BY seq NULLS LAST
"""


@dataclass(frozen=True)
class PlanItem:
    our_key: str
    action: str                 # create | recover | update
    payload: dict[str, Any]
    content_hash: str
    target_id: str | None
    blocked: str | None = None


@dataclass
class Plan:
    connection: str
    entity: str
    counts: Counter = field(default_factory=Counter)                 # per action, including unchanged
    first_keys: dict[str, list[str]] = field(default_factory=dict)   # per action, the first few keys
    logged_by: str | None = None  # a dry-run plan taken over from this run: its log rows are copied, not computed

    @classmethod
    def from_summary(cls, connection: str, entity: str, summary: dict, *, logged_by: str | None = None) -> Plan:
        return cls(connection, entity, Counter(summary["counts"]), summary["first_keys"], logged_by)

    def summary(self) -> dict:
        return {"counts": dict(self.counts), "first_keys": self.first_keys}

    def settled(self) -> Plan:
        """The plan once every record to send was sent and answered: all unchanged (blocked and deleted stay)."""
        counts = Counter({"unchanged": self.counts.get("unchanged", 0) + self.actionable})
        for kept in ("blocked", "deleted"):  # neither is sent: they stand as they were
            if self.counts.get(kept):
                counts[kept] = self.counts[kept]
        return Plan(self.connection, self.entity, counts,
                    {a: k for a, k in self.first_keys.items() if a in ("blocked", "deleted")})

    @property
    def actionable(self) -> int:
        return sum(self.counts.get(a, 0) for a in ACTIONABLE)

    def examples(self, action: str, n: int = 3) -> list[str]:
        return self.first_keys.get(action, [])[:n]

    def chunks(self, conn: duckdb.DuckDBPyConnection, size: int) -> Iterator[list[PlanItem]]:
        """The records to send, in key order, `size` at a time (only one chunk's payloads in memory)."""
        for start in range(0, self.actionable, size):
            rows = conn.execute(
                f"SELECT our_key, action, payload, content_hash, target_id, blocked FROM {TABLE} "
                "WHERE seq > ? AND seq <= ? ORDER BY seq", [start, start + size]).fetchall()
            yield [PlanItem(k, a, json.loads(p), h, t, b) for k, a, p, h, t, b in rows]


def inputs_fingerprint(conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, desired_sql: str,
                       params: dict[str, Any], upstream: list[Any], ledger_entities: list[str]) -> str:
    """What the plan is a function of: `upstream` (the fingerprints of the tables the SQL reads), the SQL, its
    parameters and the ledger rows of `ledger_entities` (the entity's own, and those its payload refers to, such
    as the clients a deal points at), summed as hashes of whole rows, so any change of a row shows, even one made
    by hand without a new `updated_at`."""
    ledger = conn.execute(
        """SELECT count(*), sum(hash(entity, our_key, target_id, content_hash, state, updated_at)::HUGEINT)
           FROM sync.ledger WHERE connection = ? AND entity IN (SELECT unnest(?))""",
        [connection, ledger_entities]).fetchone()
    links = conn.execute(  # entities synced both ways keep their pairs in sync.links (a deal points at a link)
        """SELECT count(*), sum(hash(entity, our_key, a_id, b_id, a_hash, b_hash, state)::HUGEINT)
           FROM sync.links WHERE connection = ? AND entity IN (SELECT unnest(?))""",
        [connection, ledger_entities]).fetchone()
    return fingerprint("plan", connection, entity, desired_sql, sorted((k, repr(v)) for k, v in params.items()),
                       upstream, sorted(ledger_entities), ledger[0], str(ledger[1]), links[0], str(links[1]))


def compute_plan(conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, desired_sql: str,
                 params: dict[str, Any], keep_payloads: bool = True, updates: bool = True) -> Plan:
    """`desired_sql` selects (our_key, payload VARCHAR JSON, blocked VARCHAR|NULL), one row per key. The plan
    is left in the temp table `_plan` of `conn` for `Plan.chunks` and the ledger's `log_plan`; without
    `keep_payloads` (a dry run) it holds no payloads and cannot be sent. Without `updates`, a record already in
    the target is left as it is when its content changes (it is still created once)."""
    sql = _PLAN_SQL.format(desired=desired_sql)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {sql}",
                 {**params, "connection": connection, "entity": entity, "keep_payloads": keep_payloads,
                  "updates": updates})
    plan = Plan(connection, entity)
    plan.counts.update(dict(conn.execute(f"SELECT action, count(*) FROM {TABLE} GROUP BY action").fetchall()))
    for action, key in conn.execute(
        f"""SELECT action, our_key FROM {TABLE} WHERE action <> 'unchanged'
            QUALIFY row_number() OVER (PARTITION BY action ORDER BY our_key) <= 3 ORDER BY action, our_key"""
    ).fetchall():
        plan.first_keys.setdefault(action, []).append(key)
    return plan

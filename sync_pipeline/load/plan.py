"""The plan: what the target should hold versus what `sync.ledger` says it holds (DESIGN §5)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

# A change is a change only if the content hash differs from the ledger's: our own writes never bounce.
_PLAN_SQL = """
WITH desired AS ({desired}),
hashed AS (SELECT our_key, payload, md5(payload) AS content_hash, blocked FROM desired)
SELECT d.our_key, d.payload, d.content_hash, d.blocked, l.target_id,
       CASE WHEN d.blocked IS NOT NULL THEN 'blocked'
            WHEN l.our_key IS NULL THEN 'create'
            WHEN l.state = 'intended' THEN 'recover'          -- crashed between intent and answer
            WHEN l.target_id IS NULL THEN 'create'            -- an earlier create was rejected
            WHEN l.state = 'failed' OR l.content_hash IS DISTINCT FROM d.content_hash THEN 'update'
            ELSE 'unchanged' END AS action
FROM hashed d
LEFT JOIN sync.ledger l ON l.connection = $connection AND l.entity = $entity AND l.our_key = d.our_key
"""


@dataclass(frozen=True)
class PlanItem:
    our_key: str
    action: str                 # create | recover | update | blocked
    payload: dict[str, Any]
    content_hash: str
    target_id: str | None
    blocked: str | None = None


@dataclass
class Plan:
    connection: str
    entity: str
    items: list[PlanItem] = field(default_factory=list)   # everything but unchanged
    counts: Counter = field(default_factory=Counter)      # per action, including unchanged

    def examples(self, action: str, n: int = 3) -> list[str]:
        return [i.our_key for i in self.items if i.action == action][:n]


def compute_plan(conn: duckdb.DuckDBPyConnection, *, connection: str, entity: str, desired_sql: str,
                 params: dict[str, Any]) -> Plan:
    """`desired_sql` selects (our_key, payload VARCHAR JSON, blocked VARCHAR|NULL), one row per key."""
    sql = _PLAN_SQL.format(desired=desired_sql)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _plan AS {sql}", {**params, "connection": connection, "entity": entity})
    plan = Plan(connection, entity)
    plan.counts.update(dict(conn.execute("SELECT action, count(*) FROM _plan GROUP BY action").fetchall()))
    rows = conn.execute(
        "SELECT our_key, action, payload, content_hash, target_id, blocked FROM _plan "
        "WHERE action <> 'unchanged' ORDER BY our_key"
    ).fetchall()
    plan.items = [PlanItem(k, a, json.loads(p), h, t, b) for k, a, p, h, t, b in rows]
    conn.execute("DROP TABLE _plan")
    return plan

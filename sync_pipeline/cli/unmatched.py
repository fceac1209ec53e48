"""The unmatched-accounts report: customers that are not synced, and why (`sync-pipeline unmatched`)."""

from __future__ import annotations

import duckdb
from tabulate import tabulate

COLUMNS = ("system", "source_id", "name", "problem", "reason", "invoices_held", "first_seen_at")


def list_unmatched(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM identity.unmatched_accounts ORDER BY problem, system, name, source_id"
    ).fetchall()
    return [dict(zip(COLUMNS, r)) for r in rows]


def render(rows: list[dict]) -> str:
    if not rows:
        return "every source customer is matched to an account"
    table = tabulate([[r["system"], r["source_id"], r["name"] or "-", r["problem"], r["invoices_held"], r["reason"]]
                      for r in rows], headers=["system", "id", "name", "problem", "invoices held", "reason"])
    return f"{len(rows)} customers are not synced:\n{table}"

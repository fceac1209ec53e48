"""Account metrics as of a date, computed in DuckDB from staging (DESIGN §4)."""

from __future__ import annotations

from datetime import date

import duckdb

from sync_pipeline.warehouse.db import read_sql, transaction


def rebuild_account_metrics(conn: duckdb.DuckDBPyConnection, *, as_of: date) -> int:
    sql = read_sql("sync_pipeline.transform", "sql/account_metrics.sql")
    with transaction(conn):
        conn.execute("DELETE FROM marts.account_metrics")
        conn.execute(f"INSERT INTO marts.account_metrics {sql}", {"as_of": as_of})
    (rows,) = conn.execute("SELECT count(*) FROM marts.account_metrics").fetchone()
    return rows


def metrics_summary(conn: duckdb.DuckDBPyConnection) -> dict:
    """Small figures for run metadata and the CLI summary."""
    accounts, overdue_accounts, overdue_invoices = conn.execute(
        """SELECT count(DISTINCT account_id),
                  count(DISTINCT account_id) FILTER (WHERE overdue_invoice_count > 0),
                  coalesce(sum(overdue_invoice_count), 0)
           FROM marts.account_metrics"""
    ).fetchone()
    by_currency = conn.execute(
        """SELECT currency, sum(total_due), sum(overdue_amount) FROM marts.account_metrics
           GROUP BY currency ORDER BY currency"""
    ).fetchall()
    return {
        "accounts": accounts,
        "accounts_overdue": overdue_accounts,
        "overdue_invoices": int(overdue_invoices),
        "by_currency": {c: {"total_due": str(d), "overdue_amount": str(o)} for c, d, o in by_currency},
    }


def worst_accounts(conn: duckdb.DuckDBPyConnection, limit: int = 10):
    """Accounts by overdue amount, for the Markdown preview in the UI."""
    return conn.execute(
        """SELECT m.account_id, any_value(a.name) AS name, m.currency, m.overdue_invoice_count,
                  m.overdue_amount, m.overdue_since, m.max_days_overdue, m.total_due
           FROM marts.account_metrics m LEFT JOIN staging.accounts a USING (account_id)
           WHERE m.overdue_invoice_count > 0
           GROUP BY ALL ORDER BY m.overdue_amount DESC, m.account_id LIMIT ?""",
        [limit],
    ).df()

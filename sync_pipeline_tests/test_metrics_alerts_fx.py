"""Risk alerts over consecutive evaluation dates, and a missing exchange rate (on the reference data)."""

from datetime import date
from decimal import Decimal

import dagster as dg

from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.test_metrics_reference import run_metrics, seed, write_reference_config

D1, D2, D3 = date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2)


def _mats(result):
    return {e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def _alerts(db):
    with connect(db) as conn:
        return sorted(conn.execute(
            "SELECT account_id, rule, status, opened_on, last_seen_on, resolved_on FROM marts.risk_alerts").fetchall())


def test_an_alert_opens_once_stays_open_and_resolves_when_paid(tmp_path):
    config = write_reference_config(tmp_path, {"EUR": "4.00", "USD": "3.50"})
    db = tmp_path / "w.duckdb"
    seed(db)

    first = _mats(run_metrics(config, db, as_of=D1))["metrics/risk_alerts"]
    assert (first["opened"].value, first["open"].value, first["resolved"].value) == (5, 5, 0)

    # D2: A2's invoice a2-7 (due 2026-06-30) is now overdue too: A2 has 3 overdue invoices, a new alert
    second = _mats(run_metrics(config, db, as_of=D2))["metrics/risk_alerts"]
    assert (second["opened"].value, second["open"].value, second["resolved"].value) == (1, 6, 0)
    again = _mats(run_metrics(config, db, as_of=D2))["metrics/risk_alerts"]  # same date again: nothing opens twice
    assert (again["opened"].value, again["open"].value, again["resolved"].value) == (0, 6, 0)

    with connect(db) as conn:  # A1 pays everything it owes
        conn.execute("""UPDATE staging.invoices SET status = 'paid', paid_amount = total_gross, amount_due = 0,
                        paid_date = DATE '2026-07-02' WHERE account_id = 'A1' AND amount_due > 0""")
    third = _mats(run_metrics(config, db, as_of=D3))["metrics/risk_alerts"]
    assert (third["opened"].value, third["open"].value, third["resolved"].value) == (0, 4, 2)

    assert _alerts(db) == [
        ("A1", "more_than_2_overdue_invoices", "resolved", D1, D2, D3),
        ("A1", "overdue_60_days_or_more", "resolved", D1, D2, D3),
        ("A2", "more_than_2_overdue_invoices", "open", D2, D3, None),
        ("A5", "more_than_2_overdue_invoices", "open", D1, D3, None),
        ("A5", "overdue_60_days_or_more", "open", D1, D3, None),
        ("A5", "overdue_amount_above_limit", "open", D1, D3, None),
    ]


def test_missing_rate_is_reported_and_left_out_of_the_rollup(tmp_path):
    config = write_reference_config(tmp_path, {"EUR": "4.00"})  # no USD rate
    db = tmp_path / "w.duckdb"
    seed(db)
    with connect(db) as conn:  # A2 also owes 100 USD, overdue since 2026-06-10
        conn.execute("""INSERT INTO staging.invoices (invoice_key, source_instance, source_id, account_id, kind, status,
                           issue_date, due_date, currency, total_gross, paid_amount, amount_due)
                        VALUES ('a2-8', 'src', 'a2-8', 'A2', 'invoice', 'open', DATE '2026-06-01', DATE '2026-06-10',
                                'USD', 100, 0, 100)""")
    result = run_metrics(config, db, as_of=D1)

    meta = _mats(result)["metrics/account_metrics"]
    assert meta["missing_fx_rates"].value == {
        "USD": {"accounts": 2, "billed_12m": "550.00", "total_due": "300.00", "overdue_amount": "100.00"}}
    checks = {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}
    assert checks["fx_rates_complete"] == (False, dg.AssetCheckSeverity.WARN)

    with connect(db) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            """SELECT account_id, total_due, overdue_amount, overdue_invoice_count, unconverted_currencies
               FROM marts.account_metrics_reporting""").fetchall()}
        health = dict(conn.execute("SELECT account_id, band || ': ' || reason FROM marts.financial_health").fetchall())
    # A2: EUR 750 × 4 + PLN 1000 due, as without the USD invoice; the USD 100 is not converted at a guess
    assert rows["A2"] == (Decimal("4000.00"), Decimal("3000.00"), 3, ["USD"])
    assert rows["A3"] == (Decimal("0.00"), Decimal("0.00"), 0, ["USD"])
    assert health["A3"] == "unknown: no exchange rate for USD"
    assert health["A2"].endswith("(not counted, no exchange rate: USD)")


def test_large_amounts_roll_up_without_overflow(tmp_path):
    """DECIMAL(18,2) × a DECIMAL(18,8) rate overflows from 10^8; the rollup widens the rate first."""
    config = write_reference_config(tmp_path, {"EUR": "4.30"})
    db = tmp_path / "w.duckdb"
    with connect(db) as conn:
        conn.execute("INSERT INTO staging.accounts (account_id, source_instance, source_system, source_id) "
                     "VALUES ('BIG', 'src', 'fakturownia', 'BIG')")
        conn.execute("""INSERT INTO staging.invoices (invoice_key, source_instance, source_id, account_id, kind, status,
                           issue_date, due_date, currency, total_gross, paid_amount, amount_due)
                        VALUES ('big-1', 'src', 'big-1', 'BIG', 'invoice', 'open', DATE '2026-06-01', DATE '2026-06-10',
                                'EUR', 250000000.00, 0, 250000000.00)""")
    assert run_metrics(config, db, as_of=D1).success
    with connect(db) as conn:
        (due,) = conn.execute("SELECT total_due FROM marts.account_metrics_reporting WHERE account_id = 'BIG'").fetchone()
    assert due == Decimal("1075000000.00")

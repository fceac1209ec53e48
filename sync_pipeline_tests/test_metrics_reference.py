"""Reference test of every metric (DESIGN §4): 30 invoices, 5 accounts, 3 currencies, every status
and kind. Every expected value below was worked out by hand from the definitions, not by the code.

As of D = 2026-06-30. 12-month window: issue_date > 2025-06-30; 90-day window: issue_date > 2026-04-01.
Reporting currency PLN; rates EUR 4.00, USD 3.50.
"""

import textwrap
from datetime import date
from decimal import Decimal as Dec

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import load_settings
from sync_pipeline.defs.checks import build_metrics_checks
from sync_pipeline.defs.metrics import build_metrics_assets
from sync_pipeline.defs.resources import RunOptions, SyncSettings
from sync_pipeline.warehouse.db import connect

D = date(2026, 6, 30)
d = date.fromisoformat

# key, account, kind, status, issue, due, paid_date, currency, gross, paid, amount_due (as staging stores it)
INVOICES = [
    # A1, PLN: a bad payer
    ("a1-1", "A1", "invoice", "open", "2026-01-10", "2026-01-24", None, "PLN", "1000", "0", "1000"),  # 157 days
    ("a1-2", "A1", "invoice", "partially_paid", "2026-04-15", "2026-05-15", "2026-05-20", "PLN", "2000", "500", "1500"),  # 46
    ("a1-3", "A1", "invoice", "open", "2026-06-10", "2026-06-24", None, "PLN", "300", "0", "300"),    # 6 days
    ("a1-4", "A1", "invoice", "open", "2026-06-20", "2026-07-04", None, "PLN", "400", "0", "400"),    # not yet due
    ("a1-5", "A1", "invoice", "paid", "2025-09-01", "2025-09-15", "2025-09-10", "PLN", "1500", "1500", "0"),
    ("a1-6", "A1", "proforma", "open", "2026-05-01", "2026-05-08", None, "PLN", "999", "0", "999"),   # not billable
    ("a1-7", "A1", "credit_note", "open", "2026-05-05", "2026-05-19", None, "PLN", "-200", "0", "0"),
    ("a1-8", "A1", "invoice", "draft", "2026-06-01", "2026-06-15", None, "PLN", "5000", "0", "0"),    # not billable
    ("a1-9", "A1", "invoice", "open", "2026-07-05", "2026-07-19", None, "PLN", "700", "0", "700"),    # future-dated
    # A2, EUR and PLN
    ("a2-1", "A2", "invoice", "paid", "2026-03-01", "2026-03-15", "2026-03-12", "EUR", "1000", "1000", "0"),
    ("a2-2", "A2", "invoice", "open", "2026-05-01", "2026-05-31", None, "EUR", "500", "0", "500"),    # 30 days
    ("a2-3", "A2", "invoice", "void", "2026-05-02", "2026-05-16", None, "EUR", "800", "0", "0"),
    ("a2-4", "A2", "advance", "open", "2026-06-01", "2026-06-15", None, "EUR", "250", "0", "250"),   # 15 days
    ("a2-5", "A2", "estimate", "open", "2026-06-02", "2026-06-16", None, "EUR", "600", "0", "600"),  # not billable
    ("a2-6", "A2", "receipt", "paid", "2026-02-01", "2026-02-01", "2026-02-01", "PLN", "100", "100", "0"),
    ("a2-7", "A2", "final", "partially_paid", "2026-04-20", "2026-06-30", "2026-04-25", "PLN", "1200", "200", "1000"),  # due today
    # A3, USD: healthy
    ("a3-1", "A3", "invoice", "paid", "2026-05-10", "2026-05-24", "2026-05-20", "USD", "300", "300", "0"),
    ("a3-2", "A3", "other", "open", "2026-06-25", "2026-07-25", None, "USD", "200", "0", "200"),
    ("a3-3", "A3", "margin", "paid", "2025-06-15", "2025-06-29", "2025-06-20", "USD", "1000", "1000", "0"),  # > 12 months
    ("a3-4", "A3", "correction", "open", "2026-06-01", "2026-06-15", None, "USD", "-50", "0", "0"),
    # A4: nothing billable
    ("a4-1", "A4", "proforma", "open", "2026-06-01", "2026-06-15", None, "PLN", "500", "0", "500"),
    ("a4-2", "A4", "invoice", "draft", "2026-06-05", "2026-06-19", None, "PLN", "300", "0", "0"),
    ("a4-3", "A4", "invoice", "void", "2026-05-01", "2026-05-15", None, "PLN", "100", "0", "0"),
    # A5, PLN and EUR: long overdue
    ("a5-1", "A5", "invoice", "open", "2025-12-01", "2025-12-15", None, "PLN", "5000", "0", "5000"),  # 197 days
    ("a5-2", "A5", "invoice", "partially_paid", "2026-03-01", "2026-04-15", "2026-04-10", "PLN", "3000", "1000", "2000"),  # 76
    ("a5-3", "A5", "invoice", "open", "2026-04-01", "2026-05-01", None, "PLN", "1000", "0", "1000"),  # 60 days; not in 90d
    ("a5-4", "A5", "invoice", "open", "2026-04-10", "2026-04-24", None, "EUR", "1000", "0", "1000"),  # 67 days
    ("a5-5", "A5", "invoice", "paid", "2025-07-01", "2025-07-15", "2025-08-01", "EUR", "2000", "2000", "0"),  # in 12m
    ("a5-6", "A5", "invoice", "open", "2025-06-30", "2025-07-14", None, "PLN", "700", "0", "700"),    # 351 days; not in 12m
    ("a5-7", "A5", "invoice", "paid", "2026-06-29", "2026-07-13", "2026-06-29", "PLN", "100", "100", "0"),
]

# (account, currency): count, billed_12m, paid, due, overdue n, overdue amount, since, max days,
#                      aging current, 1_30, 31_60, 61_90, 91_plus, billed_90d, dso_90d, last payment
PER_CURRENCY = {
    ("A1", "PLN"): (6, "5000", "2000", "3200", 3, "2800", "2026-01-24", 157, "400", "300", "1500", "0", "1000", "2500", "115.2", "2026-05-20"),
    ("A2", "EUR"): (3, "1750", "1000", "750", 2, "750", "2026-05-31", 30, "0", "750", "0", "0", "0", "750", "90.0", "2026-03-12"),
    ("A2", "PLN"): (2, "1300", "300", "1000", 0, "0", None, None, "1000", "0", "0", "0", "0", "1200", "75.0", "2026-04-25"),
    ("A3", "USD"): (4, "450", "1300", "200", 0, "0", None, None, "200", "0", "0", "0", "0", "450", "40.0", "2026-05-20"),
    ("A5", "PLN"): (5, "9100", "1100", "8700", 4, "8700", "2025-07-14", 351, "0", "0", "1000", "2000", "5700", "100", "7830.0", "2026-06-29"),
    ("A5", "EUR"): (2, "3000", "2000", "1000", 1, "1000", "2026-04-24", 67, "0", "0", "0", "1000", "0", "1000", "90.0", "2025-08-01"),
}

# account: the same figures rolled up in PLN (EUR × 4.00, USD × 3.50), then unconverted currencies
REPORTING = {
    "A1": (6, "5000", "2000", "3200", 3, "2800", "2026-01-24", 157, "400", "300", "1500", "0", "1000", "2500", "115.2", "2026-05-20", []),
    "A2": (5, "8300", "4300", "4000", 2, "3000", "2026-05-31", 30, "1000", "3000", "0", "0", "0", "4200", "85.7", "2026-04-25", []),
    "A3": (4, "1575", "4550", "700", 0, "0", None, None, "700", "0", "0", "0", "0", "1575", "40.0", "2026-05-20", []),
    "A5": (7, "21100", "9100", "12700", 5, "12700", "2025-07-14", 351, "0", "0", "1000", "6000", "5700", "4100", "278.8", "2026-06-29", []),
}

# score = 100 × (1 − (0.5 × share + 0.3 × days + 0.2 × count)):
#   A1: share 2800/5000 = .56, days 1, count 3/5 → 100 × (1 − .70) = 30
#   A2: share 3000/8300 = .3614, days 30/90, count 2/5 → 100 × (1 − .3607) = 63.93 → 64
#   A3: nothing overdue → 100;  A4: no billable invoice → unknown
#   A5: share 12700/21100 = .6019, days 1, count 1 → 100 × (1 − .8009) = 19.9 → 20
HEALTH = {
    "A1": (30, "critical", "3 invoices overdue, 2 800.00 PLN, oldest 157 days"),
    "A2": (64, "at_risk", "2 invoices overdue, 3 000.00 PLN, oldest 30 days"),
    "A3": (100, "healthy", "nothing overdue, 700.00 PLN due"),
    "A4": (None, "unknown", "no billable invoices"),
    "A5": (20, "critical", "5 invoices overdue, 12 700.00 PLN, oldest 351 days"),
}

COLUMNS = ("invoice_count, total_billed_12m, total_paid, total_due, overdue_invoice_count, overdue_amount, "
           "overdue_since, max_days_overdue, aging_current, aging_1_30, aging_31_60, aging_61_90, aging_91_plus, "
           "billed_90d, dso_90d, last_payment_date")


def typed(row):
    n, *money_and_dates = row
    out = [n]
    for i, v in enumerate(money_and_dates):
        if i in (5, 14):                                    # overdue_since, last_payment_date
            out.append(d(v) if v else None)
        elif i == 6:                                        # max_days_overdue
            out.append(v)
        elif i == 3:                                        # overdue_invoice_count
            out.append(v)
        elif isinstance(v, list):
            out.append(v)
        else:
            out.append(Dec(v) if v is not None else None)
    return tuple(out)


def write_reference_config(tmp_path, rates: dict[str, str]) -> str:
    rates_yaml = "{" + ", ".join(f"{k}: {v}" for k, v in rates.items()) + "}"
    path = tmp_path / "sync.yaml"
    path.write_text(textwrap.dedent(f"""\
        warehouse: {{path: {tmp_path / 'w.duckdb'}}}
        metrics:
          reporting_currency: PLN
          fx_rates: {rates_yaml}
        systems:
          src: {{type: fakturownia, base_url: "http://127.0.0.1:1", api_token: "${{SYNC_TEST_TOKEN:-t}}"}}
          crm: {{type: sugester, base_url: "http://127.0.0.1:1", api_token: "${{SYNC_TEST_TOKEN:-t}}"}}
        connections:
          c: {{source: src, target: crm}}
        """))
    return str(path)


def seed(db):
    with connect(db) as conn:
        conn.executemany(
            "INSERT INTO staging.accounts (account_id, source_instance, source_system, source_id, name) VALUES (?, 'src', 'fakturownia', ?, ?)",
            [(a, a, f"Account {a}") for a in ("A1", "A2", "A3", "A4", "A5")])
        conn.executemany(
            """INSERT INTO staging.invoices (invoice_key, source_instance, source_id, account_id, number, kind, source_kind,
                   status, source_status, issue_date, due_date, paid_date, currency, total_net, total_gross,
                   paid_amount, amount_due, view_url, source_updated_at)
               VALUES (?, 'src', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL)""",
            [(k, k, a, k, kind, kind, st, st, iss, due, pd, cur, g, p, amt)
             for k, a, kind, st, iss, due, pd, cur, g, p, amt in INVOICES])


def run_metrics(config_path, db, as_of=D):
    settings = load_settings(config_path)
    resources = {"sync_settings": SyncSettings(config_path=config_path), "duckdb": DuckDBResource(database=str(db)),
                 "run_options": RunOptions(as_of=as_of.isoformat())}
    assert settings.metrics.reporting_currency == "PLN"
    return dg.materialize([*build_metrics_assets(), *build_metrics_checks()], resources=resources)


@pytest.fixture
def reference(tmp_path):
    config = write_reference_config(tmp_path, {"EUR": "4.00", "USD": "3.50"})
    db = tmp_path / "w.duckdb"
    seed(db)
    return config, db


def test_thirty_invoices_cover_every_status_and_kind():
    assert len(INVOICES) == 30
    assert {i[3] for i in INVOICES} == {"draft", "open", "partially_paid", "paid", "void"}
    assert {i[2] for i in INVOICES} == {"invoice", "credit_note", "advance", "final", "receipt", "margin",
                                        "correction", "proforma", "estimate", "other"}
    assert {i[7] for i in INVOICES} == {"PLN", "EUR", "USD"} and len({i[1] for i in INVOICES}) == 5


def test_every_metric_per_account_and_currency(reference):
    config, db = reference
    result = run_metrics(config, db)
    assert result.success
    with connect(db) as conn:
        got = {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(
            f"SELECT account_id, currency, {COLUMNS} FROM marts.account_metrics").fetchall()}
        as_of = conn.execute("SELECT DISTINCT as_of FROM marts.account_metrics").fetchall()
    assert as_of == [(D,)]
    assert set(got) == set(PER_CURRENCY)  # A4 has nothing billable: no metrics row
    for key, expected in PER_CURRENCY.items():
        assert got[key] == typed(expected), key


def test_every_metric_rolled_up_in_the_reporting_currency(reference):
    config, db = reference
    assert run_metrics(config, db).success
    with connect(db) as conn:
        got = {r[0]: tuple(r[1:]) for r in conn.execute(
            f"SELECT account_id, {COLUMNS}, unconverted_currencies FROM marts.account_metrics_reporting "
            "WHERE reporting_currency = 'PLN'").fetchall()}
    assert set(got) == set(REPORTING)
    for key, expected in REPORTING.items():
        assert got[key] == typed(expected), key


def test_health_scores_bands_and_reasons(reference):
    config, db = reference
    result = run_metrics(config, db)
    with connect(db) as conn:
        got = {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT account_id, score, band, reason FROM marts.financial_health").fetchall()}
    assert got == HEALTH
    mats = {e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    health = mats["metrics/financial_health"]
    assert (health["band_healthy"].value, health["band_at_risk"].value, health["band_critical"].value,
            health["band_unknown"].value) == (1, 1, 2, 1)
    assert "Account A5" in health["worst_accounts"].value  # the Markdown preview leads with the worst


def test_default_alert_rules_open_the_expected_alerts(reference):
    config, db = reference
    assert run_metrics(config, db).success
    with connect(db) as conn:
        got = sorted(conn.execute("SELECT account_id, rule, severity, value FROM marts.risk_alerts WHERE status = 'open'").fetchall())
    assert got == [
        ("A1", "more_than_2_overdue_invoices", "warning", 3.0),
        ("A1", "overdue_60_days_or_more", "critical", 157.0),
        ("A5", "more_than_2_overdue_invoices", "warning", 5.0),
        ("A5", "overdue_60_days_or_more", "critical", 351.0),
        ("A5", "overdue_amount_above_limit", "warning", 12700.0),
    ]


def test_checks_pass_on_consistent_data_and_catch_a_wrong_overdue_amount(reference):
    config, db = reference
    result = run_metrics(config, db)
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "overdue_invoice_has_account": True, "overdue_amount_matches_invoices": True, "fx_rates_complete": True}
    # a staging row that changes under the metrics: the restated sum no longer matches
    with connect(db) as conn:
        conn.execute("UPDATE staging.invoices SET amount_due = 1001 WHERE invoice_key = 'a1-1'")
        conn.execute("DELETE FROM staging.accounts WHERE account_id = 'A5'")
    resources = {"duckdb": DuckDBResource(database=str(db))}
    checks = dg.materialize(build_metrics_checks(), resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.all_asset_checks())
    got = {e.event_specific_data.check_name: e.event_specific_data.passed for e in checks.all_events
           if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert got["overdue_amount_matches_invoices"] is False and got["overdue_invoice_has_account"] is False

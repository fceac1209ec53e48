"""Staging and metrics assets materialised on a temporary DuckDB with raw rows put there directly."""

from datetime import date
from decimal import Decimal

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import load_settings
from sync_pipeline.defs.metrics import build_metrics_assets
from sync_pipeline.defs.staging import build_staging_assets
from sync_pipeline.defs.checks import build_staging_checks
from sync_pipeline.defs.resources import RunOptions, SyncSettings
from sync_pipeline.warehouse.db import connect
from sync_pipeline.warehouse.raw import RawLanding
from sync_pipeline_tests.conftest import write_config

D = date(2026, 6, 15)


def client(id, **kw):
    return {"id": id, "name": f"Client {id}", "tax_no": "PL 521-345-67-89", "external_id": f"crm-{id}",
            "updated_at": "2026-01-01T10:00:00.000+01:00", **kw}


def invoice(id, client_id=1, **kw):
    base = {"id": id, "client_id": client_id, "kind": "vat", "number": f"FV/{id}", "status": "issued",
            "cancelled": False, "issue_date": "2026-05-01", "payment_to": "2026-05-15", "paid_date": None,
            "price_net": "100.0", "price_gross": "123.0", "paid": "0.0", "currency": "PLN",
            "view_url": f"http://x/invoice/{id}", "updated_at": "2026-05-01T10:00:00.000+02:00"}
    return base | kw


@pytest.fixture
def env(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:1", identifier="external_id")
    settings = load_settings(config, strict=False)
    defs = [*build_staging_assets(settings), *build_metrics_assets()]  # unbound: resources given below
    resources = {"sync_settings": SyncSettings(config_path=str(config)), "run_options": RunOptions(),
                 "duckdb": DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))}
    return defs, resources, tmp_path / "warehouse.duckdb"


def land(db, clients, invoices):
    with connect(db) as conn:
        for entity, rows in (("clients", clients), ("invoices", invoices)):
            landing = RawLanding(conn, system="fakturownia", entity=entity, run_id="test")
            landing.add_page(rows)
            landing.commit()


def materialize(defs, resources, *keys, run_config=None):
    wanted = {dg.AssetKey(k.split("/")) for k in keys}
    assets = [a for a in defs if wanted & set(a.keys)]
    return dg.materialize([*assets, *build_staging_checks()], resources=resources, run_config=run_config)


def test_status_kind_amount_mapping_and_quarantine(env):
    defs, resources, db = env
    land(db, [client(1), client(2, external_id=None), client(3)], [
        invoice(10),
        invoice(11, status="partial", paid="23.0", paid_date="2026-05-10"),
        invoice(12, status="paid", paid="123.0", paid_date="2026-05-03"),
        invoice(13, status="issued", cancelled=True),
        invoice(14, status="rejected", kind="proforma"),
        invoice(15, kind="vat_margin", client_id=2),               # client 2 has no external_id → quarantined
        invoice(16, kind="correction", price_gross="-50.0", price_net="-40.65", currency="eur"),
        invoice(17, currency="XYZ"),
        invoice(18, status="weird"),
        invoice(19, payment_to="2026-13-01"),
    ])
    result = materialize(defs, resources, "staging/accounts", "staging/invoices", "staging/quarantine")
    assert result.success
    with connect(db) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT invoice_key, account_id, kind, status, amount_due, currency FROM staging.invoices").fetchall()}
        q = dict(conn.execute("SELECT source_id, reason FROM staging.quarantine").fetchall())
    assert rows["fakturownia:10"] == ("crm-1", "invoice", "open", Decimal("123.00"), "PLN")
    assert rows["fakturownia:11"] == ("crm-1", "invoice", "partially_paid", Decimal("100.00"), "PLN")
    assert rows["fakturownia:12"][2:4] == ("paid", Decimal("0.00"))
    assert rows["fakturownia:13"][2:4] == ("void", Decimal("0.00"))
    assert rows["fakturownia:14"][1:3] == ("proforma", "void")
    # a credit note is billed (negatively) but never owed: its amount due is 0, not negative
    assert rows["fakturownia:16"] == ("crm-1", "correction", "open", Decimal("0.00"), "EUR")
    assert q == {
        "2": "no account identifier (strategy external_id)",
        "15": "client 2 is not a staged account",
        "17": "unknown currency 'XYZ'",
        "18": "unknown status 'weird'",
        "19": "impossible payment_to '2026-13-01'",
    }
    mats = {e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert mats["staging/invoices"]["records_in"].value == 10
    assert mats["staging/invoices"]["dagster/row_count"].value == 6
    assert mats["staging/invoices"]["quarantined"].value == 4
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"invoice_key_unique": True, "invoice_has_account": True, "no_negative_amount_due": True,
                      "account_unique_per_source": True, "no_identifier_drift": True}


def test_identifier_drift_keeps_the_bound_account_and_fails_the_check(env):
    defs, resources, db = env
    land(db, [client(1)], [invoice(10)])
    assert materialize(defs, resources, "staging/accounts", "staging/invoices", "staging/quarantine").success
    land(db, [client(1, external_id="crm-CHANGED", updated_at="2026-02-01T10:00:00.000+01:00")], [])
    result = materialize(defs, resources, "staging/accounts", "staging/invoices", "staging/quarantine")
    with connect(db) as conn:
        accounts = conn.execute("SELECT account_id FROM staging.accounts").fetchall()
        (reason, disposition) = conn.execute("SELECT reason, disposition FROM staging.quarantine").fetchone()
    assert accounts == [("crm-1",)]
    assert reason == "identifier drift: bound to crm-1, source now gives crm-CHANGED" and disposition == "kept"
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["no_identifier_drift"] is False and checks["invoice_has_account"] is True


def test_metrics_as_of_a_date(env):
    defs, resources, db = env
    land(db, [client(1), client(2)], [
        invoice(10, payment_to="2026-06-01"),                                   # overdue 14 days, 123
        invoice(11, status="partial", paid="23.0", payment_to="2026-05-01", paid_date="2026-05-20"),  # overdue 45 days, 100
        invoice(12, payment_to="2026-07-01"),                                   # open, not due
        invoice(13, kind="proforma", payment_to="2026-01-01"),                  # not billable
        invoice(14, client_id=2, status="paid", paid="123.0", paid_date="2026-05-03"),
        invoice(15, issue_date="2026-07-01", payment_to="2026-07-02"),          # future-dated: not billable yet
    ])
    result = materialize(defs, {**resources, "run_options": RunOptions(as_of=D.isoformat())}, "staging/accounts",
                         "staging/invoices", "staging/quarantine", "metrics/account_metrics")
    assert result.success
    with connect(db) as conn:
        m = {r[0]: r[1:] for r in conn.execute(
            """SELECT account_id, overdue_invoice_count, overdue_amount, overdue_since, max_days_overdue, total_due,
                      total_paid, last_payment_date FROM marts.account_metrics""").fetchall()}
    assert m["crm-1"] == (2, Decimal("223.00"), date(2026, 5, 1), 45, Decimal("346.00"), Decimal("23.00"), date(2026, 5, 20))
    assert m["crm-2"] == (0, Decimal("0.00"), None, None, Decimal("0.00"), Decimal("123.00"), date(2026, 5, 3))

"""Zoho Invoice → CustomerSuccessBox end to end over real HTTP against the sandbox simulators."""

import json
import textwrap
from decimal import Decimal

import pytest

from sync_pipeline.config import load_settings
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import TODAY, run_sync

pytestmark = pytest.mark.e2e
CONN = "zoho_to_customersuccessbox"
CSB_STATUS = {"draft": "Draft", "void": "Void", "paid": "Paid"}


def zoho_config(tmp_path, sandbox, *, per_page=200, refresh_token="sandbox-zoho-refresh") -> str:
    path = tmp_path / "sync.yaml"
    path.write_text(textwrap.dedent(f"""\
        warehouse: {{path: {tmp_path / 'w.duckdb'}}}
        metrics: {{reporting_currency: EUR, fx_rates: {{USD: 0.92, GBP: 1.17}}}}
        systems:
          zoho:
            type: zoho_invoice
            dc: eu
            base_url: {sandbox.url}/zoho/invoice/v3
            accounts_url: {sandbox.url}/zoho-accounts
            organization_id: "20240001"
            client_id: sandbox-zoho-client
            client_secret: ${{SYNC_TEST_ZOHO_SECRET:-sandbox-zoho-secret}}
            refresh_token: ${{SYNC_TEST_ZOHO_REFRESH:-{refresh_token}}}
            identifier_field: cf_account_id
            per_page: {per_page}
            retry: {{max_attempts: 4, base_delay: 0.01, max_delay: 0.05, total_budget: 10}}
          csb:
            type: customersuccessbox
            base_url: {sandbox.url}/csb
            api_key: ${{SYNC_TEST_CSB_KEY:-sandbox-csb-key}}
        connections:
          {CONN}: {{source: zoho, target: csb}}
        """))
    return str(path)


def account_id_of(contact: dict) -> str | None:
    return (contact.get("custom_field_hash") or {}).get("cf_account_id_unformatted") or None


def test_matched_customers_and_their_invoices_arrive_once_with_status_and_amounts(tmp_path, sandbox, instance):
    config = zoho_config(tmp_path, sandbox)
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    contacts = sandbox.zoho.contacts
    matched = {cid: account_id_of(c) for cid, c in contacts.items() if account_id_of(c)}
    unmatched = {cid for cid, c in contacts.items() if not account_id_of(c)}
    assert matched and unmatched

    csb = sandbox.csb
    assert set(csb.accounts) == set(matched.values())
    account_pushes = [i for kind, i in csb.pushes if kind == "account"]
    assert len(account_pushes) == len(set(account_pushes))  # each once
    expected = {f"zoho:{i}": inv for i, inv in sandbox.zoho.invoices.items() if inv["customer_id"] in matched}
    assert set(csb.invoices) == set(expected)
    invoice_pushes = [i for kind, i in csb.pushes if kind == "invoice"]
    assert sorted(invoice_pushes) == sorted(expected)
    for key, inv in expected.items():
        got = csb.invoices[key]
        status = CSB_STATUS.get(inv["status"], "Future" if inv["date"] > TODAY.isoformat() else "Not Paid")
        assert got["status"] == status, (key, inv["status"])
        assert got["account_id"] == matched[inv["customer_id"]]
        assert Decimal(str(got["total"])) == Decimal(str(inv["total"]))
        due = Decimal(str(inv["balance"])) if inv["status"] not in ("draft", "void") else Decimal(0)
        assert Decimal(str(got["amount_due"])) == due
        assert Decimal(str(got["paid_amount"])) == Decimal(str(inv["total"])) - Decimal(str(inv["balance"]))
        assert got["paid_on"] == (inv["last_payment_date"] or None)
    names = {c["company_name"] or c["contact_name"] for cid, c in contacts.items() if cid in unmatched}
    dumped = json.dumps([csb.accounts, csb.invoices])
    assert not any(n in dumped for n in names)  # unmatched customers reach CSB nowhere

    from sync_pipeline.cli import main
    assert main(["unmatched", "--json", "--config", config]) == 0


def test_unmatched_report_lists_them_with_name_id_and_reason(tmp_path, sandbox, instance, capsys):
    config = zoho_config(tmp_path, sandbox)
    run_sync(config, instance)
    capsys.readouterr()
    from sync_pipeline.cli import main

    assert main(["unmatched", "--json", "--config", config]) == 0
    rows = json.loads(capsys.readouterr().out)
    unmatched = {cid: c for cid, c in sandbox.zoho.contacts.items() if not account_id_of(c)}
    assert {r["source_id"] for r in rows} == set(unmatched)
    for r in rows:
        assert r["name"] == (unmatched[r["source_id"]]["company_name"] or unmatched[r["source_id"]]["contact_name"])
        assert r["problem"] == "no_identifier" and "cf_account_id" in r["reason"]


def test_second_run_sends_nothing_and_a_payment_sends_exactly_that_invoice_and_account(tmp_path, sandbox, instance):
    config = zoho_config(tmp_path, sandbox)
    run_sync(config, instance)
    n = len(sandbox.csb.pushes)
    _, second = run_sync(config, instance)
    assert len(sandbox.csb.pushes) == n
    assert second["connections"][CONN]["accounts"]["updated"] == 0

    matched = {cid for cid, c in sandbox.zoho.contacts.items() if account_id_of(c)}
    victim = next(i for i, inv in sorted(sandbox.zoho.invoices.items())
                  if inv["customer_id"] in matched and inv["status"] in ("overdue", "sent") and inv["date"] <= TODAY.isoformat())
    account = account_id_of(sandbox.zoho.contacts[sandbox.zoho.invoices[victim]["customer_id"]])
    sandbox.zoho.pay_invoice(victim)
    _, third = run_sync(config, instance)
    assert sandbox.csb.pushes[n:] == [("account", account), ("invoice", f"zoho:{victim}")]
    assert sandbox.csb.invoices[f"zoho:{victim}"]["status"] == "Paid"


def test_expired_token_is_refreshed_once_and_a_revoked_refresh_token_fails_clearly(tmp_path, sandbox, instance):
    config = zoho_config(tmp_path, sandbox)
    assert run_sync(config, instance)[1]["ok"]
    before = sandbox.zoho_accounts.refresh_count
    sandbox.zoho_accounts.expire_access_tokens()
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    assert sandbox.zoho_accounts.refresh_count == before + 1

    sandbox.zoho_accounts.revoke_refresh_token()
    sandbox.zoho_accounts.expire_access_tokens()
    runs, summary = run_sync(config, instance)
    assert not summary["ok"]
    error = runs[0].error
    assert error.startswith(f"connection {CONN}:") and "refresh" in error.lower(), error
    for secret in ("sandbox-zoho-refresh", "sandbox-zoho-secret"):
        assert secret not in error and secret not in json.dumps(summary)


def test_rate_limit_44_is_waited_out_and_daily_limit_45_stops_then_resumes(tmp_path, sandbox, instance):
    config = zoho_config(tmp_path, sandbox, per_page=50)
    sandbox.zoho.per_minute_limit = 60
    sandbox.zoho._minute_bucket.capacity = sandbox.zoho._minute_bucket.tokens = 1.0  # one call per second
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    pages = [r for r in sandbox.zoho.requests("GET", "/invoice/v3/invoices")]
    distinct = {r.query.get("page", ["1"])[0] for r in pages}
    assert len(distinct) == 3 and len(pages) > 3  # 150 invoices in 3 pages, some asked again after a 429
    assert len(sandbox.csb.invoices) > 0
    sandbox.zoho.per_minute_limit = None

    # a new database and a daily limit that runs out in the middle of the invoices
    (tmp_path / "second").mkdir()
    config = zoho_config(tmp_path / "second", sandbox, per_page=50)
    sandbox.zoho.reset_daily_limit()
    sandbox.zoho.daily_limit = 3  # contacts page, invoices page 1, then code 45
    runs, summary = run_sync(config, instance)
    assert not summary["ok"]
    assert "daily" in runs[0].error.lower(), runs[0].error
    with connect(load_settings(config).warehouse_path) as conn:
        (kept,) = conn.execute("SELECT count(*) FROM raw.zoho_invoices").fetchone()
    assert kept >= 50  # what was fetched before the limit is kept

    sandbox.zoho.reset_daily_limit()
    sandbox.zoho.daily_limit = None
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    with connect(load_settings(config).warehouse_path) as conn:
        (total,) = conn.execute("SELECT count(*) FROM raw.zoho_invoices").fetchone()
    assert total == len(sandbox.zoho.invoices)


def test_identifier_drift_is_reported_and_creates_no_second_account(tmp_path, sandbox, instance, capsys):
    config = zoho_config(tmp_path, sandbox)
    run_sync(config, instance)
    contact_id, contact = next((cid, c) for cid, c in sorted(sandbox.zoho.contacts.items()) if account_id_of(c))
    original = account_id_of(contact)
    accounts_before = set(sandbox.csb.accounts)
    sandbox.zoho.set_contact_field(contact_id, "cf_account_id", "ACC-CHANGED")
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    assert set(sandbox.csb.accounts) == accounts_before and "ACC-CHANGED" not in sandbox.csb.accounts
    capsys.readouterr()
    from sync_pipeline.cli import main

    main(["unmatched", "--json", "--config", config])
    rows = {r["source_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[contact_id]["problem"] == "identifier_drift"
    assert rows[contact_id]["reason"] == f"identifier drift: bound to {original}, source now gives ACC-CHANGED"


def test_definitions_schedule_the_connection_nightly_in_utc(tmp_path, sandbox):
    defs = build_definitions(zoho_config(tmp_path, sandbox))
    [schedule] = [s for s in defs.schedules if s.name != "system_status_schedule"]
    assert (schedule.name, schedule.cron_schedule, schedule.execution_timezone) == (
        f"{CONN}_schedule", "0 0 * * *", "UTC")


def test_status_shows_the_last_run_per_connection(tmp_path, sandbox, instance):
    from sync_pipeline.cli.status import connection_status, render

    config = zoho_config(tmp_path, sandbox)
    settings = load_settings(config, strict=False)
    assert connection_status(instance, settings)[0]["last_run"] is None
    runs, summary = run_sync(config, instance)
    [status] = connection_status(instance, settings)
    run = status["last_run"]
    assert (run["run_id"], run["status"], run["first_error"]) == (runs[0].run_id, "Successful", None)
    assert run["counts"]["accounts"]["created"] == len(sandbox.csb.accounts) and run["duration_seconds"] > 0
    assert status["cron"] == "0 0 * * *"
    # `status` (stored events) and `run` (the run it just executed) read counts the same way
    assert set(run["counts"]) == {"accounts", "invoices"}
    for entity, counts in run["counts"].items():
        assert counts == {k: v for k, v in summary["connections"][CONN][entity].items() if k != "examples"}

    sandbox.zoho_accounts.revoke_refresh_token()
    sandbox.zoho_accounts.expire_access_tokens()
    failed, _ = run_sync(config, instance)
    [status] = connection_status(instance, settings)
    assert status["last_run"]["status"] == "Failed"
    assert "refresh" in status["last_run"]["first_error"].lower()
    assert failed[0].error == f"connection {CONN}: {status['last_run']['first_error']}"  # one first_error()
    assert "sandbox-zoho-refresh" not in render([status])
    assert "last run: Failed" in render([status])

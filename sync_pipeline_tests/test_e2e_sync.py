"""End to end over real HTTP: sandbox simulators on 127.0.0.1, a real DuckDB file, in-process Dagster runs."""

import json
from decimal import Decimal

import dagster as dg
import pytest

from sync_pipeline.config import DEFAULT_DEAL_KINDS, load_settings
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import F_TOKEN, TODAY, run_sync, write_config

pytestmark = pytest.mark.e2e
CONN = "fakturownia_to_sugester"


def served_invoices(sandbox) -> dict[int, dict]:
    """What the Fakturownia simulator serves over HTTP (the truth the pipeline must match)."""
    with FakturowniaClient(system="check", base_url=f"{sandbox.url}/fakturownia", api_token=F_TOKEN) as api:
        return {i["id"]: i for page in api.iter_invoice_pages() for i in page}


def warehouse(config_path):
    return connect(load_settings(config_path).warehouse_path)


def deals_by_key(sandbox) -> dict[str, dict]:
    return {d["external_ids"]["sync_pipeline"]: d for d in sandbox.sugester.deals.values()}


def test_first_run_stages_everything_and_makes_one_deal_per_selected_invoice(config_path, sandbox, instance):
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    served = served_invoices(sandbox)
    with warehouse(config_path) as conn:
        (staged,) = conn.execute("SELECT count(*) FROM staging.invoices").fetchone()
    assert staged == len(served) > 100

    selected = {f"fakturownia:{i}": inv for i, inv in served.items() if inv["kind"] in DEFAULT_DEAL_KINDS}
    assert 0 < len(selected) < len(served)  # some proformas/corrections are not deals
    deals = deals_by_key(sandbox)
    assert set(deals) == set(selected) and len(sandbox.sugester.deals) == len(selected)
    clients = sandbox.sugester.clients
    for key, deal in deals.items():
        inv = selected[key]
        # list rows sometimes lack view_url (as real ones do): the link is then built from the token
        assert deal["url"] == (inv.get("view_url") or f"{sandbox.url}/fakturownia/invoice/{inv['token']}")
        assert deal["url"].startswith(sandbox.url)
        assert clients[deal["client_id"]]["external_id"] == f"fakturownia:{inv['client_id']}"
        assert Decimal(str(deal["price"])) == Decimal(inv["price_gross"])
        assert deal["currency"] == inv["currency"] and deal["paid"] == (inv["status"] == "paid" and not inv["cancelled"])
    c = summary["connections"][CONN]
    assert c["deals"]["created"] == len(selected) and c["clients"]["created"] == len(sandbox.fakturownia.clients)
    f = summary["systems"]["fakturownia"]["invoices"]
    assert f["extracted"] == len(served) and f["records_in"] == f["staged"] + f["quarantined"]


def test_second_run_creates_and_updates_nothing(config_path, sandbox, instance, capsys, monkeypatch, tmp_path):
    run_sync(config_path, instance)
    sandbox.sugester.clear_requests()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    from sync_pipeline.cli import main

    assert main(["run", "--json", "--config", str(config_path), "--as-of", TODAY.isoformat()]) == 0
    summary = json.loads(capsys.readouterr().out)
    c = summary["connections"][CONN]
    for entity in ("clients", "deals"):
        assert (c[entity]["created"], c[entity]["updated"], c[entity]["failed"]) == (0, 0, 0)
        assert c[entity]["unchanged"] > 0
    writes = [r for r in sandbox.sugester.requests() if r.method in ("POST", "PUT", "DELETE")]
    assert writes == []


def test_changed_deal_kinds_change_which_invoices_become_deals(tmp_path, sandbox, instance):
    config_path = write_config(tmp_path, sandbox.url, deal_kinds=("vat",))
    run_sync(config_path, instance)
    served = served_invoices(sandbox)
    vat = {f"fakturownia:{i}" for i, inv in served.items() if inv["kind"] == "vat"}
    assert set(deals_by_key(sandbox)) == vat

    config_path = write_config(tmp_path, sandbox.url, deal_kinds=("vat", "proforma"))
    _, summary = run_sync(config_path, instance)
    proformas = {f"fakturownia:{i}" for i, inv in served.items() if inv["kind"] == "proforma"}
    assert proformas and summary["connections"][CONN]["deals"]["created"] == len(proformas)
    assert set(deals_by_key(sandbox)) == vat | proformas


def test_incremental_run_reads_only_changed_pages_and_shows_payments(config_path, sandbox, instance):
    _, first = run_sync(config_path, instance)
    assert first["systems"]["fakturownia"]["invoices"]["pages"] >= 3
    served = served_invoices(sandbox)
    overdue = [i for i, inv in sorted(served.items())
               if inv["status"] in ("issued", "sent") and not inv["cancelled"] and inv["payment_to"] < TODAY.isoformat()
               and inv["kind"] == "vat"][:3]
    assert len(overdue) == 3
    with warehouse(config_path) as conn:
        before = dict(conn.execute("SELECT invoice_key, amount_due FROM staging.invoices").fetchall())
        overdue_before = conn.execute("SELECT sum(overdue_amount) FROM marts.account_metrics").fetchone()[0]
    for i in overdue:
        sandbox.fakturownia.pay_invoice(i)
    sandbox.fakturownia.clear_requests()

    _, second = run_sync(config_path, instance)
    invoice_pages = sandbox.fakturownia.requests("GET", "/invoices.json")
    assert len(invoice_pages) == 1, [r.query for r in invoice_pages]
    assert invoice_pages[0].query.get("order") == ["updated_at.desc"]
    assert len(sandbox.fakturownia.requests("GET", "/clients.json")) == 1
    assert second["systems"]["fakturownia"]["invoices"]["extracted"] < 100

    keys = [f"fakturownia:{i}" for i in overdue]
    with warehouse(config_path) as conn:
        after = dict(conn.execute("SELECT invoice_key, amount_due FROM staging.invoices").fetchall())
        overdue_after = conn.execute("SELECT sum(overdue_amount) FROM marts.account_metrics").fetchone()[0]
    assert all(after[k] == 0 for k in keys) and all(before[k] > 0 for k in keys)
    assert overdue_after == overdue_before - sum(before[k] for k in keys)
    assert second["connections"][CONN]["deals"]["updated"] == 3
    assert second["connections"][CONN]["deals"]["created"] == 0
    deals = deals_by_key(sandbox)
    assert all(deals[k]["paid"] is True for k in keys)


def test_backfill_one_month_loads_exactly_that_month_and_again_duplicates_nothing(config_path, sandbox, instance):
    defs = build_definitions(config_path)
    history = defs.resolve_assets_def(dg.AssetKey(["fakturownia", "invoice_history"]))
    month = "2026-03"
    expected = {str(i) for i, inv in served_invoices(sandbox).items() if inv["issue_date"].startswith(month)}
    assert expected
    for attempt in range(2):
        # the asset comes bound to the definitions' resources: this config's sandbox and warehouse file
        result = dg.materialize([history], partition_key=f"{month}-01", instance=instance)
        assert result.success
        with warehouse(config_path) as conn:
            rows = conn.execute("SELECT source_id FROM raw.fakturownia_invoices").fetchall()
        assert sorted(r[0] for r in rows) == sorted(expected), f"attempt {attempt}"
    [mat] = result.asset_materializations_for_node("fakturownia__invoice_history")
    assert mat.metadata["records_landed"].value == len(expected)
    assert mat.metadata["rows_replaced"].value == len(expected)  # the second run replaced its window


def test_bad_records_go_to_quarantine_with_reasons(config_path, sandbox, instance):
    template = next(iter(sandbox.fakturownia.invoices.values()))
    sandbox.fakturownia.inject_invoice({k: v for k, v in template.items() if k != "id"} | {"number": "NO-ID"})
    sandbox.fakturownia.inject_invoice(template | {"id": 990001, "price_gross": "12,30zł"})
    sandbox.fakturownia.inject_invoice(template | {"id": 990002, "issue_date": "2026-02-30"})
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    with warehouse(config_path) as conn:
        q = dict(conn.execute(
            "SELECT coalesce(source_id, 'none'), reason FROM staging.quarantine WHERE entity = 'invoices'").fetchall())
        (staged,) = conn.execute("SELECT count(*) FROM staging.invoices").fetchone()
    assert q["none"] == "no id"
    assert q["990001"] == "unparseable price_gross '12,30zł'"
    assert q["990002"] == "impossible issue_date '2026-02-30'"
    inv = summary["systems"]["fakturownia"]["invoices"]
    assert inv["records_in"] == inv["staged"] + inv["quarantined"] == staged + 3
    assert inv["records_in"] == inv["extracted"]


@pytest.mark.parametrize("kind", ["html_200", "truncated"])
def test_garbage_responses_are_retried_then_fail_naming_system_and_endpoint(config_path, sandbox, instance, kind):
    sandbox.fakturownia.fail_next(r"^/invoices\.json$", kind, times=1)
    _, ok = run_sync(config_path, instance)
    assert ok["ok"]  # one bad answer is retried away

    sandbox.fakturownia.fail_next(r"^/invoices\.json$", kind, times=50)
    runs, failed = run_sync(config_path, instance)
    assert not failed["ok"]
    error = runs[0].error
    assert "fakturownia" in error and "GET /invoices.json" in error, error
    assert len(sandbox.fakturownia.requests("GET", "/invoices.json")) >= 3  # retried up to max_attempts


def test_wrong_token_fails_with_auth_error_and_leaks_it_nowhere(tmp_path, sandbox, instance):
    secret = "wr0ng-t0ken-8f3a/demo"
    config_path = write_config(tmp_path, sandbox.url, fakturownia_token=secret)
    runs, summary = run_sync(config_path, instance)
    assert not summary["ok"]
    error = runs[0].error
    assert "fakturownia" in error and "401" in error and "GET /clients.json" in error, error
    assert secret not in error and "wr0ng" not in json.dumps(summary)
    for record in instance.all_logs(runs[0].run_id):
        assert "wr0ng" not in (record.message or "")
        if record.dagster_event is not None:
            assert "wr0ng" not in repr(record.dagster_event)
    with warehouse(config_path) as conn:
        tables = conn.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
        for (t,) in tables:
            assert "wr0ng" not in repr(conn.execute(f"SELECT * FROM {t}").fetchall()), t


def test_dry_run_plans_without_writing(config_path, sandbox, instance):
    _, summary = run_sync(config_path, instance, dry_run=True)
    c = summary["connections"][CONN]
    assert c["dry_run"] and c["clients"]["created"] == len(sandbox.fakturownia.clients) and c["deals"]["created"] > 0
    assert not sandbox.sugester.clients and not sandbox.sugester.deals
    with warehouse(config_path) as conn:
        logged = dict(conn.execute("SELECT entity, count(*) FROM sync.log WHERE dry_run AND action = 'plan_create' GROUP BY 1").fetchall())
        (ledger,) = conn.execute("SELECT count(*) FROM sync.ledger").fetchone()
        (links,) = conn.execute("SELECT count(*) FROM sync.links").fetchone()
    assert logged == {"clients": c["clients"]["created"], "deals": c["deals"]["created"]} and ledger == links == 0


def test_rejected_record_is_logged_with_target_message_and_retried(config_path, sandbox, instance):
    victim = min(sandbox.fakturownia.clients)
    sandbox.fakturownia.clients[victim]["name"] = ""
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error  # one rejected record does not fail the run
    c = summary["connections"][CONN]
    assert c["clients"]["failed"] == 1 and c["deals"]["blocked"] > 0
    key = f"fakturownia:{victim}"

    def rejections():
        with warehouse(config_path) as conn:
            linked = conn.execute("SELECT count(*) FROM sync.links WHERE our_key = ?", [key]).fetchone()[0]
            return linked, conn.execute("SELECT system, message FROM sync.log WHERE entity = 'clients' AND our_key = ? "
                                        "AND action = 'fail' ORDER BY logged_at", [key]).fetchall()

    linked, [(system, error)] = rejections()
    assert linked == 0 and system == "sugester" and "422" in error and "name" in error  # not linked: created later

    runs, summary = run_sync(config_path, instance)  # retried next run
    assert summary["connections"][CONN]["clients"]["failed"] == 1
    assert len(rejections()[1]) == 2


def test_crash_between_intent_and_answer_adopts_instead_of_duplicating(config_path, sandbox, instance):
    run_sync(config_path, instance)
    # Simulate a crash: the link says "create intended" for a client that the target did create.
    key = f"fakturownia:{min(sandbox.fakturownia.clients)}"
    with warehouse(config_path) as conn:
        conn.execute("UPDATE sync.links SET state = 'intended', intent = 'create_b', b_id = NULL, b_hash = NULL "
                     "WHERE entity = 'clients' AND our_key = ?", [key])
    n_clients = len(sandbox.sugester.clients)
    _, summary = run_sync(config_path, instance)
    assert summary["connections"][CONN]["clients"]["adopted"] == 1
    assert summary["connections"][CONN]["clients"]["created"] == 0
    assert len(sandbox.sugester.clients) == n_clients


def test_clients_carry_mapped_metric_fields_and_a_second_sync_writes_nothing(tmp_path, sandbox, instance):
    fields = {"decimal1": "overdue_amount", "integer1": "overdue_invoice_count", "date1": "overdue_since",
              "integer2": "health_score", "string1": "health_band"}
    config_path = write_config(tmp_path, sandbox.url, metric_fields=fields)
    _, first = run_sync(config_path, instance)
    assert first["ok"]
    with warehouse(config_path) as conn:
        expected = {r[0]: r[1:] for r in conn.execute(
            """SELECT r.account_id, r.overdue_amount, r.overdue_invoice_count, r.overdue_since, h.score, h.band
               FROM marts.account_metrics_reporting r JOIN marts.financial_health h USING (account_id)""").fetchall()}
    by_key = {c["external_id"]: c for c in sandbox.sugester.clients.values()}
    assert set(expected) <= set(by_key) and any(v[1] > 0 for v in expected.values())
    for key, (amount, count, since, score, band) in expected.items():
        c = by_key[key]
        assert Decimal(str(c["decimal1"])) == amount and int(c["integer1"]) == count
        assert c["date1"] == (since.isoformat() if since else None)
        assert int(c["integer2"]) == score and c["string1"] == band

    sandbox.sugester.clear_requests()
    _, second = run_sync(config_path, instance)
    assert second["connections"][CONN]["client_metrics"]["updated"] == 0
    assert second["connections"][CONN]["clients"]["updated"] == 0
    assert [r for r in sandbox.sugester.requests() if r.method in ("POST", "PUT")] == []

    # a payment changes the metrics of exactly one account: exactly that client is written again
    victim = next(i for i, inv in sorted(served_invoices(sandbox).items())
                  if inv["status"] in ("issued", "sent") and not inv["cancelled"] and inv["payment_to"] < TODAY.isoformat())
    sandbox.fakturownia.pay_invoice(victim)
    _, third = run_sync(config_path, instance)
    assert third["connections"][CONN]["client_metrics"]["updated"] == 1

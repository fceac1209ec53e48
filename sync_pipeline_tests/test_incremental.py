"""Incremental runs cost in proportion to the change (issue 9): a re-read of identical records leaves raw as it
was, and staging is rebuilt only when a source changed; what it keeps equals what a rebuild would give."""

from __future__ import annotations

import httpx
import pytest

from sync_pipeline.config import load_settings
from sync_pipeline.transform.staging import SourceSystemRef, rebuild_staging
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import F_TOKEN, run_sync

pytestmark = pytest.mark.e2e
CONN = "fakturownia_to_sugester"
TABLES = ("staging.accounts", "staging.invoices",
          "(SELECT source_instance, entity, record_key, source_id, reason, disposition FROM staging.quarantine)")


def _snapshot(conn) -> dict[str, set]:
    return {t: set(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def _meta(runs, key):
    return runs[0].materializations[key]


def test_nothing_changed_keeps_staging_and_a_change_rebuilds_it(config_path, sandbox, instance):
    runs, first = run_sync(config_path, instance)
    assert first["ok"] and _meta(runs, "staging/accounts")["rebuilt"] is True

    runs, second = run_sync(config_path, instance)  # the re-read lag brings the newest records again
    assert second["ok"], runs[0].error
    invoices = _meta(runs, "fakturownia/invoice_changes")
    assert invoices["records_received"] > 0 and invoices["records_changed"] == 0
    assert _meta(runs, "staging/accounts")["rebuilt"] is False
    assert second["systems"]["fakturownia"]["invoices"] | {"extracted": 0, "pages": 0} == \
        first["systems"]["fakturownia"]["invoices"] | {"extracted": 0, "pages": 0}  # same counts, read back

    settings = load_settings(config_path)
    with connect(settings.warehouse_path) as conn:
        kept = _snapshot(conn)
        rebuild_staging(conn, [SourceSystemRef("fakturownia", "fakturownia", "source_id",
                                               base_url=settings.systems["fakturownia"].resolved_base_url())],
                        run_id="check")
        assert _snapshot(conn) == kept  # what was kept is exactly what a rebuild gives

    # one payment: raw changes, staging is rebuilt, the deal follows
    invoice = next(i for i in sandbox.fakturownia.invoices.values() if i["status"] == "issued" and i["kind"] == "vat")
    httpx.post(f"{sandbox.url}/fakturownia/invoices/{invoice['id']}/change_status.json",
               params={"api_token": F_TOKEN, "status": "paid"}).raise_for_status()
    runs, third = run_sync(config_path, instance)
    assert third["ok"], runs[0].error
    assert _meta(runs, "fakturownia/invoice_changes")["records_changed"] >= 1
    assert _meta(runs, "staging/accounts")["rebuilt"] is True
    assert third["connections"][CONN]["deals"]["updated"] == 1


def test_a_changed_configuration_rebuilds_staging(config_path, sandbox, instance, tmp_path):
    run_sync(config_path, instance)
    text = config_path.read_text().replace("identifier: source_id", "identifier: external_id")
    config_path.write_text(text)
    runs, summary = run_sync(config_path, instance)
    assert _meta(runs, "staging/accounts")["rebuilt"] is True


MARTS = ("marts.account_metrics", "marts.account_metrics_reporting", "marts.financial_health", "marts.risk_alerts")
METRICS = ("metrics/account_metrics", "metrics/financial_health", "metrics/risk_alerts")
PLANS = (f"{CONN}/deals",)  # clients sync both ways: both sides are compared on every run (load/twoway.py)


def _marts(conn) -> dict[str, list]:
    return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in MARTS}


def _log(conn, run_id: str) -> list[tuple]:
    return conn.execute("SELECT entity, our_key, action, target_id FROM sync.log WHERE run_id = ? ORDER BY rowid",
                        [run_id]).fetchall()


def test_nothing_changed_keeps_metrics_and_the_plan_and_they_equal_a_recompute(config_path, sandbox, instance):
    runs, first = run_sync(config_path, instance)
    assert first["ok"], runs[0].error
    assert all(_meta(runs, k)["rebuilt"] is True for k in METRICS)
    assert not any(_meta(runs, k)["plan_reused"] for k in PLANS)

    runs, second = run_sync(config_path, instance)
    assert second["ok"], runs[0].error
    assert all(_meta(runs, k)["rebuilt"] is False for k in METRICS)
    # after a real run that sent everything, its plan is "all unchanged" until an input changes
    for k in PLANS:
        m = _meta(runs, k)
        assert m["plan_reused"] is True and m["created"] == m["updated"] == 0 and m["unchanged"] > 0
    assert second["connections"][CONN]["deals"]["unchanged"] == first["connections"][CONN]["deals"]["created"]
    # the figures reported are those of the kept tables; alerts count what this run opened: none
    assert {**second["metrics"], "alerts": None} == {**first["metrics"], "alerts": None}
    assert second["metrics"]["alerts"] == {**first["metrics"]["alerts"], "opened": 0}

    settings = load_settings(config_path)
    with connect(settings.warehouse_path) as conn:
        kept = _marts(conn)
    # the same run with the plan and the metrics recomputed from scratch finds the same tables and nothing to send
    with connect(settings.warehouse_path) as conn:
        conn.execute("DELETE FROM sync.builds WHERE name <> 'staging'")
    runs, third = run_sync(config_path, instance)
    assert third["ok"], runs[0].error
    assert all(_meta(runs, k)["rebuilt"] is True for k in METRICS)
    assert not any(_meta(runs, k)["plan_reused"] for k in PLANS)
    assert third["connections"][CONN]["deals"] == second["connections"][CONN]["deals"]
    assert third["connections"][CONN]["clients"] == second["connections"][CONN]["clients"]
    with connect(settings.warehouse_path) as conn:
        assert _marts(conn) == kept

    # a payment changes staging: the metrics are recomputed, the deal is planned and updated
    invoice = next(i for i in sandbox.fakturownia.invoices.values() if i["status"] == "issued" and i["kind"] == "vat")
    httpx.post(f"{sandbox.url}/fakturownia/invoices/{invoice['id']}/change_status.json",
               params={"api_token": F_TOKEN, "status": "paid"}).raise_for_status()
    runs, fourth = run_sync(config_path, instance)
    assert fourth["ok"], runs[0].error
    assert all(_meta(runs, k)["rebuilt"] is True for k in METRICS)
    assert _meta(runs, f"{CONN}/deals")["plan_reused"] is False
    assert fourth["connections"][CONN]["deals"]["updated"] == 1


def test_another_day_recomputes_the_metrics(config_path, sandbox, instance):
    from datetime import timedelta

    from sync_pipeline_tests.conftest import TODAY

    run_sync(config_path, instance)
    runs, summary = run_sync(config_path, instance, as_of=TODAY + timedelta(days=1))
    assert summary["ok"], runs[0].error
    assert all(_meta(runs, k)["rebuilt"] is True for k in METRICS)
    assert summary["metrics"]["as_of"] == (TODAY + timedelta(days=1)).isoformat()


def test_a_dry_run_after_a_dry_run_takes_its_plan_and_logs_the_same_rows(config_path, sandbox, instance):
    runs, first = run_sync(config_path, instance, dry_run=True)
    assert first["ok"], runs[0].error
    runs2, second = run_sync(config_path, instance, dry_run=True)
    assert second["ok"], runs2[0].error
    assert all(_meta(runs2, k)["plan_reused"] is True for k in PLANS)
    assert second["connections"][CONN]["deals"] == first["connections"][CONN]["deals"]
    assert second["connections"][CONN]["deals"]["created"] > 0
    settings = load_settings(config_path)
    with connect(settings.warehouse_path) as conn:
        logged = _log(conn, runs[0].run_id)
        assert logged and _log(conn, runs2[0].run_id) == logged  # the same plan rows, under the second run

    # a dry run's plan is never sent: the real run computes its own and creates everything once
    runs3, third = run_sync(config_path, instance)
    assert third["ok"], runs3[0].error
    assert not any(_meta(runs3, k)["plan_reused"] for k in PLANS)
    assert third["connections"][CONN]["deals"]["created"] == first["connections"][CONN]["deals"]["created"]
    assert len(sandbox.sugester.deals) == first["connections"][CONN]["deals"]["created"]


def test_a_plan_is_kept_only_after_every_record_was_sent_and_answered(tmp_path):
    from collections import Counter

    from sync_pipeline.defs.load import _PlanCache
    from sync_pipeline.load.apply import ApplyResult
    from sync_pipeline.load.plan import Plan
    from sync_pipeline.warehouse.builds import last_build, record_build

    def cache(conn):
        return _PlanCache(conn, connection="c", entity="deals", desired_sql="SELECT 1", params={"x": 1},
                          upstream=["staging"], ledger_entities=["deals", "clients"])

    plan = Plan("c", "deals", Counter({"create": 2, "unchanged": 3, "blocked": 1}),
                {"create": ["a", "b"], "blocked": ["z"]})
    with connect(tmp_path / "w.duckdb") as conn:
        assert cache(conn).fingerprint is None  # staging never built: nothing is ever reused
        record_build(conn, "staging", "s1", "r0")
        cache(conn).record(plan, ApplyResult(Counter({"created": 1, "failed": 1})), dry_run=False, run_id="r1")
        assert last_build(conn, "plan/c/deals") is None
        cache(conn).record(plan, ApplyResult(Counter({"created": 1, "unknown": 1})), dry_run=False, run_id="r2")
        assert last_build(conn, "plan/c/deals") is None
        cache(conn).record(plan, ApplyResult(Counter({"created": 2})), dry_run=False, run_id="r3")
        kept = cache(conn).reusable(dry_run=False)
        assert kept is not None and dict(kept.counts) == {"unchanged": 5, "blocked": 1}
        assert kept.first_keys == {"blocked": ["z"]}
        # a ledger write (here: of the clients the deals point at) or another staging build: recomputed
        conn.execute("INSERT INTO sync.ledger (connection, entity, our_key, state, attempts, updated_at) "
                     "VALUES ('c', 'clients', 'k', 'synced', 0, now())")
        assert cache(conn).reusable(dry_run=False) is None
        cache(conn).record(plan, ApplyResult(Counter({"created": 2})), dry_run=False, run_id="r4")
        assert cache(conn).reusable(dry_run=False) is not None
        record_build(conn, "staging", "s2", "r5")
        assert cache(conn).reusable(dry_run=False) is None


def _add(fak, kind: str, template: dict, **fields) -> dict:
    """A new record in the Fakturownia simulator, shaped like `template`."""
    import copy

    with fak.lock:
        record = copy.deepcopy(template)
        record.update(id=fak._new_id(kind), **fields)
        if kind == "invoice":
            record.update(number=f"INC/{record['id']}", token=f"inc{record['id']}")
        (fak.invoices if kind == "invoice" else fak.clients)[record["id"]] = record
        fak._touch(record)
    return record


def _edit(fak, record: dict, **fields) -> None:
    with fak.lock:
        record.update(fields)
        fak._touch(record)


def test_incremental_staging_equals_a_full_build_after_every_kind_of_change(config_path, sandbox, instance):
    fak = sandbox.fakturownia
    settings = load_settings(config_path)
    ref = [SourceSystemRef("fakturownia", "fakturownia", "source_id",
                           base_url=settings.systems["fakturownia"].resolved_base_url())]
    runs, first = run_sync(config_path, instance)
    assert first["ok"] and _meta(runs, "staging/accounts")["build"] == "full"

    client = next(c for c in fak.clients.values() if any(i["client_id"] == c["id"] and i["status"] == "issued"
                                                         for i in fak.invoices.values()))
    invoice = next(i for i in fak.invoices.values() if i["client_id"] != client["id"] and i["status"] == "issued")
    template = next(iter(fak.invoices.values()))
    missing_client_id = fak._next["client"] + 1000
    changes = [
        ("a payment", lambda: fak.pay_invoice(invoice["id"])),
        ("a client renamed", lambda: _edit(fak, client, name=client["name"] + " Sp. z o.o.")),
        ("a new client with an invoice, and an invoice of a client not read yet", lambda: (
            _add(fak, "invoice", template, client_id=_add(fak, "client", client, name="Nowy Klient")["id"]),
            _add(fak, "invoice", template, client_id=missing_client_id))),
        ("the missing client arrives: its invoice leaves quarantine", lambda: (
            _add(fak, "client", client, name="Spóźniony Klient"),
            _edit(fak, fak.clients[max(fak.clients)], id=missing_client_id),
            fak.clients.__setitem__(missing_client_id, fak.clients.pop(max(fak.clients))))),
        ("a client turns bad: its invoices go to quarantine", lambda: _edit(fak, client, name="Bad\x07name")),
        ("the client is mended: its invoices come back", lambda: _edit(fak, client, name="Mended")),
    ]
    for what, change in changes:
        change()
        fak.changed()
        runs, summary = run_sync(config_path, instance)
        assert summary["ok"], (what, runs[0].error)
        assert _meta(runs, "staging/accounts")["build"] == "incremental", what
        with connect(settings.warehouse_path) as conn:
            incremental = _snapshot(conn)
            rebuild_staging(conn, ref, run_id="check")
            assert _snapshot(conn) == incremental, what

    with connect(settings.warehouse_path) as conn:
        staged = {r[0] for r in conn.execute("SELECT source_id FROM staging.invoices").fetchall()}
        accounts = {r[0]: r[1] for r in conn.execute("SELECT source_id, name FROM staging.accounts").fetchall()}
        quarantined = {r[0] for r in conn.execute("SELECT record_key FROM staging.quarantine").fetchall()}
    # the changes really happened (the comparison above is not of two empty tables)
    assert accounts[str(client["id"])] == "Mended" and accounts[str(missing_client_id)] == "Spóźniony Klient"
    assert {str(i["id"]) for i in fak.invoices.values() if i["client_id"] == missing_client_id} <= staged
    assert str(client["id"]) not in quarantined

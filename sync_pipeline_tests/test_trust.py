"""Issue 7's defects, each reproduced end to end over real HTTP against the sandbox (defect 1 is in
test_dead_runs.py, 6 in the client tests, 7a/7f in test_config.py, 7e in test_sandbox_faults.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from sync_pipeline.config import DEFAULT_DEAL_KINDS, load_settings
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import run_sync
from sync_pipeline_tests.test_e2e_sync import CONN, served_invoices

pytestmark = pytest.mark.e2e


def deal_keys(sandbox) -> Counter:
    return Counter(d["external_ids"]["sync_pipeline"] for d in sandbox.sugester.deals.values())


def selected_keys(sandbox) -> set[str]:
    return {f"fakturownia:{i}" for i, inv in served_invoices(sandbox).items() if inv["kind"] in DEFAULT_DEAL_KINDS}


def staged_keys(config_path) -> set[str]:
    with connect(load_settings(config_path).warehouse_path) as conn:
        return {k for (k,) in conn.execute("SELECT invoice_key FROM staging.invoices").fetchall()}


@pytest.mark.parametrize("lost", ["ghost_500", "ghost_reset"])
def test_a_create_stored_by_the_target_whose_answer_is_lost_is_looked_up_not_repeated(config_path, sandbox,
                                                                                     instance, lost):
    # Defect 2: Sugester stores the deal, then answers 500 (or the connection drops). The ledger said
    # `failed` with no target id, and the next run created the deal again: 322 deals for 222 invoices.
    sandbox.sugester.fail_next(r"/app/deals\.json", lost, times=3, method="POST")
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    deals = summary["connections"][CONN]["deals"]
    assert deals["adopted"] == 3 and deals["created"] == len(selected_keys(sandbox)) - 3
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    keys = deal_keys(sandbox)
    assert set(keys) == selected_keys(sandbox)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert summary["connections"][CONN]["deals"]["created"] == 0


def test_a_create_answered_500_without_storing_is_created_again_once(config_path, sandbox, instance):
    sandbox.sugester.fail_next(r"/app/deals\.json", "500", times=2, method="POST")
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    keys = deal_keys(sandbox)
    assert set(keys) == selected_keys(sandbox) and max(keys.values()) == 1


def test_an_empty_page_in_the_middle_of_a_listing_loses_nothing(config_path, sandbox, instance):
    # Defect 3: `[]` for page 2 of invoices once. Both runs said OK with 100 of 240 staged, and the cursor
    # had moved past the rest.
    sandbox.fakturownia.fail_next(r"/invoices\.json", "empty_page", times=1, page=2)
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    served = {f"fakturownia:{i}" for i in served_invoices(sandbox)}
    assert staged_keys(config_path) == served
    assert summary["systems"]["fakturownia"]["invoices"]["extracted"] == len(served)


def test_a_listing_that_stays_inconsistent_fails_clearly_and_keeps_the_cursor(config_path, sandbox, instance):
    sandbox.fakturownia.fail_next(r"/invoices\.json", "empty_page", times=5, page=2)
    runs, summary = run_sync(config_path, instance)
    assert not summary["ok"]
    assert "fakturownia: GET /invoices.json listing is inconsistent: page 2 holds 0 of 100" in runs[0].error
    with connect(load_settings(config_path).warehouse_path) as conn:
        assert conn.execute("SELECT count(*) FROM sync.cursors WHERE entity = 'invoices'").fetchone() == (0,)
    runs, summary = run_sync(config_path, instance)  # the API is consistent again: everything arrives
    assert summary["ok"], runs[0].error
    assert staged_keys(config_path) == {f"fakturownia:{i}" for i in served_invoices(sandbox)}


def test_a_far_future_updated_at_does_not_poison_the_cursor(config_path, sandbox, instance):
    # Defect 4: one invoice stamped 2099 moved the cursor there; real changes were never read again.
    sim = sandbox.fakturownia
    future_id = next(iter(sim.invoices))
    sim.invoices[future_id]["updated_at"] = "2099-01-01T00:00:00.000+01:00"
    sim.changed()
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    with connect(load_settings(config_path).warehouse_path) as conn:
        (cursor,) = conn.execute("SELECT cursor_ts FROM sync.cursors WHERE entity = 'invoices'").fetchone()
        reason = conn.execute("SELECT reason FROM staging.quarantine WHERE source_id = ?", [str(future_id)]).fetchone()
    assert cursor <= datetime.now(timezone.utc) + timedelta(minutes=10)
    assert reason is not None and "in the future" in reason[0]

    unpaid = next(i for i, inv in sim.invoices.items()
                  if inv["status"] in ("issued", "sent") and inv["kind"] == "vat" and i != future_id)
    sim.pay_invoice(unpaid)
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    deal = next(d for d in sandbox.sugester.deals.values() if d["external_ids"]["sync_pipeline"] == f"fakturownia:{unpaid}")
    assert deal["paid"] is True


def test_conflicting_duplicates_go_to_quarantine_as_a_pair_and_records_in_counts_what_was_fetched(
        config_path, sandbox, instance):
    # Defect 5: two records with the same id and different content gave one staged, nothing quarantined,
    # and "241 in" for 242 fetched.
    sim = sandbox.fakturownia
    twin_id = next(iter(sim.invoices))
    twin = dict(sim.invoices[twin_id], price_gross="999999.99")  # same id, same updated_at, other content
    sim.inject_invoice(twin)
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    f = summary["systems"]["fakturownia"]["invoices"]
    served = len(sim.invoices) + 1
    assert f["extracted"] == served
    assert f["records_in"] == served == f["staged"] + f["quarantined"]
    with connect(load_settings(config_path).warehouse_path) as conn:
        rows = conn.execute("SELECT reason FROM staging.quarantine WHERE source_id = ?", [str(twin_id)]).fetchall()
    assert len(rows) == 2 and all("conflicting duplicate" in r for (r,) in rows)
    assert f"fakturownia:{twin_id}" not in staged_keys(config_path)


def test_a_run_that_fails_part_way_reports_what_it_wrote(config_path, sandbox, instance, capsys, monkeypatch,
                                                         tmp_path):
    # Defect 7b: "created 0" was reported after 100 deals were stored, because the failing step wrote no
    # materialization. It now fails with the counts in its failure metadata, and the summary and status
    # read them there.
    from sync_pipeline.sandbox._http_sim import HttpError

    route = next(r for r in sandbox.sugester._routes if r.method == "POST" and "deals" in r.pattern.pattern)
    create, created = route.handler, []

    def create_then_refuse(req):
        if len(created) >= 100:
            raise HttpError(401, "token revoked")
        created.append(1)
        return create(req)

    route.handler = create_then_refuse
    runs, summary = run_sync(config_path, instance)
    assert not summary["ok"] and "HTTP 401" in runs[0].error
    assert summary["connections"][CONN]["deals"]["created"] == 100 == len(sandbox.sugester.deals)

    from sync_pipeline.cli.status import connection_status

    [status] = connection_status(instance, load_settings(config_path, strict=False))
    assert status["last_run"]["status"] == "Failed" and status["last_run"]["counts"]["deals"]["created"] == 100


def test_a_failed_run_prints_one_line_errors_and_no_stack_traces(tmp_path, sandbox, monkeypatch, capsys):
    # Defect 7d: run-time failures printed 3-4 Dagster stack traces on the console without --verbose.
    from sync_pipeline.cli import main
    from sync_pipeline_tests.conftest import TODAY, write_config

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    config = write_config(tmp_path, sandbox.url, fakturownia_token="wrong-token/demo")
    assert main(["run", "--config", str(config), "--as-of", TODAY.isoformat()]) == 1
    out, err = capsys.readouterr()
    for text in (out, err):
        assert "Traceback" not in text and "Stack Trace" not in text and "dagster - ERROR" not in text
    assert "error: connection fakturownia_to_sugester: fakturownia__clients: fakturownia: GET /clients.json failed " \
           "with HTTP 401" in out


def test_records_that_should_be_questioned_are_quarantined_with_their_reason(config_path, sandbox, instance):
    # Defect 7g: control characters in names, non-scalar ids, a negative total on a VAT invoice and a 1 MB
    # number were accepted as they were.
    sim = sandbox.fakturownia
    client_id = next(iter(sim.clients))
    sim.clients[client_id]["name"] = "Stolarnia\x00\x1b[31m Kowalczyk"
    sim.changed()
    template = next(inv for inv in sim.invoices.values() if inv["client_id"] != client_id)
    sim.inject_invoice(template | {"id": {"nested": 1}, "number": "BAD/OBJECT-ID"})
    sim.inject_invoice(template | {"id": 990_000_101, "kind": "vat", "price_gross": "-1230.00", "number": "BAD/NEG"})
    sim.inject_invoice(template | {"id": 990_000_102, "price_gross": "9" * 1_000_000, "number": "BAD/HUGE"})
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    with connect(load_settings(config_path).warehouse_path) as conn:
        reasons = dict(conn.execute(
            "SELECT coalesce(source_id, record_key), reason FROM staging.quarantine WHERE disposition = 'rejected'"
        ).fetchall())
    assert "control or invalid characters in name 'Stolarnia??[31m Kowalczyk'" in reasons[str(client_id)]
    assert any("id is a JSON object, not a number or a string" in r for r in reasons.values())
    assert "negative total -1230.00 on a vat document" in reasons["990000101"]
    assert "unparseable price_gross '9999999999999999999999999999999999999999…' (1000000 characters)" \
        in reasons["990000102"]
    assert max(len(r) for r in reasons.values()) < 400
    f = summary["systems"]["fakturownia"]["invoices"]
    assert f["extracted"] == f["records_in"] == f["staged"] + f["quarantined"]


def test_new_clients_beyond_the_first_page_arrive_on_an_incremental_run(tmp_path, sandbox, instance):
    # Found by the crash harness: once there were more clients than one page, new ones stopped arriving
    # (the list came back in id order and the newest-first read stopped after page 1).
    import httpx

    from sync_pipeline_tests.conftest import shipped_config

    config = shipped_config(tmp_path, sandbox.url, systems={"fakturownia": {"per_page": 5}})
    runs, summary = run_sync(config, instance, connections=["fakturownia_to_sugester"])
    assert summary["ok"], runs[0].error
    sim = sandbox.fakturownia
    for n in range(3):
        httpx.post(f"{sandbox.url}/fakturownia/clients.json",
                   json={"api_token": sim.api_token, "client": {"name": f"Nowy Klient {n}"}}).raise_for_status()
    runs, summary = run_sync(config, instance, connections=["fakturownia_to_sugester"])
    assert summary["ok"], runs[0].error
    held = {c["external_id"] for c in sandbox.sugester.clients.values()}
    assert held == {f"fakturownia:{i}" for i in sim.clients}

"""Deals after they are created (issue 10): a paid invoice updates its deal (`update_deals`), a deal deleted in
Sugester is never re-created, an invoice deleted in Fakturownia leaves its deal as it is; both are reported in
`sync.deletions`. End to end over real HTTP against the sandbox."""

from __future__ import annotations

import duckdb
import yaml

from sync_pipeline_tests.conftest import run_sync, write_config

CONN = "fakturownia_to_sugester"


def config_with(tmp_path, url, **connection):
    path = write_config(tmp_path, url)
    doc = yaml.safe_load(path.read_text())
    doc["systems"]["fakturownia"]["key_scan_every"] = "0s"
    doc["connections"][CONN].update(connection)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sync(config, instance):
    runs, summary = run_sync(config, instance)
    assert runs[0].success, runs[0].error
    return summary["connections"][CONN]["deals"], runs[0]


def deal_of(sandbox, invoice_id: int) -> dict:
    [deal] = [d for d in sandbox.sugester.deals.values()
              if d["external_ids"].get("sync_pipeline") == f"fakturownia:{invoice_id}"]
    return deal


def unpaid_dealt_invoice(sandbox) -> int:
    return next(i for i, inv in sorted(sandbox.fakturownia.invoices.items())
                if inv["status"] != "paid" and inv["kind"] == "vat" and inv.get("income", True))


def deletions(config):
    path = yaml.safe_load(config.read_text())["warehouse"]["path"]
    with duckdb.connect(path, read_only=True) as conn:
        return conn.execute("SELECT entity, system, record_id, other_id FROM sync.deletions ORDER BY system").fetchall()


def test_a_paid_invoice_updates_its_deal(tmp_path, sandbox, instance):
    config = config_with(tmp_path, sandbox.url)
    sync(config, instance)
    invoice = unpaid_dealt_invoice(sandbox)
    assert deal_of(sandbox, invoice)["paid"] is False
    sandbox.fakturownia.pay_invoice(invoice)
    deals, _ = sync(config, instance)
    assert deals["updated"] == 1 and deals["created"] == 0
    deal = deal_of(sandbox, invoice)
    assert deal["paid"] is True and ": paid," in deal["description"]


def test_with_update_deals_off_a_deal_stays_as_created(tmp_path, sandbox, instance):
    config = config_with(tmp_path, sandbox.url, update_deals=False)
    sync(config, instance)
    invoice = unpaid_dealt_invoice(sandbox)
    sandbox.fakturownia.pay_invoice(invoice)
    sandbox.sugester.clear_requests()
    deals, _ = sync(config, instance)
    assert deals["updated"] == deals["created"] == 0
    assert deal_of(sandbox, invoice)["paid"] is False
    assert not [r for r in sandbox.sugester.requests() if r.path.startswith("/app/deals")
                and r.method in ("POST", "PUT")]


def test_a_deal_deleted_in_sugester_is_not_recreated_and_is_reported(tmp_path, sandbox, instance):
    config = config_with(tmp_path, sandbox.url)
    sync(config, instance)
    invoice = unpaid_dealt_invoice(sandbox)
    deal_id = deal_of(sandbox, invoice)["id"]
    n_deals = len(sandbox.sugester.deals)
    sandbox.sugester.user_delete("deal", deal_id)
    sandbox.fakturownia.pay_invoice(invoice)  # the change that makes the run try to update it
    deals, _ = sync(config, instance)
    assert deals["deleted_in_target"] == 1 and deals["created"] == 0 and deals["failed"] == 0
    assert len(sandbox.sugester.deals) == n_deals - 1
    assert deletions(config) == [("deals", "sugester", str(deal_id), f"fakturownia:{invoice}")]
    sandbox.fakturownia.pay_invoice(invoice, amount=0)  # and whatever happens to the invoice later
    sandbox.sugester.clear_requests()
    deals, _ = sync(config, instance)
    assert not [r for r in sandbox.sugester.requests() if r.path.startswith("/app/deals") and r.method != "GET"]
    assert deals["deleted_in_target"] == 1 and len(sandbox.sugester.deals) == n_deals - 1


def test_an_invoice_deleted_in_fakturownia_leaves_its_deal_and_is_reported(tmp_path, sandbox, instance):
    config = config_with(tmp_path, sandbox.url)
    sync(config, instance)
    invoice = unpaid_dealt_invoice(sandbox)
    deal_id = deal_of(sandbox, invoice)["id"]
    n_deals = len(sandbox.sugester.deals)
    sandbox.fakturownia.user_delete("invoice", invoice)
    sandbox.sugester.clear_requests()
    _, run = sync(config, instance)
    assert len(sandbox.sugester.deals) == n_deals and deal_id in sandbox.sugester.deals
    assert not [r for r in sandbox.sugester.requests() if r.method in ("POST", "PUT", "DELETE")]
    assert deletions(config) == [("deals", "fakturownia", str(invoice), str(deal_id))]
    meta = run.materializations[f"{CONN}/deals"]
    assert (meta["deleted_in_source_new"], meta["deleted_in_source"]) == (1, 1)
    _, run = sync(config, instance)
    assert run.materializations[f"{CONN}/deals"]["deleted_in_source_new"] == 0

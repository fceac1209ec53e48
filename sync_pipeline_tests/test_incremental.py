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

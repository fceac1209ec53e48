"""The definitions load from sync.yaml and list the expected assets, checks, jobs and schedules."""

from pathlib import Path

import dagster as dg

from sync_pipeline.defs.build import build_definitions
from sync_pipeline_tests.conftest import write_config

REPO = Path(__file__).resolve().parents[1]


def _keys(defs):
    return sorted(a.key.to_user_string() for a in defs.resolve_all_asset_specs())


def test_repository_definitions_load_through_the_defs_folder(monkeypatch):
    monkeypatch.delenv("SYNC_SANDBOX_URL", raising=False)  # the UI must load without the secrets/URLs
    monkeypatch.setenv("SYNC_PIPELINE_CONFIG", str(REPO / "sync.yaml"))
    from sync_pipeline.definitions import defs

    d = defs()
    assert _keys(d) == [
        "fakturownia/clients", "fakturownia/invoice_changes", "fakturownia/invoice_history",
        "fakturownia_to_sugester/client_metrics", "fakturownia_to_sugester/clients", "fakturownia_to_sugester/deals",
        "fakturownia_to_sugester/user_pairing",
        "metrics/account_metrics", "metrics/financial_health", "metrics/risk_alerts",
        "staging/accounts", "staging/invoices", "staging/quarantine", "staging/unmatched_accounts",
        "sugester/clients", "zoho/clients", "zoho/creditnote_changes", "zoho/invoice_changes", "zoho/invoice_history",
        "zoho_to_customersuccessbox/accounts", "zoho_to_customersuccessbox/invoices",
    ]
    jobs = sorted(j.name for j in d.resolve_all_job_defs() if not j.name.startswith("__"))
    assert jobs == ["fakturownia_history_job", "fakturownia_to_sugester_backfill_job", "fakturownia_to_sugester_job",
                    "zoho_history_job", "zoho_to_customersuccessbox_backfill_job", "zoho_to_customersuccessbox_job"]
    schedules = {s.name: (s.cron_schedule, s.execution_timezone, s.job_name) for s in d.schedules}
    assert schedules == {
        "fakturownia_to_sugester_schedule": ("0 */3 * * *", "UTC", "fakturownia_to_sugester_job"),
        "zoho_to_customersuccessbox_schedule": ("0 0 * * *", "UTC", "zoho_to_customersuccessbox_job"),
    }
    sensors = {s.name: s.default_status for s in d.sensors}
    assert sensors == {"close_dead_runs_sensor": dg.DefaultSensorStatus.RUNNING}
    # A run launched from the UI executes its steps in its own process, as a CLI run does (issue 9: a process
    # per step made a UI run 2-4 minutes where the CLI took 14 s).
    executors = {j.name: j.executor_def.name for j in d.resolve_all_job_defs()}
    assert set(executors.values()) == {"in_process"}, executors
    checks = sorted(c.name for c in d.resolve_asset_graph().asset_check_keys)
    assert checks == ["account_unique_per_source", "fx_rates_complete", "invoice_has_account", "invoice_key_unique",
                      "no_identifier_drift", "no_negative_amount_due", "overdue_amount_matches_invoices",
                      "overdue_invoice_has_account"]


def test_nightly_and_manual_schedules(tmp_path):
    nightly = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", schedule="nightly"))
    [s] = nightly.schedules
    assert (s.cron_schedule, s.execution_timezone) == ("0 0 * * *", "UTC")
    manual = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", schedule="manual"))
    assert not list(manual.schedules)


def test_connection_job_selects_the_whole_flow_and_history_is_monthly(tmp_path):
    d = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", history_start="2025-03-17"))
    job = d.resolve_job_def("fakturownia_to_sugester_job")
    selected = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    assert selected == [
        "fakturownia/clients", "fakturownia/invoice_changes",
        "fakturownia_to_sugester/client_metrics", "fakturownia_to_sugester/clients", "fakturownia_to_sugester/deals",
        "fakturownia_to_sugester/user_pairing",
        "metrics/account_metrics", "metrics/financial_health", "metrics/risk_alerts",
        "staging/accounts", "staging/invoices", "staging/quarantine", "staging/unmatched_accounts",
        "sugester/clients",
    ]
    history = d.resolve_assets_def(dg.AssetKey(["fakturownia", "invoice_history"]))
    keys = history.partitions_def.get_partition_keys()
    assert keys[0] == "2025-03-01" and isinstance(history.partitions_def, dg.MonthlyPartitionsDefinition)
    assert history.partitions_def.timezone == "UTC"
    assert history.op.pool == "duckdb"

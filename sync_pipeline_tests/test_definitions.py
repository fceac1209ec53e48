"""The definitions load from sync.yaml and list the expected assets, checks, jobs and schedules."""

from pathlib import Path

import dagster as dg

from sync_pipeline.config import load_settings
from sync_pipeline.defs.build import build_definitions
from sync_pipeline_tests.conftest import write_config

REPO = Path(__file__).resolve().parents[1]


def _keys(defs):
    """Every asset but the systems' APIs (`<system>/api`, one per configured system: see _api_keys)."""
    return sorted(k for k in _all_keys(defs) if not k.endswith("/api"))


def _all_keys(defs):
    return [a.key.to_user_string() for a in defs.resolve_all_asset_specs()]


def _api_keys(defs):
    return sorted(k for k in _all_keys(defs) if k.endswith("/api"))


def test_repository_definitions_load_through_the_defs_folder(monkeypatch):
    monkeypatch.delenv("SYNC_SANDBOX_URL", raising=False)  # the UI must load without the secrets/URLs
    monkeypatch.setenv("SYNC_PIPELINE_CONFIG", str(REPO / "sync.yaml"))
    from sync_pipeline.definitions import defs

    d = defs()
    assert _api_keys(d) == sorted(f"{n}/api" for n in load_settings(REPO / "sync.yaml", strict=False).systems)
    assert _keys(d) == [
        "billy/clients", "billy/invoice_changes", "billy/invoice_history", "billy/products",
        "billy_simply/contacts", "billy_simply/credit_notes", "billy_simply/invoices", "billy_simply/organisations",
        "billy_simply/products", "billy_to_invoice2go/clients", "billy_to_invoice2go/products",
        "fakturownia/clients", "fakturownia/invoice_changes", "fakturownia/invoice_history", "fakturownia/products",
        "fakturownia_to_sugester/client_metrics", "fakturownia_to_sugester/clients", "fakturownia_to_sugester/deals",
        "fakturownia_to_sugester/user_pairing",
        "metrics/account_metrics", "metrics/financial_health", "metrics/risk_alerts",
        "simply/accounts", "simply/contacts", "simply/invoices", "simply/products",
        "staging/accounts", "staging/invoices", "staging/quarantine", "staging/unmatched_accounts",
        "sugester/clients", "zoho/clients", "zoho/creditnote_changes", "zoho/invoice_changes", "zoho/invoice_history",
        "zoho_to_customersuccessbox/accounts", "zoho_to_customersuccessbox/invoices",
    ]
    jobs = sorted(j.name for j in d.resolve_all_job_defs() if not j.name.startswith("__"))
    assert jobs == ["billy_history_job", "billy_simply_backfill_job", "billy_simply_job", "billy_simply_record_job",
                    "billy_to_invoice2go_job",
                    "fakturownia_history_job", "fakturownia_to_sugester_backfill_job", "fakturownia_to_sugester_job",
                    "fakturownia_to_sugester_record_job", "system_status_job",
                    "zoho_history_job", "zoho_to_customersuccessbox_backfill_job", "zoho_to_customersuccessbox_job"]
    schedules = {s.name: (s.cron_schedule, s.execution_timezone, s.job_name) for s in d.schedules}
    assert schedules == {
        "billy_simply_schedule": ("0 */3 * * *", "UTC", "billy_simply_job"),
        "billy_to_invoice2go_schedule": ("0 */3 * * *", "UTC", "billy_to_invoice2go_job"),
        "fakturownia_to_sugester_schedule": ("0 */3 * * *", "UTC", "fakturownia_to_sugester_job"),
        "zoho_to_customersuccessbox_schedule": ("0 0 * * *", "UTC", "zoho_to_customersuccessbox_job"),
        "system_status_schedule": ("*/15 * * * *", "UTC", "system_status_job"),
    }
    assert {s.name: s.default_status for s in d.schedules}["system_status_schedule"] == dg.DefaultScheduleStatus.RUNNING
    sensors = {s.name: s.default_status for s in d.sensors}
    assert sensors == {"close_dead_runs_sensor": dg.DefaultSensorStatus.RUNNING}
    # A run launched from the UI executes its steps in its own process, as a CLI run does (issue 9: a process
    # per step made a UI run 2-4 minutes where the CLI took 14 s).
    executors = {j.name: j.executor_def.name for j in d.resolve_all_job_defs()}
    assert set(executors.values()) == {"in_process"}, executors
    checks = sorted(c.name for c in d.resolve_asset_graph().asset_check_keys)
    checks = sorted(c for c in checks if c != "connection")  # one per system, on its `<system>/api`
    assert checks == ["account_unique_per_source", "fx_rates_complete", "invoice_has_account", "invoice_key_unique",
                      "no_identifier_drift", "no_negative_amount_due", "overdue_amount_matches_invoices",
                      "overdue_invoice_has_account"]


def test_nightly_and_manual_schedules(tmp_path):
    nightly = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", schedule="nightly"))
    [s] = [s for s in nightly.schedules if s.name != "system_status_schedule"]
    assert (s.cron_schedule, s.execution_timezone) == ("0 0 * * *", "UTC")
    manual = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", schedule="manual"))
    assert [s.name for s in manual.schedules] == ["system_status_schedule"]  # the connection checks only


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


def _checks_of(job) -> set:
    return set().union(*(d.assets_def.check_keys for d in job.asset_layer.data))


def test_system_apis_are_external_and_only_the_status_job_checks_them(tmp_path):
    d = build_definitions(write_config(tmp_path, "http://127.0.0.1:1"))
    graph = d.resolve_asset_graph()
    apis = {dg.AssetKey(["fakturownia", "api"]), dg.AssetKey(["sugester", "api"])}
    for key in apis:  # "Materialize all" leaves them alone: nothing can materialize them
        assert not graph.get(key).is_materializable and not graph.get(key).is_executable
        assert graph.get(key).group_name == key.path[0]
    connection = d.resolve_job_def("fakturownia_to_sugester_job")
    assert not apis & connection.asset_layer.selected_asset_keys
    assert not apis & {c.asset_key for c in _checks_of(connection)}  # a sync does not wait for the API checks
    assert not apis & d.resolve_implicit_global_asset_job_def().asset_layer.selected_asset_keys
    status = d.resolve_job_def("system_status_job")
    assert {(c.asset_key, c.name) for c in _checks_of(status)} == {(k, "connection") for k in apis}
    assert not status.asset_layer.selected_asset_keys

"""Issue 13, "Dry runs look real": a dry run is tagged, and worded as a plan everywhere — the UI's metadata, the
Runs list (a tag), `sync-pipeline status` and the console — whoever launched it (CLI or launchpad)."""

from __future__ import annotations

import dagster as dg

from sync_pipeline.cli.report import asset_metadata
from sync_pipeline_tests.conftest import TODAY, run_sync

CONN = "fakturownia_to_sugester"


def _materializations(instance, run_id):
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return asset_metadata([r.dagster_event for r in records])


def test_a_cli_dry_run_is_tagged_and_its_metadata_and_status_say_would(config_path, sandbox, instance):
    from sync_pipeline.cli.status import connection_status, render
    from sync_pipeline.config import load_settings

    runs, summary = run_sync(config_path, instance, dry_run=True)
    run = instance.get_run_by_id(runs[0].run_id)
    assert run.tags.get("sync/dry_run") == "true"
    deals = _materializations(instance, runs[0].run_id)[f"{CONN}/deals"]
    assert deals["would_create"] > 0 and "created" not in deals and "updated" not in deals
    clients = _materializations(instance, runs[0].run_id)[f"{CONN}/clients"]
    assert clients["would_create"] > 0 and "created" not in clients
    assert summary["connections"][CONN]["deals"]["created"] == deals["would_create"]  # the console: "would be created"
    text = render(connection_status(instance, load_settings(config_path, strict=False)))
    assert "dry run: a plan, nothing written" in text and "would be created" in text


def test_a_launchpad_dry_run_is_tagged_too(config_path, sandbox, instance):
    from sync_pipeline.defs.build import build_definitions
    from sync_pipeline.defs.resources import run_options_config
    from sync_pipeline.defs.schedules import job_name

    result = build_definitions(config_path).resolve_job_def(job_name(CONN)).execute_in_process(
        instance=instance, run_config=run_options_config(as_of=TODAY, dry_run=True), raise_on_error=False)
    assert result.success
    assert instance.get_run_by_id(result.run_id).tags.get("sync/dry_run") == "true"
    assert not sandbox.sugester.deals

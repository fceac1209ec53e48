"""Build every Dagster definition from sync.yaml (factories, not copies: STYLE 4)."""


from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import Settings, load_settings
from sync_pipeline.connectors.registry import connector_for, target_entities
from sync_pipeline.defs.backfill import build_backfill_job
from sync_pipeline.defs.checks import build_metrics_checks, build_staging_checks
from sync_pipeline.defs.extract import build_extract_assets, build_side_assets
from sync_pipeline.defs.load import build_load_assets, load_keys, source_row_keys
from sync_pipeline.defs.metrics import build_metrics_assets
from sync_pipeline.defs.record import build_record_job
from sync_pipeline.defs.resources import RunOptions, SyncSettings
from sync_pipeline.defs.schedules import build_connection_job, build_history_job, build_schedule
from sync_pipeline.defs.sensors import close_dead_runs_sensor
from sync_pipeline.defs.staging import build_staging_assets
from sync_pipeline.defs.status import build_status_defs
from sync_pipeline.defs.twoway import side_asset_key
from sync_pipeline.defs.user_pairing import build_user_pairing_assets, user_pairing_keys


def _source_defs(settings: Settings, name: str) -> dg.Definitions:
    history_start = settings.history_start_for(name)
    jobs = [build_history_job(name)] if history_start else []
    return dg.Definitions(assets=build_extract_assets(settings.systems[name], history_start), jobs=jobs)


def _connection_defs(settings: Settings, name: str) -> dg.Definitions:
    conn = settings.connections[name]
    target_type = settings.systems[conn.target].type
    source_type = settings.systems[conn.source].type
    # the user pairing report rides along with every sync of the connection
    loads = load_keys(conn, target_type)
    pairing = user_pairing_keys(conn, source_type, target_type)
    # the two-way sides' own reads on either system (the target's clients, Billy's products)
    sides = sorted({side_asset_key(settings.systems, system, e.name) for e in target_entities(target_type)
                    if e.two_way for system in (conn.source, conn.target)}, key=lambda k: k.path)
    if connector_for(target_type).side_sourced:  # Invoice2go: the source's clients and products, nothing staged
        reads = sorted({k for e in target_entities(target_type) if e.source_rows
                        for k in source_row_keys(settings, conn.source, e.source_rows)}, key=lambda k: k.path)
        job = build_connection_job(conn, settings.systems[conn.source], [*reads, *loads], staged=False)
        schedule = build_schedule(conn, job)
        return dg.Definitions(assets=build_load_assets(conn, settings), jobs=[job],
                              schedules=[schedule] if schedule else [])
    job = build_connection_job(conn, settings.systems[conn.source], [*sides, *loads, *pairing])
    schedule = build_schedule(conn, job)
    assets = [*build_load_assets(conn, settings), *build_user_pairing_assets(conn, source_type, target_type, loads)]
    backfill = build_backfill_job(conn, settings.systems[conn.source], job.selection, loads)  # sync-pipeline backfill
    record = build_record_job(conn, settings)  # one record on demand (sync-record)
    return dg.Definitions(assets=assets, jobs=[job, backfill, *([record] if record else [])],
                          schedules=[schedule] if schedule else [])


def build_definitions(config_path: Path | str) -> dg.Definitions:
    # Structure only: `${ENV}` secrets are resolved inside runs, so the UI can load without them.
    settings = load_settings(config_path, strict=False)
    shared = dg.Definitions(
        assets=[*build_staging_assets(settings), *build_metrics_assets()],
        asset_checks=[*build_staging_checks(), *build_metrics_checks()],
        sensors=[close_dead_runs_sensor],
        # Every job, the UI's "Materialize" included, runs its steps in the run's own process: the steps
        # take turns on the one DuckDB writer anyway, and a process per step cost 2-4 minutes a run.
        executor=dg.in_process_executor,
        resources={
            "sync_settings": SyncSettings(config_path=str(Path(config_path).resolve())),
            "run_options": RunOptions(),
            "duckdb": DuckDBResource(database=str(settings.warehouse_path.resolve()), connection_config={
                "memory_limit": settings.warehouse.memory_limit,
                "temp_directory": str(settings.warehouse_path.resolve().parent / ".duckdb_tmp")}),
        },
    )
    return dg.Definitions.merge(
        shared,
        *[_source_defs(settings, n) for n in settings.source_systems],
        *[_connection_defs(settings, n) for n in settings.connections],
        build_status_defs(settings, config_path),  # each system's API and its connection check
        # the two-way sides' own reads (Sugester's clients, Billy's products), once per system
        *[dg.Definitions(assets=build_side_assets(settings.systems[t]))
          for t in sorted({n for c in settings.connections.values() for n in (c.source, c.target)})],
    )

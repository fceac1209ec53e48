"""Build every Dagster definition from sync.yaml (factories, not copies: STYLE 4)."""


from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import Settings, load_settings
from sync_pipeline.defs.checks import build_metrics_checks, build_staging_checks
from sync_pipeline.defs.extract import build_extract_assets
from sync_pipeline.defs.load import build_load_assets, load_keys
from sync_pipeline.defs.metrics import build_metrics_assets
from sync_pipeline.defs.resources import RunOptions, SyncSettings
from sync_pipeline.defs.schedules import build_connection_job, build_history_job, build_schedule
from sync_pipeline.defs.sensors import close_dead_runs_sensor
from sync_pipeline.defs.staging import build_staging_assets


def _source_defs(settings: Settings, name: str) -> dg.Definitions:
    history_start = settings.history_start_for(name)
    jobs = [build_history_job(name)] if history_start else []
    return dg.Definitions(assets=build_extract_assets(settings.systems[name], history_start), jobs=jobs)


def _connection_defs(settings: Settings, name: str) -> dg.Definitions:
    conn = settings.connections[name]
    target_type = settings.systems[conn.target].type
    job = build_connection_job(conn, settings.systems[conn.source], load_keys(conn, target_type))
    schedule = build_schedule(conn, job)
    return dg.Definitions(assets=build_load_assets(conn, target_type), jobs=[job],
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
    )

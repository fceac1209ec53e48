"""A job per connection, its schedule (UTC), and a backfill job per source system's history."""


import dagster as dg

from sync_pipeline.config import ConnectionSettings, SourceSystem
from sync_pipeline.defs.extract import extract_keys
from sync_pipeline.defs.metrics import METRICS_KEYS
from sync_pipeline.defs.resources import run_options_config
from sync_pipeline.defs.staging import STAGING_KEYS

TIMEZONE = "UTC"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def job_name(connection: str) -> str:
    return f"{connection}_job"


def build_connection_job(conn: ConnectionSettings, source: SourceSystem, load_keys: list[dg.AssetKey], *,
                         staged: bool = True):
    """`staged`: False for a target that reads the source's sides only (Invoice2go): its reads and loads, no
    staging or metrics."""
    keys = [*extract_keys(source), *STAGING_KEYS, *METRICS_KEYS, *load_keys] if staged else list(load_keys)
    return dg.define_asset_job(
        name=job_name(conn.name),
        selection=dg.AssetSelection.assets(*keys),
        description=f"Sync {conn.source} → {conn.target}: extract changes, stage, compute metrics, load.",
        tags={"sync/connection": conn.name},
    )


def build_schedule(conn: ConnectionSettings, job) -> dg.ScheduleDefinition | None:
    if conn.cron is None:  # manual
        return None

    @dg.schedule(
        name=f"{conn.name}_schedule", job=job, cron_schedule=conn.cron, execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(f"{conn.schedule} ({conn.cron}, {TIMEZONE})" if conn.schedule != conn.cron
                     else f"cron {conn.cron} ({TIMEZONE})"),
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        # A sync that has not finished yet is not started again: runs would queue up behind one another.
        busy = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=UNFINISHED), limit=1)
        if busy:
            return dg.SkipReason(f"run {busy[0].dagster_run.run_id[:8]} of {job.name} has not finished yet "
                                 f"({busy[0].dagster_run.status.value.lower()})")
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_config=run_options_config(as_of=as_of), tags={"sync/as_of": as_of})

    return _schedule


def build_history_job(system: str):
    return dg.define_asset_job(
        name=f"{system}_history_job",
        selection=dg.AssetSelection.assets(dg.AssetKey([system, "invoice_history"])),
        description=f"Backfill {system} invoices month by month (launch a backfill over its partitions).",
    )

"""The connection status of every configured system in the UI: an external asset `<system>/api` per system (its
API, which nothing here materializes) with a `connection` check, run by `system_status_job` every 15 minutes."""

from pathlib import Path

import dagster as dg

from sync_pipeline.config import ConfigError, Settings, load_settings
from sync_pipeline.connectors.registry import UnknownSystemType, connector_for
from sync_pipeline.defs.schedules import TIMEZONE, UNFINISHED
from sync_pipeline.system_status import check_systems, config_failure

CHECK_NAME = "connection"
JOB_NAME = "system_status_job"
SCHEDULE_NAME = "system_status_schedule"
CRON = "*/15 * * * *"


def api_key(system: str) -> dg.AssetKey:
    return dg.AssetKey([system, "api"])


def _label(system_type: str) -> str:
    try:
        return connector_for(system_type).label or system_type
    except UnknownSystemType:
        return system_type


def build_status_defs(settings: Settings, config_path: Path | str) -> dg.Definitions:
    names = list(settings.systems)
    if not names:
        return dg.Definitions()
    config_path = Path(config_path).resolve()
    keys = {n: api_key(n) for n in names}
    specs = [dg.AssetSpec(
        keys[n], group_name=n, kinds={"api"},
        description=f"The {_label(s.type)} API of system `{n}` ({s.type}) in sync.yaml. External: nothing here "
                    f"materializes it. Its `{CHECK_NAME}` check makes one cheap authenticated call ({JOB_NAME}, "
                    "every 15 minutes) and says green or red, with the reason when red.")
        for n, s in settings.systems.items()]

    @dg.multi_asset_check(
        name="system_connections", can_subset=True,
        description="Each configured system answers a cheap authenticated call (see sync-pipeline status).",
        specs=[dg.AssetCheckSpec(CHECK_NAME, asset=keys[n],
                                 description=f"{n} answers one cheap authenticated call with its credentials "
                                             "(red: the reason and the setting to fix; never a secret).")
               for n in names])
    def _connections(context: dg.AssetCheckExecutionContext):
        selected = {k.asset_key for k in context.selected_asset_check_keys}
        wanted = [n for n in names if keys[n] in selected]
        try:
            # Read now, not at load: the file of this run. Unset `${ENV}` secrets stay in place (strict=False)
            # and make their own system red; the others are checked all the same.
            current = load_settings(config_path, strict=False)
        except ConfigError as exc:
            statuses = config_failure(wanted, exc)
        else:
            statuses = check_systems(current, wanted)
        for s in statuses:
            if not s.ok:
                context.log.warning(f"{s.system}: {s.detail}")
            metadata = {"system": s.system, "type": s.type, "detail": s.detail, "seconds": s.seconds,
                        "checked_at": dg.MetadataValue.timestamp(s.checked_at)}
            if s.error:
                metadata["error"] = s.error
            yield dg.AssetCheckResult(asset_key=keys[s.system], check_name=CHECK_NAME, passed=s.ok,
                                      severity=dg.AssetCheckSeverity.ERROR, description=s.detail, metadata=metadata)

    job = dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.checks_for_assets(*keys.values()),
        description="Check that every configured system answers with its credentials (the `connection` checks).")

    @dg.schedule(name=SCHEDULE_NAME, job=job, cron_schedule=CRON, execution_timezone=TIMEZONE,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"The connection checks of every system, every 15 minutes ({CRON}, {TIMEZONE}).")
    def _schedule(context: dg.ScheduleEvaluationContext):
        busy = context.instance.get_run_records(dg.RunsFilter(job_name=JOB_NAME, statuses=UNFINISHED), limit=1)
        if busy:  # a check that hangs on a timeout is not stacked up behind
            return dg.SkipReason(f"run {busy[0].dagster_run.run_id[:8]} of {JOB_NAME} has not finished yet")
        return dg.RunRequest()

    return dg.Definitions(assets=specs, asset_checks=[_connections], jobs=[job], schedules=[_schedule])

"""Sensors: close runs whose process died, for runs the daemon started (schedules, the UI)."""

import dagster as dg

from sync_pipeline.dead_runs import close_dead_runs


@dg.sensor(
    name="close_dead_runs_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s: a run whose process died (killed, out of memory) is marked failed and its pool slots "
                "freed, so it cannot block later runs. Dagster's local run launcher cannot tell it on its own.",
)
def close_dead_runs_sensor(context: dg.SensorEvaluationContext):
    closed = close_dead_runs(context.instance, say=context.log.warning)
    return dg.SkipReason(f"closed {len(closed)} dead run(s): {', '.join(d.run_id[:8] for d in closed)}" if closed
                         else "no dead run")

"""What a child's Dagster instance says about its runs: the step a kill hit, scheduled runs, pool slots."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.instance.ref import InstanceRef

POOL = "duckdb"
PHASES = ("startup", "extract", "staging", "metrics", "writing")
_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.RUN_START}


@contextmanager
def instance_at(home: Path):
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield instance


def phase_of(step_key: str | None, connection: str) -> str:
    """The pipeline stage a step belongs to: extract (`<system>__*`), staging (asset checks included),
    metrics, writing (`<connection>__*`), or startup when no step had started."""
    if not step_key:
        return "startup"
    if step_key.startswith(f"{connection}__"):
        return "writing"
    if step_key.startswith("staging"):
        return "staging"
    if step_key.startswith("metrics"):
        return "metrics"
    return "extract"


@dataclass
class StepTimes:
    run_start: float | None                 # wall clock of RUN_START
    worker_pid: int | None                  # the process of RUN_START (the run worker)
    steps: list[tuple[str, float, int | None]]  # (step key, STEP_START wall clock, pid)

    def last_step(self) -> str | None:
        return self.steps[-1][0] if self.steps else None

    def phase_starts(self, connection: str) -> dict[str, float]:
        """Wall clock at which each phase's first step started."""
        out: dict[str, float] = {}
        for key, at, _ in self.steps:
            out.setdefault(phase_of(key, connection), at)
        return out


def step_times(instance: dg.DagsterInstance, run_id: str) -> StepTimes:
    run_start, pid, steps = None, None, []
    for record in instance.all_logs(run_id, of_type=_STEP_EVENTS):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_START:
            run_start, pid = record.timestamp, event.pid
        else:
            steps.append((record.step_key or event.step_key, record.timestamp, event.pid))
    steps.sort(key=lambda s: s[1])
    return StepTimes(run_start, pid, steps)


def run_ids_by_tag(instance: dg.DagsterInstance, key: str, value: str) -> list[str]:
    return [r.dagster_run.run_id for r in instance.get_run_records(dg.RunsFilter(tags={key: value}))]


def scheduled_runs(instance: dg.DagsterInstance, schedule: str) -> list[dg.RunRecord]:
    """Runs a schedule created, oldest first."""
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/schedule_name": schedule}))
    return sorted(records, key=lambda r: r.create_timestamp)


def claimed_by(instance: dg.DagsterInstance, run_id: str) -> int:
    """Pool slots `run_id` holds (or waits for) in the duckdb pool."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or POOL not in storage.get_concurrency_keys():
        return 0
    info = storage.get_concurrency_info(POOL)
    return (sum(1 for s in info.claimed_slots if s.run_id == run_id)
            + sum(1 for p in info.pending_steps if p.run_id == run_id))


def load_counts(instance: dg.DagsterInstance, run_id: str, connection: str) -> dict[str, dict[str, Any]]:
    """created/updated/... per entity, from the run's materializations of `<connection>/<entity>`."""
    out: dict[str, dict[str, Any]] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = record.asset_materialization
        if mat is None:
            continue
        key = mat.asset_key.to_user_string()
        if key.startswith(f"{connection}/"):
            out[key.split("/", 1)[1]] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()
                                         if k in ("created", "updated", "adopted", "unchanged", "failed", "blocked")}
    return out

"""Close runs whose process died: mark them failed and free the pool slots they held.

A run killed mid-step (SIGKILL, out of memory, a reboot) stays STARTED in the Dagster instance with
its `duckdb` pool slot claimed, and every later run then waits for that slot forever. Dagster's
default (local) run launcher cannot tell a dead run worker from a slow one, so this module does:
a run is dead when every process that worked on it — the run worker and its step processes, known
from the run's tags and events — is gone from this machine. The CLI checks before every run, while
waiting for a slot and in `status`; a sensor does the same for runs started by the daemon.

The manual way out (README "When a run died") is `sync-pipeline recover`, or Dagster's own API:
`instance.report_run_failed(run)` then `instance.event_log_storage.free_concurrency_slots_for_run(run_id)`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

HOST_TAG = "sync/host"
PID_TAG = "sync/pid"
PID_STARTED_TAG = "sync/pid_started"
# Runs in these states have (or may soon have) a process working on them. QUEUED runs have none yet.
_ACTIVE = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
           dg.DagsterRunStatus.CANCELING]
_PROCESS_EVENTS = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START}
_START_TOLERANCE = 2.0  # seconds: /proc start times are precise to a clock tick, boot time to a second


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), None when it does not exist or is a zombie.
    Where /proc is missing (macOS), existence only: the start time is reported as 0."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _exists_without_proc(pid)
    # The command name (field 2) may contain spaces and parentheses: fields restart after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie has exited; only its parent has not reaped it
        return None
    boot = _boot_time()
    if boot is None:
        return 0.0
    return boot + int(fields[19]) / _clock_ticks()


def _exists_without_proc(pid: int) -> float | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0.0
    return 0.0


def _process_alive(pid: int, seen_at: float) -> bool:
    """True when `pid` is a live process that already existed at `seen_at` (not a reused pid)."""
    started = process_started_at(pid)
    return started is not None and started <= seen_at + _START_TOLERANCE


def worker_tags() -> dict[str, str]:
    """Tags that let any later process tell whether this process still works on a run."""
    pid = os.getpid()
    started = process_started_at(pid) or time.time()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_STARTED_TAG: f"{started:.2f}"}


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    connection: str
    status: str
    started_at: float | None
    pids: tuple[int, ...]

    def describe(self) -> str:
        when = (datetime.fromtimestamp(self.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                if self.started_at else "never started")
        procs = ", ".join(str(p) for p in self.pids)
        what = f"process {procs} is" if len(self.pids) == 1 else f"processes {procs} are"
        return (f"run {self.run_id[:8]} ({self.connection or 'no connection'}, {when}) died without finishing "
                f"({what} gone)")


def _local_launcher(instance: dg.DagsterInstance) -> bool:
    # The default launcher starts run workers on the machine that serves the code location: this one,
    # in the single-machine set-up. Remote launchers (Kubernetes, Celery) have run monitoring of their own.
    return type(instance.run_launcher).__name__ == "DefaultRunLauncher"


def _known_processes(instance: dg.DagsterInstance, run: dg.DagsterRun, local_launcher: bool) -> list[tuple[int, float]] | None:
    """(pid, when it was seen working on the run) of every process known to have worked on the run, or
    None when liveness cannot be judged from this machine."""
    tags = run.tags
    if tags.get(HOST_TAG) and tags[HOST_TAG] != socket.gethostname():
        return None
    procs: list[tuple[int, float]] = []
    if tags.get(PID_TAG, "").isdigit():
        procs.append((int(tags[PID_TAG]), float(tags.get(PID_STARTED_TAG) or 0) or time.time()))
    elif not local_launcher:
        return None
    for record in instance.all_logs(run.run_id, of_type=_PROCESS_EVENTS):
        pid = record.dagster_event.pid if record.dagster_event else None
        if pid:
            procs.append((pid, record.timestamp))
    return procs or None


def find_dead_runs(instance: dg.DagsterInstance, *, exclude: Iterable[str] = ()) -> list[DeadRun]:
    local = _local_launcher(instance)
    skip = set(exclude)
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_ACTIVE)):
        run = record.dagster_run
        if run.run_id in skip:
            continue
        procs = _known_processes(instance, run, local)
        if procs is None or any(_process_alive(pid, seen) for pid, seen in procs):
            continue
        dead.append(DeadRun(run.run_id, run.tags.get("sync/connection", ""), run.status.value, record.start_time,
                            tuple(sorted({pid for pid, _ in procs}))))
    return dead


def close_dead_runs(instance: dg.DagsterInstance, *, say: Callable[[str], None] | None = None,
                    exclude: Iterable[str] = ()) -> list[DeadRun]:
    """Mark every dead run failed (or canceled, if it was canceling), free its pool slots and pending
    steps, and free slots still held by finished runs. `say` gets one line per run closed."""
    closed = []
    for dead in find_dead_runs(instance, exclude=exclude):
        run = instance.get_run_by_id(dead.run_id)
        if run is None or run.status.value != dead.status:  # finished meanwhile: not ours to touch
            continue
        message = f"{dead.describe()}; marked {'canceled' if dead.status == 'CANCELING' else 'failed'} by sync-pipeline"
        if dead.status == "CANCELING":
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        _free_slots(instance, dead.run_id)
        closed.append(dead)
        if say:
            say(f"sync-pipeline: {dead.describe()}; marked it failed and freed its pool slots.")
    _free_slots_of_finished_runs(instance)
    return closed


def force_close(instance: dg.DagsterInstance, run_id: str) -> str:
    """The manual way out for a run this machine cannot judge (another host, a remote launcher): mark it
    failed and free its slots, whatever its process is doing. Returns what was done, in words."""
    matches = [r for r in instance.get_run_records(dg.RunsFilter(statuses=_ACTIVE))
               if r.dagster_run.run_id.startswith(run_id)]
    if len(matches) != 1:
        return f"run {run_id}: {'no unfinished run has this id' if not matches else 'the id prefix is ambiguous'}"
    run = matches[0].dagster_run
    instance.report_run_failed(run, "marked failed by hand (sync-pipeline recover --run)")
    _free_slots(instance, run.run_id)
    return f"run {run.run_id[:8]} ({run.tags.get('sync/connection', run.job_name)}): marked failed, pool slots freed"


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def _free_slots_of_finished_runs(instance: dg.DagsterInstance) -> None:
    """A run that ended without freeing its slots (its worker died and was marked failed by its parent, or it
    died while being marked failed) would hold them forever. They are freed once no process of the run is
    left: a step process orphaned by its killed worker may still be writing DuckDB."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    run_ids = storage.get_concurrency_run_ids()
    if not run_ids:
        return
    local = _local_launcher(instance)
    for record in instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids))):
        run = record.dagster_run
        if not run.is_finished:
            continue
        procs = _known_processes(instance, run, local) or []
        if any(_process_alive(pid, seen) for pid, seen in procs):
            continue
        storage.free_concurrency_slots_for_run(run.run_id)

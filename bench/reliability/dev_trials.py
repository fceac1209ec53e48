"""Dev trials: the scheduler under `sync-pipeline dev` (the Dagster daemon) starts the runs; we SIGKILL one
run's worker (sometimes with its step processes) at a random moment. The dead run must be marked failed
and its pool slot freed within about a minute, the next scheduled run must succeed, the targets must be
right, and the scheduled run after that must write nothing. Each connection's trials run in a thread
of their own (their sources and targets are disjoint), so both use the same scheduler ticks."""

from __future__ import annotations

import random
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import dagster as dg

import processes
from checks import TARGET, excuse_midnight, utc_day, verify
from cli_trials import SYNC_PIPELINE, TRIGGERS
from runs import claimed_by, instance_at, load_counts, phase_of, scheduled_runs, step_times
from sources import SourceChanger
from sync_pipeline.sandbox.snapshot import write_counts
from triggers import STAGES, Calibration, WriteTrigger, arm_at_write, first_step_of
from workspace import Workspace

CLOSE_DEADLINE = 180.0  # the sensor runs every 30 s; DESIGN asks for about a minute
_FAILURES = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevSession:
    """`sync-pipeline dev` in a subprocess, on the dev configuration and a Dagster home of its own."""

    def __init__(self, ws: Workspace, calibration: Calibration, *, schedules: dict[str, str], timeout: float,
                 say: Callable[[str], None] = print, line_of: Callable[[dict], str] = str):
        self.ws, self.cal, self.schedules, self.timeout, self.say = ws, calibration, schedules, timeout, say
        self.line_of = line_of  # one progress line per trial
        self.home = ws.dagster_home("home_dev")
        self.log = ws.root / "logs" / "dev.log"
        self.log.parent.mkdir(exist_ok=True)
        self.proc = None
        self.leftovers: list[int] = []

    def start(self) -> None:
        port = _free_port()
        cmd = [SYNC_PIPELINE, "dev", "--config", str(self.ws.dev_config), "--port", str(port)]
        self.proc = processes.spawn(cmd, env=self.ws.env(self.home), cwd=self.ws.dev_config.parent, log=self.log,
                                    capture=False)
        self.say(f"dagster dev on port {port}, schedules {self.schedules}")

    def crash(self) -> list[int]:
        """SIGKILL all of dagster dev at once (webserver, daemon, code server, run workers, steps): a reboot."""
        pids = processes.group_members(self.proc.pid) + processes.with_environment("DAGSTER_HOME", str(self.home))
        processes.kill_group(self.proc)
        return processes.kill_pids(list(dict.fromkeys(pids))) or [self.proc.pid]

    def __enter__(self) -> DevSession:
        with instance_at(self.home) as instance:  # creates the storage before dagster dev starts
            self.start()
            self.say("waiting for a clean scheduled run of each connection")
            for connection in [c for c, cron in self.schedules.items() if cron != "manual"]:
                watch = RunWatcher(self, instance, connection)
                run = self.wait(lambda w=watch: w.finished_after(0.0), self.timeout + 180)
                if run is None or run.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                    raise RuntimeError(f"{connection}: no successful scheduled run under dagster dev "
                                       f"({run.dagster_run.status.value if run else 'none'}); see {self.log}")
                watch.observe(run)
                self.say(f"dev baseline {connection}: scheduled run {run.dagster_run.run_id[:8]} took "
                         f"{run.end_time - run.start_time:.1f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            processes.stop_group(self.proc, grace=30)
        time.sleep(1)
        self.leftovers = processes.kill_pids(processes.with_environment("DAGSTER_HOME", str(self.home)))

    def wait(self, probe: Callable[[], Any], timeout: float, poll: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited ({self.proc.returncode}); see {self.log}")
            value = probe()
            if value:
                return value
            time.sleep(poll)
        return None

    def run_trials(self, connections: list[str], trials: int, reboots: int, seed: int,
                   trigger: WriteTrigger) -> list[dict]:
        """`trials` per connection, the connections side by side (their sources and targets are disjoint);
        then `reboots` per connection, one at a time, where all of dagster dev is killed mid-run and started
        again. Records in (trial, connection) order."""
        out: dict[str, list[dict]] = {c: [] for c in connections}
        workers = {}

        def work(i: int, connection: str, numbers: range, reboot: bool) -> None:
            one = workers[connection]
            with instance_at(self.home) as instance:
                one.instance = instance
                one.watch = RunWatcher(self, instance, connection)
                for n in numbers:
                    try:
                        out[connection].append(one.trial(n, reboot=reboot))
                    except Exception:  # noqa: BLE001 - one broken trial must not hide the others
                        out[connection].append(_broken(connection, n, traceback.format_exc()))
                    self.say(self.line_of(out[connection][-1]))

        for i, connection in enumerate(connections):
            rng = random.Random(seed * 1000 + i)
            workers[connection] = DevConnectionTrials(self, None, connection, rng,
                                                      SourceChanger(self.ws.sandbox, rng, first=100_000 * (i + 1)),
                                                      trigger)
        try:
            threads = [threading.Thread(target=work, args=(i, c, range(1, trials + 1), False), name=f"dev-{c}",
                                        daemon=True) for i, c in enumerate(connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for i, connection in enumerate(connections):
                work(i, connection, range(trials + 1, trials + reboots + 1), True)
        finally:
            for one in workers.values():
                one.changer.close()
        return [out[c][n] for n in range(trials + reboots) for c in connections if n < len(out[c])]


def _broken(connection: str, n: int, error: str) -> dict:
    return {"connection": connection, "mode": "dev", "trial": n, "trigger": "none", "killed": False,
            "phase": "finished", "kill_delay_s": 0.0, "duplicates": {}, "missing": {}, "unexpected": {},
            "hang": None, "run_failed": f"harness error: {error[-600:]}", "check_writes": None,
            "dead_run_closed_s": None, "seconds": 0.0}


class RunWatcher:
    """The scheduled runs of one connection, as its own thread's instance sees them."""

    def __init__(self, session: DevSession, instance: dg.DagsterInstance, connection: str):
        self.session, self.instance, self.connection = session, instance, connection

    def runs_after(self, after: float) -> list[dg.RunRecord]:
        return [r for r in scheduled_runs(self.instance, f"{self.connection}_schedule")
                if r.create_timestamp.timestamp() > after]

    def started_after(self, after: float):
        """The first run created after `after` once its worker started: (record, step times)."""
        for record in self.runs_after(after):
            times = step_times(self.instance, record.dagster_run.run_id)
            if times.worker_pid:
                return record, times
            if record.dagster_run.is_finished:
                continue  # ended before it started (canceled): look at the next one
            return None
        return None

    def finished_after(self, after: float) -> dg.RunRecord | None:
        runs = self.runs_after(after)
        if runs and runs[0].dagster_run.is_finished:
            return self.instance.get_run_record_by_id(runs[0].dagster_run.run_id)
        return None

    def observe(self, record: dg.RunRecord) -> None:
        times = step_times(self.instance, record.dagster_run.run_id)
        if times.run_start and record.end_time:
            self.session.cal.observe(self.connection, "dev", times, times.run_start, record.end_time)

    def error(self, run_id: str) -> str:
        for record in self.instance.all_logs(run_id, of_type=_FAILURES):
            event = record.dagster_event
            return ((event.message if event else None) or record.user_message or "")[:400]
        return "no failure event"

    def closed_by(self, run_id: str) -> str:
        """Who marked the dead run failed: our sensor, Dagster's code server (it saw its child die), or other."""
        texts = [(r.dagster_event.message if r.dagster_event else "") or r.user_message or ""
                 for r in self.instance.all_logs(run_id, of_type={dg.DagsterEventType.ENGINE_EVENT,
                                                                   dg.DagsterEventType.RUN_FAILURE,
                                                                   dg.DagsterEventType.RUN_CANCELED})]
        if any("by sync-pipeline" in t for t in texts):
            # close_dead_runs ran in the sensor (the daemon logs it) or as `sync-pipeline dev` started
            said = [line for line in self.session.log.read_text(errors="replace").splitlines()
                    if run_id[:8] in line and "died without finishing" in line]
            return "close_dead_runs_sensor" if any("sensor" in line.lower() for line in said) else "sync-pipeline dev start-up"
        if any("[DagsterApiServer]" in t for t in texts):
            return "dagster code server"
        return "other"


class DevConnectionTrials:
    def __init__(self, session: DevSession, instance: dg.DagsterInstance | None, connection: str,
                 rng: random.Random, changer: SourceChanger, trigger: WriteTrigger):
        self.s, self.instance, self.connection = session, instance, connection
        self.rng, self.changer, self.trigger = rng, changer, trigger
        self.watch = RunWatcher(session, instance, connection) if instance is not None else None

    def _status(self, run_id: str) -> dg.DagsterRun:
        return self.instance.get_run_by_id(run_id)

    def trial(self, n: int, *, reboot: bool = False) -> dict:
        s, rng, cal, connection = self.s, self.rng, self.s.cal, self.connection
        target = TARGET[connection]
        began = time.monotonic()
        change = self.changer.change(connection)
        changed_at = time.time()
        record: dict[str, Any] = {"connection": connection, "mode": "dev", "trial": n, "change": change.as_dict(),
                                  "killed": False, "phase": "finished", "kill_delay_s": 0.0, "duplicates": {},
                                  "missing": {}, "unexpected": {}, "hang": None, "run_failed": None,
                                  "check_writes": None, "dead_run_closed_s": None}
        started = s.wait(lambda: self.watch.started_after(changed_at), s.timeout, poll=0.2)
        if started is None:
            record.update(trigger="none", hang=f"no scheduled run started within {s.timeout:.0f} s",
                          seconds=round(time.monotonic() - began, 2))
            return record
        run, times = started
        run_id, worker = run.dagster_run.run_id, times.worker_pid
        trigger = rng.choices(list(TRIGGERS), weights=list(TRIGGERS.values()))[0]
        scope = "reboot" if reboot else "tree" if trigger == "write" else rng.choice(("worker", "tree"))
        record["worker_parent"] = processes.parent_of(worker)[1]
        killed_pids: list[int] = []

        def kill() -> None:
            if scope == "reboot":
                killed_pids.extend(s.crash())
                return
            pids = [worker]
            if scope == "tree":  # the step processes are the worker's children; their STEP_START pids to be sure
                pids += processes.descendants(worker)
                try:
                    pids += [p for _, _, p in step_times(self.instance, run_id).steps if p and processes.alive(p)]
                except Exception:  # noqa: BLE001 - may run in the sandbox's thread: never let it break the kill
                    pass
            killed_pids.extend(processes.kill_pids(list(dict.fromkeys(pids))))

        kill_at, aim = None, None
        if trigger == "uniform":
            kill_at = times.run_start + rng.uniform(0, cal.total(connection, "dev"))
        elif trigger == "stage":
            aim = rng.choice(STAGES)
        else:
            aim = arm_at_write(self.trigger, rng, target, change, kill)
        deadline = time.monotonic() + s.timeout
        while time.monotonic() < deadline:
            if self._status(run_id).is_finished or (trigger == "write" and self.trigger.fired(target)):
                break
            if trigger == "stage" and kill_at is None:
                anchor = first_step_of(step_times(self.instance, run_id), connection, aim)
                if anchor is not None:
                    kill_at = max(time.time(), anchor + rng.uniform(0, cal.stage(connection, "dev", aim)))
            if kill_at is not None and time.time() >= kill_at:
                kill()
                break
            time.sleep(0.05)
        fired = self.trigger.disarm(target) if trigger == "write" else None
        killed_at = time.time()
        last = step_times(self.instance, run_id).last_step()
        killed = bool(killed_pids) and not self._status(run_id).is_finished
        if scope == "reboot":
            if not killed_pids:  # the run ended before the kill: crash dagster dev all the same
                killed_pids.extend(s.crash())
            s.proc.wait()
            s.start()  # `sync-pipeline dev` closes dead runs as it starts; the sensor does from then on
        record.update(trigger=trigger, aim=aim, scope=scope, write_fired=fired, killed=killed,
                      killed_pids=killed_pids, kill_delay_s=round(killed_at - times.run_start, 3),
                      phase=phase_of(last, connection) if killed else "finished", last_step=last, killed_run=run_id)
        hang: list[str] = []
        if not killed and not self._status(run_id).is_finished:
            hang.append(f"scheduled run {run_id[:8]} still running after {s.timeout:.0f} s")

        if killed:  # the dead run is marked failed and gives its pool slot back
            closed = s.wait(lambda: self._status(run_id).is_finished, CLOSE_DEADLINE, poll=0.5)
            status = self._status(run_id).status.value
            record["killed_run_status"] = status
            if closed:
                record["dead_run_closed_s"] = round(time.time() - killed_at, 1)
                record["closed_by"] = self.watch.closed_by(run_id)
            else:
                hang.append(f"dead run {run_id[:8]} not marked failed within {CLOSE_DEADLINE:.0f} s (still {status})")
            freed = s.wait(lambda: claimed_by(self.instance, run_id) == 0 or None, CLOSE_DEADLINE, poll=0.5)
            record["slot_freed_s"] = round(time.time() - killed_at, 1) if freed else None
            if not freed:
                hang.append(f"dead run {run_id[:8]} still holds a duckdb pool slot after {CLOSE_DEADLINE:.0f} s")

        # The next scheduled run must succeed; then the targets must be right.
        day = utc_day()
        after = s.wait(lambda: self.watch.finished_after(killed_at), s.timeout)
        if after is None:
            hang.append(f"no scheduled run after the kill finished within {s.timeout:.0f} s")
        else:
            after_id = after.dagster_run.run_id
            record["recovery_run"] = after_id
            if after.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                record["run_failed"] = (f"run {after_id[:8]} after the kill: {after.dagster_run.status.value}: "
                                        f"{self.watch.error(after_id)}")
            else:
                self.watch.observe(after)
                record["recovery_counts"] = load_counts(self.instance, after_id, connection)
        found = verify(s.ws.sandbox, connection, s.ws.warehouse)
        record.update(duplicates=found["duplicates"], missing=found["missing"], unexpected=found["unexpected"],
                      quarantined_expected=found["quarantined_expected"], held=found["held"])

        # The next scheduled run writes nothing.
        checked_at = time.time()
        before = write_counts(s.ws.sandbox)[target]
        check = s.wait(lambda: self.watch.finished_after(checked_at), s.timeout)
        if check is None:
            hang.append(f"no check run finished within {s.timeout:.0f} s")
        else:
            check_id = check.dagster_run.run_id
            wrote = write_counts(s.ws.sandbox)[target] - before
            counts = load_counts(self.instance, check_id, connection)
            changed = {e: c for e, c in counts.items() if c.get("created") or c.get("updated")}
            record["check_run"] = check_id
            if wrote or changed:
                record["check_writes"] = {"requests": wrote, **changed}
            if check.dagster_run.status != dg.DagsterRunStatus.SUCCESS and not record["run_failed"]:
                record["run_failed"] = (f"check run {check_id[:8]}: {check.dagster_run.status.value}: "
                                        f"{self.watch.error(check_id)}")
        record.update(hang="; ".join(hang) or None, seconds=round(time.monotonic() - began, 2))
        excuse_midnight(record, day)
        return record

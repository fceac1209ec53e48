"""CLI trials: `sync-pipeline run --connection C --json` in a subprocess, SIGKILLed at a random moment,
then run again cleanly, the targets checked, and one more run that must write nothing."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import processes
from checks import TARGET, excuse_midnight, utc_day, verify
from runs import instance_at, phase_of, step_times
from sources import Change, SourceChanger
from sync_pipeline.dead_runs import PID_TAG
from sync_pipeline.sandbox.snapshot import write_counts
from triggers import STAGES, Calibration, WriteTrigger, arm_at_write, first_step_of
from workspace import REPO, Workspace

SYNC_PIPELINE = str(REPO / ".venv" / "bin" / "sync-pipeline")
TRIGGERS = {"uniform": 0.2, "stage": 0.5, "write": 0.3}  # how a kill moment is chosen (shares)
_POLL = 0.05


@dataclass
class CleanRun:
    rc: int | None          # None: it did not finish within the timeout (a hang)
    seconds: float
    summary: dict | None
    run_id: str | None
    stderr_tail: str


class CliTrials:
    def __init__(self, ws: Workspace, rng: random.Random, changer: SourceChanger, trigger: WriteTrigger,
                 calibration: Calibration, *, timeout: float, say=print):
        self.ws, self.rng, self.changer, self.trigger, self.cal = ws, rng, changer, trigger, calibration
        self.timeout, self.say = timeout, say
        self.home = ws.dagster_home("home_cli")
        self.logs = ws.root / "logs"
        self.logs.mkdir(exist_ok=True)
        with instance_at(self.home):  # create the instance's storage before any child races for it
            pass

    # -- one clean run --------------------------------------------------------------------------------
    def _spawn(self, connection: str, log: Path) -> subprocess.Popen:
        cmd = [SYNC_PIPELINE, "run", "--config", str(self.ws.config), "--connection", connection, "--json"]
        return processes.spawn(cmd, env=self.ws.env(self.home), cwd=self.ws.config.parent, log=log)

    def clean_run(self, connection: str, label: str) -> CleanRun:
        log = self.logs / f"{label}.log"
        spawned = time.time()
        proc = self._spawn(connection, log)
        try:
            out, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            processes.kill_group(proc)
            proc.communicate()
            return CleanRun(None, round(time.time() - spawned, 2), None, None, _tail(log))
        ended = time.time()
        try:
            summary = json.loads(out)
        except ValueError:
            summary = None
        run_id = ((summary or {}).get("connections", {}).get(connection) or {}).get("run_id")
        if run_id and proc.returncode == 0:
            with instance_at(self.home) as instance:
                self.cal.observe(connection, "cli", step_times(instance, run_id), spawned, ended)
        return CleanRun(proc.returncode, round(ended - spawned, 2), summary, run_id, _tail(log))

    # -- the kill -------------------------------------------------------------------------------------
    def _killed_run(self, connection: str, trigger: str, label: str, change: Change) -> dict:
        rng, cal = self.rng, self.cal
        target = TARGET[connection]
        spawned = time.time()
        child = self._spawn(connection, self.logs / f"{label}-killed.log")
        kill_at: float | None = None
        aim: str | None = None
        if trigger == "uniform":
            kill_at = spawned + rng.uniform(0, cal.total(connection, "cli"))
        elif trigger == "stage":
            aim = rng.choice(STAGES)
        else:
            aim = arm_at_write(self.trigger, rng, target, change, lambda: processes.kill_group(child))
        run_id = None
        with instance_at(self.home) as instance:
            while child.poll() is None and time.time() - spawned < self.timeout:
                if trigger == "stage" and kill_at is None:
                    run_id = run_id or _run_of_pid(instance, child.pid)
                    anchor = first_step_of(step_times(instance, run_id), connection, aim) if run_id else None
                    if anchor is not None:
                        kill_at = max(time.time(), anchor + rng.uniform(0, cal.stage(connection, "cli", aim)))
                if kill_at is not None and time.time() >= kill_at:
                    processes.kill_group(child)
                    break
                time.sleep(_POLL)
            fired = self.trigger.disarm(target) if trigger == "write" else None
            overran = child.poll() is None and not fired and (kill_at is None or time.time() < kill_at)
            if child.poll() is None:
                processes.kill_group(child)  # aimed (or, past the timeout, to stop a hung run)
            child.wait()
            killed_at = time.time()
            killed = child.returncode == -signal.SIGKILL and not overran
            run_id = run_id or _run_of_pid(instance, child.pid)
            times = step_times(instance, run_id) if run_id else None
            status = instance.get_run_by_id(run_id).status.value if run_id else None
        last = times.last_step() if times else None
        return {"killed": killed, "kill_delay_s": round(killed_at - spawned, 3), "aim": aim, "write_fired": fired,
                "phase": _phase(killed, status, last, connection), "last_step": last,
                "killed_run": run_id, "killed_run_status_after_kill": status,
                "killed_run_overran": overran}

    # -- one trial ------------------------------------------------------------------------------------
    def trial(self, connection: str, n: int) -> dict:
        started = time.monotonic()
        label = f"cli-{connection}-{n:03d}"
        target = TARGET[connection]
        change = self.changer.change(connection)
        trigger = self.rng.choices(list(TRIGGERS), weights=list(TRIGGERS.values()))[0]
        kill = self._killed_run(connection, trigger, label, change)
        day = utc_day()
        recovery = self.clean_run(connection, f"{label}-recovery")
        record = {"connection": connection, "mode": "cli", "trial": n, "trigger": trigger, "change": change.as_dict(),
                  **kill, "recovery_run": recovery.run_id, "recovery_s": recovery.seconds}
        hang, run_failed = [], None
        if kill["killed_run_overran"]:
            hang.append(f"the run to be killed was still running after {self.timeout:.0f} s")
        if recovery.rc is None:
            hang.append(f"the run after the kill did not finish in {self.timeout:.0f} s")
        elif recovery.rc != 0:
            run_failed = f"the run after the kill exited {recovery.rc}: {_error(recovery, connection)}"
        found = verify(self.ws.sandbox, connection, self.ws.warehouse)
        before = write_counts(self.ws.sandbox)[target]
        check = self.clean_run(connection, f"{label}-check")
        wrote = write_counts(self.ws.sandbox)[target] - before
        if check.rc is None:
            hang.append(f"the check run did not finish in {self.timeout:.0f} s")
        elif check.rc != 0 and not run_failed:
            run_failed = f"the check run exited {check.rc}: {_error(check, connection)}"
        counts = _load_counts(check.summary, connection)
        changed = {e: c for e, c in counts.items() if c.get("created") or c.get("updated")}
        with instance_at(self.home) as instance:
            closed = instance.get_run_by_id(kill["killed_run"]).status.value if kill["killed_run"] else None
        record.update({
            "killed_run_status": closed, "check_run": check.run_id, "check_s": check.seconds,
            "duplicates": found["duplicates"], "missing": found["missing"], "unexpected": found["unexpected"],
            "quarantined_expected": found["quarantined_expected"], "held": found["held"],
            "hang": "; ".join(hang) or None, "run_failed": run_failed,
            "check_writes": ({"requests": wrote, **changed} if wrote or changed else None),
            "recovery_counts": _load_counts(recovery.summary, connection),
            "seconds": round(time.monotonic() - started, 2),
        })
        excuse_midnight(record, day)
        return record


def _phase(killed: bool, status: str | None, last_step: str | None, connection: str) -> str:
    if not killed:
        return "finished"  # the process ended before the kill
    if status in ("SUCCESS", "FAILURE", "CANCELED"):
        return "after_run"  # the run had ended; the kill hit the process on its way out
    return phase_of(last_step, connection)


def _run_of_pid(instance, pid: int) -> str | None:
    from runs import run_ids_by_tag

    ids = run_ids_by_tag(instance, PID_TAG, str(pid))
    return ids[0] if ids else None


def _load_counts(summary: dict | None, connection: str) -> dict:
    conn = ((summary or {}).get("connections") or {}).get(connection) or {}
    return {e: {k: v for k, v in c.items() if k != "examples"} for e, c in conn.items() if isinstance(c, dict)}


def _error(run: CleanRun, connection: str) -> str:
    conn = ((run.summary or {}).get("connections") or {}).get(connection) or {}
    return conn.get("error") or run.stderr_tail or "no output"


def _tail(log: Path, n: int = 600) -> str:
    try:
        return log.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""

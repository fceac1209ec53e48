"""Crash harness (issue 7, `make reliability`): SIGKILL each writing connection at random moments, run it
again, and check that every target holds exactly one record per key, nothing is missing, and the next
run neither hangs nor writes anything.

    .venv/bin/python bench/reliability/crash_trials.py --trials 50 --dev-trials 5 [--connection C] [--seed S]

CLI trials kill `sync-pipeline run`; dev trials kill scheduled runs under `sync-pipeline dev` (the Dagster
daemon), where the close_dead_runs_sensor must close the dead run. One in-process sandbox serves every
vendor to every child. Results: bench/results/reliability_<date>.json and .md. Exit code 1 when any
trial saw a duplicate, a loss, a hang or a failed run.
"""

from __future__ import annotations

import argparse
import random
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path

import processes
from checks import verify
from cli_trials import TRIGGERS, CliTrials
from dev_trials import DevSession
from report import failed, machine, markdown, today, write_results
from sources import SourceChanger
from triggers import Calibration, WriteTrigger
from workspace import CONNECTIONS, REPO, dev_crons, open_workspace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=50, help="CLI trials per connection (default 50)")
    p.add_argument("--dev-trials", type=int, default=5, help="trials per connection under dagster dev (default 5)")
    p.add_argument("--connection", action="append", choices=CONNECTIONS, help="only this connection (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock; printed)")
    p.add_argument("--trigger", action="append", choices=list(TRIGGERS),
                   help="only these ways of choosing the kill moment (repeatable; default: all, mixed)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a clean CLI run may take before it is a hang")
    p.add_argument("--dev-reboots", type=int, default=1,
                   help="of the dev trials, how many per connection (the last ones; never all of them) SIGKILL all "
                        "of dagster dev mid-run and start it again, like a reboot (default 1)")
    p.add_argument("--dev-every", type=int, default=2,
                   help="under dagster dev each connection is scheduled every N minutes, the connections one "
                        "minute apart (default 2: a scheduled run takes about a minute of the DuckDB pool here)")
    p.add_argument("--dev-cron", default=None, help='one cron for every connection under dagster dev, e.g. "* * * * *"')
    p.add_argument("--dev-timeout", type=float, default=420.0,
                   help="seconds a scheduled run may take to start or finish under dagster dev before it is a hang")
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where the results go")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, warehouse, instances)")
    return p


def _line(t: dict) -> str:
    verdict = "FAIL" if failed(t) else "ok"
    killed = f"killed in {t['phase']}" if t["killed"] else "finished before the kill"
    extra = ""
    if t["mode"] == "dev" and t.get("dead_run_closed_s") is not None:
        extra = f", marked failed after {t['dead_run_closed_s']:.0f} s by {t.get('closed_by')}"
    return (f"{t['mode']} {t['connection']} #{t['trial']}: {t['trigger']} kill at {t['kill_delay_s']:.2f} s, "
            f"{killed}{extra}; {verdict} ({t['seconds']:.0f} s)")


def _baseline(cli: CliTrials, connections: list[str], say) -> None:
    """The first (full) load of each connection, then one incremental clean run to calibrate the timings."""
    for connection in connections:
        for label in ("initial", "calibrate"):
            if label == "calibrate":
                cli.changer.change(connection)
            run = cli.clean_run(connection, f"{label}-{connection}")
            if run.rc != 0:
                raise RuntimeError(f"{connection}: the {label} clean run failed (exit {run.rc}): {run.stderr_tail}")
            found = verify(cli.ws.sandbox, connection, cli.ws.warehouse)
            if found["duplicates"] or found["missing"]:
                raise RuntimeError(f"{connection}: the {label} clean run already leaves the target wrong: {found}")
            say(f"{label} {connection}: clean run in {run.seconds:.1f} s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: children are killed, results written


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    connections = args.connection or list(CONNECTIONS)
    rng = random.Random(seed)
    if args.trigger:  # the shares of the others drop to 0
        for name in TRIGGERS:
            TRIGGERS[name] = TRIGGERS[name] if name in args.trigger else 0.0
    command = shlex.join([".venv/bin/python", "bench/reliability/crash_trials.py", "--trials", str(args.trials),
                          "--dev-trials", str(args.dev_trials), "--dev-reboots", str(args.dev_reboots),
                          "--seed", str(seed),
                          *(["--dev-cron", args.dev_cron] if args.dev_cron else ["--dev-every", str(args.dev_every)]),
                          *[f"--connection={c}" for c in args.connection or ()],
                          *[f"--trigger={t}" for t in args.trigger or ()]])

    def say(line: str) -> None:
        print(line, flush=True)

    say(f"crash trials: {args.trials} CLI + {args.dev_trials} dev per connection, seed {seed}")
    started = time.monotonic()
    trials: list[dict] = []
    errors: list[str] = []
    schedules = dev_crons(args.dev_every, args.dev_cron, connections)
    ws = open_workspace(seed=seed, dev_schedules=schedules)
    say(f"sandbox at {ws.sandbox.url}; work in {ws.root}")
    changer = SourceChanger(ws.sandbox, rng)
    cal = Calibration()
    trigger = WriteTrigger(ws.sandbox)
    try:
        cli = CliTrials(ws, rng, changer, trigger, cal, timeout=args.timeout, say=say)
        _baseline(cli, connections, say)
        for n in range(1, args.trials + 1):
            for connection in connections:
                trials.append(cli.trial(connection, n))
                say(_line(trials[-1]))
        if args.dev_trials:
            reboots = min(args.dev_reboots, args.dev_trials - 1)
            with DevSession(ws, cal, schedules=schedules, timeout=args.dev_timeout, say=say, line_of=_line) as dev:
                trials += dev.run_trials(connections, args.dev_trials - reboots, reboots, seed, trigger)
            if dev.leftovers:
                errors.append(f"dagster processes left after stopping dagster dev: {dev.leftovers}")
    except KeyboardInterrupt:
        errors.append("interrupted")
    except Exception:  # noqa: BLE001 - keep what was measured, say what broke
        errors.append(traceback.format_exc())
        say(errors[-1])
    finally:
        processes.kill_all()
        processes.kill_pids(processes.with_environment("DAGSTER_HOME", f"{ws.root}/"))
        changer.close()
        ws.close(keep=args.keep)
    make = f"make reliability TRIALS={args.trials} DEV_TRIALS={args.dev_trials} SEED={seed}"
    result = {"date": today(), "seed": seed, "command": command, "make": make, "machine": machine(),
              "dev_schedules": schedules,
              "elapsed_s": round(time.monotonic() - started, 1), "calibration": cal.as_dict(),
              "harness_errors": errors, "trials": trials}
    json_path, md_path = write_results(result, args.results)
    say("")
    say(markdown(result))
    say(f"results: {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path}, {md_path.name}")
    return 1 if errors or any(failed(t) for t in trials) else 0


if __name__ == "__main__":
    sys.exit(main())

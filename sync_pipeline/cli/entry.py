"""`sync-pipeline`: run the configured connections, serve the sandbox, start the UI.

The argparse entry: each command here only opens what it needs and prints; the work is in the modules of
this package (run, status, accounts, unmatched) and of the rest of the product. Heavy imports (Dagster)
happen inside the commands, so `sync-pipeline --help` answers at once."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from datetime import date
from pathlib import Path

from sync_pipeline.config import ConfigError, default_config_path


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None,
                   help="path to sync.yaml (default: $SYNC_PIPELINE_CONFIG or ./sync.yaml)")


def _cmd_run(args: argparse.Namespace) -> int:
    from sync_pipeline.cli.local import ensure_dagster_home, sandbox_if_configured
    from sync_pipeline.cli.run import render_text, run_connections, summarize

    config_path = (args.config or default_config_path()).resolve()
    ensure_dagster_home(config_path.parent)
    with sandbox_if_configured(config_path) as sandbox:
        runs = run_connections(config_path, connections=args.connection or None,
                               dry_run=True if args.dry_run else None, as_of=args.as_of,
                               log_level="INFO" if args.verbose else "CRITICAL")
        summary = summarize(runs, config_path)
        if sandbox is not None:
            summary["sandbox"] = {"url": sandbox.url, "holds": sandbox.target_counts(),
                                  "described": sandbox.describe_counts()}
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        if sandbox is not None:
            print(f"sandbox: vendor simulators served at {sandbox.url} for this run")
        print(render_text(summary))
        if sandbox is not None:
            print(f"sandbox (stopped): {summary['sandbox']['described']}")
    if any(r.interrupted for r in runs):
        return 130
    return 0 if summary["ok"] else 1


def _warehouse_readonly(config_path: Path):
    from sync_pipeline.config import load_settings
    from sync_pipeline.warehouse.db import connect

    settings = load_settings(config_path, strict=False)
    if not settings.warehouse_path.exists():
        return None
    return connect(settings.warehouse_path, read_only=True)


def _cmd_unmatched(args: argparse.Namespace) -> int:
    from sync_pipeline.cli.unmatched import list_unmatched, render

    config_path = (args.config or default_config_path()).resolve()
    opened = _warehouse_readonly(config_path)
    if opened is None:
        print("no staging yet: run `sync-pipeline run` first", file=sys.stderr)
        return 1
    import duckdb

    try:
        with opened as conn:
            rows = list_unmatched(conn)
    except duckdb.CatalogException:
        print("no unmatched-accounts report yet: run `sync-pipeline run` first", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2, default=str) if args.json else render(rows))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    import dagster as dg

    from sync_pipeline.cli.local import ensure_dagster_home
    from sync_pipeline.cli.status import connection_status, render, render_systems, system_statuses
    from sync_pipeline.config import load_settings
    from sync_pipeline.dead_runs import close_dead_runs

    config_path = (args.config or default_config_path()).resolve()
    ensure_dagster_home(config_path.parent)
    instance = dg.DagsterInstance.get()
    close_dead_runs(instance, say=lambda line: print(line, file=sys.stderr))  # never show a dead run as Running
    statuses = connection_status(instance, load_settings(config_path, strict=False))
    systems = None if args.no_systems else system_statuses(config_path)
    if args.json:
        out = {"connections": statuses, **({"systems": [s.as_dict() for s in systems]} if systems is not None else {})}
        print(json.dumps(out, indent=2, default=str))
    else:
        print(render(statuses) + (f"\n{render_systems(systems)}" if systems is not None else ""))
    return 1 if args.check and systems and not all(s.ok for s in systems) else 0


def _cmd_recover(args: argparse.Namespace) -> int:
    """Close runs whose process died (and, with --run, named runs whatever their state) so they free their pool slots."""
    import dagster as dg

    from sync_pipeline.cli.local import ensure_dagster_home
    from sync_pipeline.dead_runs import close_dead_runs, force_close

    config_path = (args.config or default_config_path()).resolve()
    ensure_dagster_home(config_path.parent)
    instance = dg.DagsterInstance.get()
    closed = close_dead_runs(instance, say=print)
    for run_id in args.run or ():
        print(f"sync-pipeline: {force_close(instance, run_id)}")
    if not closed and not args.run:
        print("no dead run: every unfinished run has a live process")
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from sync_pipeline.sandbox.server import serve

    return serve(args)


def _cmd_dev(args: argparse.Namespace) -> int:
    """The sandbox (when configured) and the Dagster UI on the same configuration."""
    from sync_pipeline.cli.local import ensure_dagster_home, sandbox_if_configured

    config_path = (args.config or default_config_path()).resolve()
    ensure_dagster_home(config_path.parent)
    os.environ["SYNC_PIPELINE_CONFIG"] = str(config_path)
    import dagster as dg

    from sync_pipeline.dead_runs import close_dead_runs

    close_dead_runs(dg.DagsterInstance.get(), say=print)
    with sandbox_if_configured(config_path) as sandbox:
        if sandbox is not None:
            print(f"sandbox serving at {sandbox.url}", flush=True)
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(config_path.parent / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
        # its own process group: on Ctrl-C or SIGTERM we stop `dagster dev` with its webserver and daemon, then
        # leave the sandbox's block, which saves its state
        proc = subprocess.Popen(cmd, cwd=config_path.parent, start_new_session=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            _stop_group(proc)
            return 0


def _stop_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a process group as Ctrl-C would (SIGINT), then SIGTERM, then SIGKILL, each after a grace period;
    every process of the group is gone when this returns."""
    for signum, wait_for in ((signal.SIGINT, grace), (signal.SIGTERM, grace / 2), (signal.SIGKILL, grace / 2)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_for
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)  # anyone of the group left?
            except ProcessLookupError:
                proc.wait()
                return
            proc.poll()  # reap the leader, so a finished leader does not keep the group alive as a zombie
            time.sleep(0.2)
    proc.wait()


def _cmd_accounts(args: argparse.Namespace) -> int:
    """Accounts by invoice status from the warehouse (read-only: no secrets, no writes)."""
    import duckdb

    from sync_pipeline.cli.accounts import (
        NoMetrics,
        list_accounts,
        render_table,
        to_json,
    )
    from sync_pipeline.config import load_settings
    from sync_pipeline.warehouse.db import connect

    settings = load_settings((args.config or default_config_path()).resolve(), strict=False)
    path = settings.warehouse_path
    if not path.exists():
        print(f"no metrics yet: run `sync-pipeline run` first (no warehouse at {path})", file=sys.stderr)
        return 1
    try:
        with connect(path, read_only=True) as conn:
            result = list_accounts(conn, bands=args.band or None, sort=args.sort, limit=args.limit)
    except NoMetrics as exc:
        print(exc, file=sys.stderr)
        return 1
    except duckdb.IOException as exc:
        print(f"cannot open the warehouse {path} read-only (in use by a run?): {exc}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(result), indent=2) if args.json else render_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sync-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run every configured connection once (or --connection NAME)")
    _config_arg(run)
    run.add_argument("--connection", action="append", metavar="NAME", help="only this connection (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="compute and record the plan; write nothing to targets")
    run.add_argument("--json", action="store_true", help="print one machine-readable summary")
    run.add_argument("--verbose", action="store_true", help="show Dagster's step log on the console")
    run.add_argument("--as-of", type=date.fromisoformat, default=None, help="metrics date (default: today, UTC)")
    run.set_defaults(func=_cmd_run)

    unmatched = sub.add_parser("unmatched", help="source customers that are not synced, and why")
    _config_arg(unmatched)
    unmatched.add_argument("--json", action="store_true")
    unmatched.set_defaults(func=_cmd_unmatched)

    status = sub.add_parser("status", help="per connection, the last run: result, when, how long, counts, first error; "
                                           "per system, a live connection check")
    _config_arg(status)
    status.add_argument("--json", action="store_true")
    status.add_argument("--check", action="store_true",
                        help="exit with 1 when a system's connection check fails (for monitoring)")
    status.add_argument("--no-systems", action="store_true",
                        help="only the run log: no connection check (no API call)")
    status.set_defaults(func=_cmd_status)

    from sync_pipeline.sandbox.options import add_sandbox_arguments

    recover = sub.add_parser("recover", help="close runs whose process died, so they free their pool slots "
                                             "(done automatically before every run; --run closes a run by hand)")
    _config_arg(recover)
    recover.add_argument("--run", action="append", metavar="RUN_ID",
                         help="also mark this unfinished run failed and free its slots, alive or not (repeatable)")
    recover.set_defaults(func=_cmd_recover)

    sandbox = sub.add_parser("sandbox", help="serve the vendor simulators with demo data")
    add_sandbox_arguments(sandbox)  # the same declaration as `python -m sync_pipeline.sandbox.server`
    sandbox.set_defaults(func=_cmd_sandbox)

    dev = sub.add_parser("dev", help="the sandbox plus the Dagster UI")
    _config_arg(dev)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_cmd_dev)

    from sync_pipeline.cli.accounts import BANDS, DEFAULT_LIMIT, DEFAULT_SORT, SORTS

    def _limit(text: str) -> int:
        n = int(text)
        if n < 0:
            raise argparse.ArgumentTypeError("must be 0 (all) or more")
        return n

    accounts = sub.add_parser("accounts", help="accounts by invoice status, worst first (reads the warehouse)")
    _config_arg(accounts)
    accounts.add_argument("--band", action="append", choices=BANDS, help="only this health band (repeatable)")
    accounts.add_argument("--sort", choices=list(SORTS), default=DEFAULT_SORT,
                          help=f"order (default {DEFAULT_SORT}; amounts and counts descending, score worst "
                               "first, name A-Z; ties by account id)")
    accounts.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, metavar="N",
                          help=f"at most N accounts (default {DEFAULT_LIMIT}; 0 = all)")
    accounts.add_argument("--json", action="store_true", help="print one machine-readable object")
    accounts.set_defaults(func=_cmd_accounts)

    from sync_pipeline.cli.users import add_users_parser

    add_users_parser(sub, _config_arg)

    from sync_pipeline.cli.backfill import add_backfill_parser

    add_backfill_parser(sub, _config_arg)

    from sync_pipeline.cli.sync_record import add_sync_record_parser

    add_sync_record_parser(sub, _config_arg)
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (systemd, docker stop, kill) unwinds like Ctrl-C: the sandbox saves its state, a run
    # gives its pool slot back. Dagster maps SIGTERM to its own handler while it executes a run.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=r".*is currently in beta")  # backfill_policy: noise for users
    # The console shows our summary; Dagster's step log and retry warnings only with --verbose.
    quiet = args.command == "run" and not args.verbose
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sync-pipeline: interrupted", file=sys.stderr)
        return 130

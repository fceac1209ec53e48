"""`sync-pipeline backfill CONNECTION [--from YYYY-MM] [--to YYYY-MM] [--restart] [--json]`: the historical sync
of a connection, one Dagster run per month, resumed where it stopped (the work is in cli/backfill_run.py, imported
when the command runs, so `sync-pipeline --help` stays quick)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from sync_pipeline.config import default_config_path


def add_backfill_parser(sub: Any, config_arg: Callable[[Any], None]) -> None:
    """Register the `backfill` command on the subparsers of `sync-pipeline` (`config_arg` adds --config)."""
    p = sub.add_parser("backfill", help="historical sync: a connection's invoice history month by month, each month "
                                        "loaded (clients, then deals); resumes where it stopped")
    p.add_argument("connection", metavar="CONNECTION", help="a connection of sync.yaml")
    p.add_argument("--from", dest="month_from", metavar="YYYY-MM",
                   help="first month (default: the month of the connection's history_start)")
    p.add_argument("--to", dest="month_to", metavar="YYYY-MM", help="last month (default: the current month, UTC)")
    p.add_argument("--restart", action="store_true",
                   help="start this range over: every month runs again, not only the missing ones")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary (progress goes to stderr)")
    p.add_argument("--verbose", action="store_true", help="show Dagster's step log on the console")
    config_arg(p)
    p.set_defaults(func=_cmd_backfill)


def _cmd_backfill(args: Any) -> int:
    import logging

    from sync_pipeline.cli.backfill_run import BackfillError, current_month, month_keys, run_backfill
    from sync_pipeline.cli.local import ensure_dagster_home, sandbox_if_configured
    from sync_pipeline.config import load_settings

    if not args.verbose:  # the console shows the month lines; Dagster's step log and retries only with --verbose
        logging.getLogger().setLevel(logging.ERROR)
    config_path = (args.config or default_config_path()).resolve()
    structure = load_settings(config_path, strict=False)
    structure.connection_named(args.connection)
    try:  # before any sandbox starts or secret is resolved
        month_keys(structure, args.connection, args.month_from, args.month_to, current_month())
    except BackfillError as exc:
        print(f"sync-pipeline backfill: {exc}", file=sys.stderr)
        return 2
    ensure_dagster_home(config_path.parent)
    say = _stderr_line if args.json else (lambda line: print(line, flush=True))
    with sandbox_if_configured(config_path):
        try:
            result = run_backfill(config_path, args.connection, month_from=args.month_from, month_to=args.month_to,
                                  restart=args.restart, log_level="INFO" if args.verbose else "CRITICAL", say=say)
        except BackfillError as exc:
            print(f"sync-pipeline backfill: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result.summary(), indent=2, default=str))
    if result.interrupted:
        return 130
    return 0 if result.ok else 1


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

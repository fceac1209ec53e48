"""The historical sync of a connection (`sync-pipeline backfill`, cli/backfill.py), month by month.

Each month of the range is one Dagster run of `<connection>_backfill_job` (defs/backfill.py), executed in this
process with the month as its partition: the month's invoices land in `<source>/invoice_history` (a partition
materialization with that month's counts), then staging, metrics and the loads create its clients and deals.
No daemon is needed: a backfill record (`instance.add_backfill`) would wait for the daemon to launch its runs,
and runs tagged `dagster/backfill` without such a record vanish from the UI's run list, which shows backfills
through their records. The runs carry `sync/backfill=<id>` instead, to filter on in the UI.

Progress is the Dagster instance's own: a month is done when its run of this backfill succeeded (its history
partition and its loads, together). The backfill's id is kept in the instance's key-value store under the
connection and the range, so the same command again resumes with the months that have no successful run;
`--restart` takes a new id and runs every month again (idempotent: a month replaces its window, the ledger
keeps every deal to one).
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.utils import make_new_run_id

from sync_pipeline.cli.report import asset_metadata, first_error, load_counts, was_interrupted
from sync_pipeline.cli.run_watch import RunWatch
from sync_pipeline.config import ConfigError, Settings, load_settings
from sync_pipeline.connectors.registry import target_entities
from sync_pipeline.dead_runs import close_dead_runs, worker_tags
from sync_pipeline.defs.backfill import backfill_job_name, history_key
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.defs.resources import run_options_config
from sync_pipeline.defs.schedules import UNFINISHED as _UNFINISHED
from sync_pipeline.load.apply import COUNTS

BACKFILL_TAG = "sync/backfill"
RANGE_TAG = "sync/backfill_range"
PARTITION_TAG = "dagster/partition"
_KV_PREFIX = "sync_pipeline/backfill"
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class BackfillError(ValueError):
    """The backfill cannot start: a bad month range, or the same backfill running already (the CLI exits 2)."""


def _month(text: str, flag: str) -> date:
    m = _MONTH.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise BackfillError(f"{flag} {text!r}: expected a month as YYYY-MM, e.g. 2023-01")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_keys(settings: Settings, connection: str, month_from: str | None, month_to: str | None,
               last_partition: str) -> list[str]:
    """The history partition keys (YYYY-MM-01) of the range, checked: YYYY-MM, from <= to, not before the
    connection's history_start, not after the current month (the last partition). Defaults: history_start's
    month to the current month."""
    conn = settings.connections[connection]
    first = conn.history_start.replace(day=1)
    last = date.fromisoformat(last_partition)
    start = _month(month_from, "--from") if month_from else first
    end = _month(month_to, "--to") if month_to else last
    if start > end:
        raise BackfillError(f"--from {start:%Y-%m} is after --to {end:%Y-%m}")
    if start < first:
        raise BackfillError(f"--from {start:%Y-%m} is before the history_start of connection {connection} "
                            f"({conn.history_start.isoformat()} in {settings.path}): the first month it can "
                            f"backfill is {first:%Y-%m}")
    if end > last:
        raise BackfillError(f"--to {end:%Y-%m} is after the current month {last:%Y-%m} (UTC): there are no "
                            "invoices to backfill there yet")
    keys = []
    month = start
    while month <= end:
        keys.append(month.isoformat())
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return keys


@dataclass
class MonthResult:
    month: str                         # YYYY-MM
    status: str                        # done | done_before | failed | interrupted | pending
    run_id: str | None = None
    seconds: float | None = None
    invoices_landed: int = 0
    loads: dict[str, dict[str, int]] = field(default_factory=dict)  # entity → created, updated, …
    error: str | None = None


@dataclass
class BackfillResult:
    connection: str
    backfill_id: str
    month_from: str
    month_to: str
    resumed: bool
    restarted: bool
    months: list[MonthResult]
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return any(m.status == "interrupted" for m in self.months)

    @property
    def ok(self) -> bool:
        return all(m.status in ("done", "done_before") for m in self.months)

    def summary(self) -> dict[str, Any]:
        ran = [m for m in self.months if m.status == "done"]
        entities = list(dict.fromkeys(e for m in self.months for e in m.loads))
        failed = next((m for m in self.months if m.status in ("failed", "interrupted")), None)
        return {
            "ok": self.ok, "connection": self.connection, "backfill_id": self.backfill_id,
            "from": self.month_from, "to": self.month_to, "resumed": self.resumed, "restarted": self.restarted,
            "months_total": len(self.months),
            "months_done_before": sum(m.status == "done_before" for m in self.months),
            "months_run": len(ran),
            "months_pending": sum(m.status in ("pending", "failed", "interrupted") for m in self.months),
            "seconds": self.seconds,
            # what this command did (the months done before are in `months`, with the counts of their runs)
            "invoices_landed": sum(m.invoices_landed for m in ran),
            "loads": {e: {k: sum(m.loads.get(e, {}).get(k, 0) for m in ran) for k in COUNTS} for e in entities},
            "failed_month": failed.month if failed else None,
            "error": failed.error if failed else None,
            "months": [asdict(m) for m in self.months],
        }


def _kv_key(connection: str, keys: list[str]) -> str:
    return f"{_KV_PREFIX}/{connection}/{keys[0][:7]}..{keys[-1][:7]}"


def _backfill_id(instance: dg.DagsterInstance, kv_key: str, restart: bool) -> tuple[str, bool]:
    """(id, whether it continues an earlier backfill of the same range)."""
    storage = instance.daemon_cursor_storage
    stored = storage.get_cursor_values({kv_key}).get(kv_key)
    if stored and not restart:
        return json.loads(stored)["id"], True
    backfill_id = secrets.token_hex(4)
    storage.set_cursor_values({kv_key: json.dumps({"id": backfill_id,
                                                   "created_at": datetime.now(timezone.utc).isoformat()})})
    return backfill_id, False


def _month_result(month_key: str, events, connection: str, source: str, entities: list[str], **kw) -> MonthResult:
    m = asset_metadata(events)
    history = m.get(history_key(source).to_user_string(), {})
    return MonthResult(month=month_key[:7], invoices_landed=int(history.get("records_landed") or 0),
                       loads={e: load_counts(m.get(f"{connection}/{e}")) for e in entities}, **kw)


def _done_before(instance: dg.DagsterInstance, backfill_id: str, connection: str, source: str,
                 entities: list[str]) -> dict[str, MonthResult]:
    """The months of this backfill whose run succeeded, with the counts of that run."""
    done: dict[str, MonthResult] = {}
    records = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id},
                                                     statuses=[dg.DagsterRunStatus.SUCCESS]))
    kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION}
    for record in records:
        key = record.dagster_run.tags.get(PARTITION_TAG)
        if not key or key in done:
            continue
        events = [r.dagster_event for r in instance.all_logs(record.dagster_run.run_id, of_type=kinds)]
        seconds = (round(record.end_time - record.start_time, 2)
                   if record.end_time and record.start_time else None)
        done[key] = _month_result(key, events, connection, source, entities, status="done_before",
                                  run_id=record.dagster_run.run_id, seconds=seconds)
    return done


@dataclass
class _Ran:
    events: list
    status: str
    run_id: str
    seconds: float
    error: str | None


def _run_month(job, key: str, *, instance: dg.DagsterInstance, run_config: dict, tags: dict[str, str],
               notice: Callable[[str], None]) -> _Ran:
    run_id = make_new_run_id()
    started = time.monotonic()
    try:
        with RunWatch(instance, run_id, say=notice) as watch:
            run = job.execute_in_process(instance=instance, run_config=run_config, partition_key=key,
                                         raise_on_error=False, run_id=run_id, tags=tags)
    except KeyboardInterrupt:  # past Dagster's own handling; a run left open is closed as dead by the next command
        return _Ran([], "interrupted", run_id, round(time.monotonic() - started, 2),
                    "stopped by an interrupt (Ctrl-C or SIGTERM)")
    events = run.all_events
    if run.success:
        status = "done"
    else:
        status = "interrupted" if watch.interrupted or was_interrupted(events) else "failed"
    return _Ran(events, status, run_id, round(time.monotonic() - started, 2),
                None if run.success else first_error(events) or "the run failed")


def _counts(entity: str, c: dict[str, int]) -> str:
    rare = "".join(f", {c[k]} {k}" for k in ("adopted", "failed", "blocked", "unknown") if c.get(k))
    return f"{entity}: {c.get('created', 0)} created, {c.get('updated', 0)} updated{rare}"


def month_line(m: MonthResult) -> str:
    """`2024-03  6 invoices landed; clients: 2 created, 0 updated; deals: 5 created, 0 updated; 1.9 s`: the last
    entity (the one the invoices become: deals, CSB invoices) always, the others when they did something."""
    took = f"{m.seconds:.1f} s" if m.seconds is not None else "-"
    if m.status == "failed":
        return f"{m.month}  FAILED after {took}: {m.error}"
    if m.status == "interrupted":
        return f"{m.month}  STOPPED after {took}: {m.error}"
    shown = [e for i, (e, c) in enumerate(m.loads.items())
             if i == len(m.loads) - 1 or any(v for k, v in c.items() if k != "unchanged")]
    loads = "".join(f"; {_counts(e, m.loads[e])}" for e in shown)
    return f"{m.month}  {m.invoices_landed} invoices landed{loads}; {took}"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_backfill(config_path: Path | str, connection: str, *, month_from: str | None = None,
                 month_to: str | None = None, restart: bool = False, instance: dg.DagsterInstance | None = None,
                 log_level: str = "CRITICAL", say: Callable[[str], None] = print,
                 notice: Callable[[str], None] = _stderr) -> BackfillResult:
    """Run the missing months of the connection's backfill over the range, one run per month, oldest first;
    stop at the first month that fails or is interrupted. `say` gets the progress lines (one per month),
    `notice` the lines about other runs (dead ones closed, a pool slot awaited)."""
    settings = load_settings(config_path)  # strict: a missing secret fails here, before any run starts
    if connection not in settings.connections:
        raise ConfigError(f"{settings.path}: no connection named {connection} "
                          f"(have: {', '.join(settings.connections)})")
    conn = settings.connections[connection]
    defs = build_definitions(config_path)
    job = defs.resolve_job_def(backfill_job_name(connection))
    keys = month_keys(settings, connection, month_from, month_to, job.partitions_def.get_last_partition_key())
    entities = [e.name for e in target_entities(settings.systems[conn.target].type)]
    instance = instance or dg.DagsterInstance.get()
    close_dead_runs(instance, say=notice)  # a month killed last time is then failed, so it runs again

    started = time.monotonic()
    backfill_id, resumed = _backfill_id(instance, _kv_key(connection, keys), restart)
    busy = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}, statuses=_UNFINISHED), limit=1)
    if busy:
        raise BackfillError(f"backfill {backfill_id} of {connection} ({keys[0][:7]} .. {keys[-1][:7]}) is running "
                            f"already: run {busy[0].dagster_run.run_id[:8]}, month "
                            f"{busy[0].dagster_run.tags.get(PARTITION_TAG, '?')[:7]}")
    done = _done_before(instance, backfill_id, connection, conn.source, entities) if resumed else {}
    months = [done.get(k) or MonthResult(month=k[:7], status="pending") for k in keys]
    result = BackfillResult(connection, backfill_id, keys[0][:7], keys[-1][:7], resumed, restart, months)
    todo = [k for k in keys if k not in done]
    span = f"{keys[0][:7]} .. {keys[-1][:7]}"
    if not todo:
        say(f"backfill {backfill_id} of {connection} ({span}): all {len(keys)} months are done already "
            "(--restart runs them again)")
    elif done:
        say(f"backfill {backfill_id} of {connection} ({span}): resuming; {len(done)} of {len(keys)} months done "
            f"before, running the {len(todo)} missing ({todo[0][:7]} .. {todo[-1][:7]})")
    else:
        say(f"backfill {backfill_id} of {connection} ({span}): {len(keys)} months, one run each "
            f"({history_key(conn.source).to_user_string()}, then {', '.join(entities)}); "
            f"filter the UI's runs by tag {BACKFILL_TAG}={backfill_id}")

    run_config: dict[str, Any] = run_options_config()
    run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}  # the event log keeps everything
    tags = {"sync/connection": connection, "sync/trigger": "cli", BACKFILL_TAG: backfill_id,
            RANGE_TAG: f"{keys[0][:7]}..{keys[-1][:7]}", **worker_tags()}
    by_key = {k: i for i, k in enumerate(keys)}
    for key in todo:
        ran = _run_month(job, key, instance=instance, run_config=run_config, tags=tags, notice=notice)
        month = _month_result(key, ran.events, connection, conn.source, entities, status=ran.status,
                              run_id=ran.run_id, seconds=ran.seconds, error=ran.error)
        months[by_key[key]] = month
        say(month_line(month))
        if month.status != "done":
            missing = sum(m.status not in ("done", "done_before") for m in months)
            say(f"backfill {backfill_id}: month {month.month} "
                f"{'was stopped' if month.status == 'interrupted' else 'failed'}; {missing} of {len(keys)} months "
                "are missing. The same command resumes with them.")
            break
    result.seconds = round(time.monotonic() - started, 2)
    if result.ok and todo:
        s = result.summary()
        loads = "; ".join(_counts(e, c) for e, c in s["loads"].items())
        say(f"backfill {backfill_id}: {len(keys)} of {len(keys)} months done ({len(todo)} now, in "
            f"{result.seconds:.1f} s): {s['invoices_landed']} invoices landed; {loads}")
    return result


def current_month() -> str:
    """The last history partition: the current month in UTC (the partitions end one month ahead of the last
    complete one)."""
    return datetime.now(timezone.utc).date().replace(day=1).isoformat()


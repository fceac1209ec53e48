"""Run connections once, in process, on a Dagster instance, and gather what they did.

The summary is read from the runs' own materialization metadata, so the CLI says exactly what the
Dagster UI shows for the same runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.utils import make_new_run_id

from sync_pipeline.cli.report import (
    asset_metadata,
    counts_line,
    first_error,
    load_counts,
    two_way_counts,
    two_way_line,
    was_interrupted,
)
from sync_pipeline.cli.run_watch import RunWatch
from sync_pipeline.config import ConfigError, load_settings
from sync_pipeline.connectors.registry import connector_for, source_of, target_entities
from sync_pipeline.dead_runs import close_dead_runs, worker_tags
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.defs.resources import DRY_RUN_TAG, run_options_config
from sync_pipeline.defs.schedules import job_name


@dataclass
class ConnectionRun:
    connection: str
    run_id: str
    success: bool
    duration_seconds: float
    error: str | None
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset key → metadata values
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM


def _entities(settings, connection: str) -> list[str]:
    target = settings.systems[settings.connections[connection].target]
    return [e.name for e in target_entities(target.type)]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_connections(config_path: Path | str, *, connections: list[str] | None = None, dry_run: bool | None = None,
                    as_of: date | None = None, instance: dg.DagsterInstance | None = None,
                    log_level: str = "WARNING", notice: Callable[[str], None] = _stderr) -> list[ConnectionRun]:
    """Run each connection once, in this process. Runs that died earlier are closed first, so their
    pool slots cannot block these; `notice` gets one line for each such run and for each wait."""
    settings = load_settings(config_path)  # strict: a missing secret fails here, before any run starts
    names = connections or list(settings.connections)
    unknown = [n for n in names if n not in settings.connections]
    if unknown:
        raise ConfigError(f"{settings.path}: no connection named {', '.join(unknown)} (have: {', '.join(settings.connections)})")
    defs = build_definitions(config_path)
    instance = instance or dg.DagsterInstance.get()
    close_dead_runs(instance, say=notice)
    runs = []
    for name in names:
        run_config: dict[str, Any] = run_options_config(as_of=as_of, dry_run=dry_run)
        run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}  # the event log keeps everything
        started = time.monotonic()
        run_id = make_new_run_id()
        with RunWatch(instance, run_id, say=notice) as watch:
            result = defs.resolve_job_def(job_name(name)).execute_in_process(
                instance=instance, run_config=run_config, raise_on_error=False, run_id=run_id,
                tags={"sync/connection": name, "sync/trigger": "cli", **worker_tags(),
                      **({DRY_RUN_TAG: "true"} if dry_run else {})},
            )
        events = result.all_events
        error = None if result.success else f"connection {name}: {first_error(events)}"
        run = ConnectionRun(name, result.run_id, result.success, round(time.monotonic() - started, 2), error,
                            materializations=asset_metadata(events),
                            interrupted=watch.interrupted or was_interrupted(events))
        runs.append(run)
        if run.interrupted:
            break  # the person asked to stop: do not start the next connection
    return runs


def summarize(runs: list[ConnectionRun], config_path: Path | str) -> dict[str, Any]:
    """One machine-readable summary: per system extracted/staged/quarantined, per connection and
    entity created/updated/unchanged/failed."""
    settings = load_settings(config_path, strict=False)
    systems: dict[str, Any] = {}
    unmatched = 0
    connections: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for run in runs:
        m = run.materializations
        conn = settings.connections[run.connection]
        entities = _entities(settings, run.connection)
        src = conn.source
        # a target fed from the source's sides (Invoice2go) stages nothing: its counts are its loads'
        staged = not connector_for(settings.systems[conn.target].type).side_sourced
        sys_entry = systems.setdefault(src, {}) if staged else {}
        # some streams (Zoho's credit notes) are extracted on their own but staged as invoices
        source = source_of(settings.systems[src].type) if staged else None
        for entity in ("clients", "invoices") if staged else ():
            assets = [f"{src}/{stream.asset}" for stream in source.streams_staged_as(entity)]
            extracted = sum(m.get(a, {}).get("records_received") or 0 for a in assets)
            pages = sum(m.get(a, {}).get("pages_requested") or 0 for a in assets)
            counts = (m.get("staging/accounts") if entity == "clients" else m.get("staging/invoices")) or {}
            per = (counts.get("per_system") or {}).get(src, {}).get(entity, {})
            entry = sys_entry.setdefault(entity, {"extracted": 0, "pages": 0})
            entry["extracted"] += extracted
            entry["pages"] += pages
            if per:
                entry.update(records_in=per["records_in"], staged=per["staged"], quarantined=per["quarantined"])
        connections[run.connection] = {
            "run_id": run.run_id,
            "status": "success" if run.success else "interrupted" if run.interrupted else "failure",
            "duration_seconds": run.duration_seconds,
            "error": run.error,
            "target": conn.target,
            "dry_run": any(m.get(f"{run.connection}/{e}", {}).get("dry_run", conn.dry_run) for e in entities),
            **{entity: {**load_counts(m.get(f"{run.connection}/{entity}")),
                        "examples": m.get(f"{run.connection}/{entity}", {}).get("plan_examples") or {},
                        **two_way_counts(m.get(f"{run.connection}/{entity}"))}
               for entity in entities},
        }
        unmatched = m.get("staging/unmatched_accounts", {}).get("dagster/row_count")
        quarantine = m.get("staging/quarantine", {})
        if quarantine.get("examples"):
            systems.setdefault("_quarantine_examples", quarantine["examples"])
        if "metrics/account_metrics" in m:
            mm = m["metrics/account_metrics"]
            metrics = {k: mm.get(k) for k in ("as_of", "accounts", "accounts_overdue", "overdue_invoices", "by_currency",
                                              "reporting_currency", "missing_fx_rates")}
            health = m.get("metrics/financial_health", {})
            metrics["bands"] = {b: health.get(f"band_{b}", 0) for b in ("healthy", "at_risk", "critical", "unknown")}
            alerts = m.get("metrics/risk_alerts", {})
            metrics["alerts"] = {k: alerts.get(k, 0) for k in ("opened", "open", "resolved")}
    examples = systems.pop("_quarantine_examples", [])
    return {"ok": all(r.success for r in runs), "systems": systems, "connections": connections, "metrics": metrics,
            "quarantine_examples": examples, "unmatched": unmatched if runs else 0}


def render_text(summary: dict[str, Any]) -> str:
    lines = []
    for name, c in summary["connections"].items():
        status = {"success": "OK", "interrupted": "STOPPED"}.get(c["status"], "FAILED")
        lines.append(f"{name}: {status} in {c['duration_seconds']:.1f} s (run {c['run_id'][:8]})"
                     + ("  [dry run: nothing written]" if c["dry_run"] else ""))
        if c["error"]:
            lines.append(f"  error: {c['error']}")
        for entity in [k for k, v in c.items() if isinstance(v, dict) and "created" in v]:
            e = c[entity]
            lines.append(two_way_line(entity, e, dry_run=c["dry_run"]) if "per_side" in e
                         else counts_line(entity, e, dry_run=c["dry_run"]))
            if c["dry_run"] or e.get("blocked"):
                for action, keys in e.get("examples", {}).items():
                    lines.append(f"           e.g. {action}: {', '.join(keys)}")
    for name, entities in summary["systems"].items():
        for entity, e in entities.items():
            if "records_in" in e:
                lines.append(f"  {name}/{entity}: extracted {e['extracted']} ({e['pages']} pages); "
                             f"{e['records_in']} in = {e['staged']} staged + {e['quarantined']} quarantined")
    if summary.get("unmatched"):
        lines.append(f"  {summary['unmatched']} source customers are not synced (no account identifier or drift): "
                     "sync-pipeline unmatched lists them")
    for q in summary.get("quarantine_examples") or []:
        lines.append(f"    quarantined {q['system']}/{q['entity']} {q['record']}: {q['reason']}")
    mt = summary.get("metrics") or {}
    if mt:
        lines.append(f"  metrics as of {mt['as_of']}: {mt['accounts']} accounts, {mt['accounts_overdue']} with "
                     f"{mt['overdue_invoices']} overdue invoices")
        for cur, v in (mt.get("by_currency") or {}).items():
            lines.append(f"    {cur}: due {v['total_due']}, overdue {v['overdue_amount']}")
        for cur in mt.get("missing_fx_rates") or {}:
            lines.append(f"    {cur}: no exchange rate to {mt.get('reporting_currency')}; left out of rolled-up figures")
        if mt.get("bands"):
            b, a = mt["bands"], mt["alerts"]
            lines.append(f"  health: {b['healthy']} healthy, {b['at_risk']} at risk, {b['critical']} critical, "
                         f"{b['unknown']} unknown; alerts: {a['opened']} opened, {a['open']} open, {a['resolved']} resolved")
            lines.append("  (sync-pipeline accounts lists them, worst first)")
    return "\n".join(lines)

"""`sync-pipeline status`: the integration log (per connection, its last run from the Dagster instance), then each
configured system's live connection check (system_status.py)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from sync_pipeline.cli.report import (
    asset_metadata,
    counts_line,
    first_error,
    load_counts,
)
from sync_pipeline.config import Settings, load_settings
from sync_pipeline.connectors.registry import target_entities
from sync_pipeline.defs.resources import DRY_RUN_TAG

_WORDS = {"SUCCESS": "Successful", "FAILURE": "Failed", "CANCELED": "Failed", "STARTED": "Running",
          "STARTING": "Running", "QUEUED": "Queued", "NOT_STARTED": "Queued", "CANCELING": "Running"}


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds") if value else None


def _events(instance: dg.DagsterInstance, run_id: str) -> list:
    kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.RUN_FAILURE}
    return [record.dagster_event for record in instance.all_logs(run_id, of_type=kinds)]


def connection_status(instance: dg.DagsterInstance, settings: Settings) -> list[dict[str, Any]]:
    out = []
    for name, conn in settings.connections.items():
        records = instance.get_run_records(dg.RunsFilter(tags={"sync/connection": name}), limit=1)
        entry: dict[str, Any] = {"connection": name, "source": conn.source, "target": conn.target,
                                 "schedule": conn.schedule, "cron": conn.cron, "last_run": None}
        if records:
            rec = records[0]
            run = rec.dagster_run
            events = _events(instance, run.run_id)
            produced = asset_metadata(events)
            counts = {e.name: load_counts(produced[f"{name}/{e.name}"])
                      for e in target_entities(settings.systems[conn.target].type) if f"{name}/{e.name}" in produced}
            entry["last_run"] = {
                "run_id": run.run_id,
                "status": _WORDS.get(run.status.value, run.status.value.title()),
                "started_at": _ts(rec.start_time),
                "ended_at": _ts(rec.end_time),
                "duration_seconds": round(rec.end_time - rec.start_time, 1) if rec.start_time and rec.end_time else None,
                "counts": counts,
                "dry_run": run.tags.get(DRY_RUN_TAG) == "true",
                "first_error": first_error(events) if run.status.value in ("FAILURE", "CANCELED") else None,
            }
        out.append(entry)
    return out


def render(statuses: list[dict[str, Any]]) -> str:
    lines = []
    for s in statuses:
        head = f"{s['connection']} ({s['source']} → {s['target']}, {s['schedule']}"
        head += f" {s['cron']} UTC)" if s["cron"] else ")"
        lines.append(head)
        run = s["last_run"]
        if run is None:
            lines.append("  never run")
            continue
        took = f" in {run['duration_seconds']} s" if run["duration_seconds"] is not None else ""
        plan = " (dry run: a plan, nothing written)" if run.get("dry_run") else ""
        lines.append(f"  last run: {run['status']}{plan}, {run['started_at'] or 'not started'}{took} "
                     f"(run {run['run_id'][:8]})")
        for entity, c in run["counts"].items():
            lines.append(counts_line(entity, c, dry_run=bool(run.get("dry_run"))))
        if run["first_error"]:
            lines.append(f"  first error: {run['first_error']}")
    return "\n".join(lines)


def render_systems(statuses: list) -> str:
    """The live connection check of each system (SystemStatus), one line each; a red one's client message below."""
    lines = ["systems (live check: one authenticated call each)"]
    width = max((len(s.system) for s in statuses), default=0)
    for s in statuses:
        mark = "● OK    " if s.ok else "✗ FAILED"
        lines.append(f"  {s.system:<{width}}  {mark}  {s.detail} ({s.seconds:.2f} s)")
        if s.error:
            lines.append(f"  {'':<{width}}            {s.error}")
    if not statuses:
        lines.append("  no system configured")
    return "\n".join(lines)


def system_statuses(config_path: Path) -> list:
    """Each configured system's live connection check; with the sandbox configuration, against simulators served
    for the command (their saved state is read, never written: a sandbox of `dev` may be saving it)."""
    from sync_pipeline.cli.local import sandbox_if_configured
    from sync_pipeline.system_status import check_systems

    http_log = logging.getLogger("sync_pipeline.http")
    level = http_log.level
    http_log.setLevel(logging.ERROR)  # a red check's retry warning: its line says what went wrong
    try:
        with sandbox_if_configured(config_path, save_state=False):
            # `${ENV}` references left unset make their own system red, with the variable's name
            return check_systems(load_settings(config_path, strict=False))
    finally:
        http_log.setLevel(level)

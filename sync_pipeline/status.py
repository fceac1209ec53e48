"""The integration log: per connection, its last run from the Dagster instance (`sync-pipeline status`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import dagster as dg

from sync_pipeline.config import Settings
from sync_pipeline.load.apply import COUNTS as _COUNTS
from sync_pipeline.connectors.registry import target_entities

_WORDS = {"SUCCESS": "Successful", "FAILURE": "Failed", "CANCELED": "Failed", "STARTED": "Running",
          "STARTING": "Running", "QUEUED": "Queued", "NOT_STARTED": "Queued", "CANCELING": "Running"}


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds") if value else None


INTERRUPTS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


def innermost_error(event):
    """The innermost cause of a failure event's error (what a person needs; Dagster wraps it in frames)."""
    err = getattr(event.event_specific_data, "error", None) if event is not None else None
    while getattr(err, "cause", None) is not None:
        err = err.cause
    return err


def failure_line(event) -> str | None:
    """One line for a person from a STEP_FAILURE or RUN_FAILURE event: the step, and what went wrong, in our
    words (a Failure's description, else the exception's message without its module and class)."""
    err = innermost_error(event)
    if err is None:
        return None
    where = event.step_key or "run"
    if err.cls_name in INTERRUPTS:
        return f"{where}: stopped by an interrupt (Ctrl-C or SIGTERM)"
    user = getattr(event.event_specific_data, "user_failure_data", None)
    text = (user.description if user is not None and user.description else err.message).strip()
    first = text.splitlines()[0] if text else err.cls_name
    head, sep, rest = first.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == err.cls_name:
        first = rest
    return f"{where}: {first}"


def _first_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}):
        line = failure_line(record.dagster_event)
        if line:
            return line
        if record.message:
            return record.message
    return None


def _load_metadata(instance: dg.DagsterInstance, run_id: str):
    """(asset key, metadata) of each load: its materialization, or the failure of a load that stopped part
    way (it still says what it wrote)."""
    kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_FAILURE}
    for record in instance.all_logs(run_id, of_type=kinds):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            yield mat.asset_key.to_user_string(), mat.metadata
        else:
            user = getattr(event.event_specific_data, "user_failure_data", None)
            if user is not None and user.metadata and event.step_key:  # op `conn__deals` is asset `conn/deals`
                yield event.step_key.replace("__", "/"), user.metadata


def connection_status(instance: dg.DagsterInstance, settings: Settings) -> list[dict[str, Any]]:
    out = []
    for name, conn in settings.connections.items():
        records = instance.get_run_records(dg.RunsFilter(tags={"sync/connection": name}), limit=1)
        entry: dict[str, Any] = {"connection": name, "source": conn.source, "target": conn.target,
                                 "schedule": conn.schedule, "cron": conn.cron, "last_run": None}
        if records:
            rec = records[0]
            run = rec.dagster_run
            counts: dict[str, dict[str, int]] = {}
            entities = [e.name for e in target_entities(settings.systems[conn.target].type)]
            for key, metadata in _load_metadata(instance, run.run_id):
                for entity in entities:
                    if key == f"{name}/{entity}":
                        counts[entity] = {k: int(getattr(metadata.get(k), "value", 0) or 0) for k in _COUNTS}
            entry["last_run"] = {
                "run_id": run.run_id,
                "status": _WORDS.get(run.status.value, run.status.value.title()),
                "started_at": _ts(rec.start_time),
                "ended_at": _ts(rec.end_time),
                "duration_seconds": round(rec.end_time - rec.start_time, 1) if rec.start_time and rec.end_time else None,
                "counts": counts,
                "first_error": _first_error(instance, run.run_id) if run.status.value in ("FAILURE", "CANCELED") else None,
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
        lines.append(f"  last run: {run['status']}, {run['started_at'] or 'not started'}{took} (run {run['run_id'][:8]})")
        for entity, c in run["counts"].items():
            lines.append(f"  {entity:<9} created {c['created']}, updated {c['updated']}, unchanged {c['unchanged']}, "
                         f"failed {c['failed']}" + "".join(f", {k} {c[k]}" for k in ("adopted", "unknown", "blocked")
                                                            if c.get(k)))
        if run["first_error"]:
            lines.append(f"  first error: {run['first_error']}")
    return "\n".join(lines)

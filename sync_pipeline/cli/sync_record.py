"""`sync-pipeline sync-record CONNECTION ENTITY ID`: one record and what it refers to, now (defs/record.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.utils import make_new_run_id

from sync_pipeline.cli.report import asset_metadata, first_error, two_way_counts, two_way_line
from sync_pipeline.config import default_config_path, load_settings
from sync_pipeline.dead_runs import worker_tags
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.defs.record import record_job_name, two_way_entities
from sync_pipeline.defs.resources import run_options_config


def sync_record(config_path: Path, connection: str, entity: str, record_id: str, *, dry_run: bool = False,
                instance: dg.DagsterInstance | None = None) -> dict[str, Any]:
    settings = load_settings(config_path)
    conn = settings.connection_named(connection)
    entities = two_way_entities(settings, conn)
    if entity not in entities:
        raise SystemExit(f"sync-record: {connection} has no two-way entity {entity!r}; one of: "
                         f"{', '.join(entities) or '(none)'}")
    defs = build_definitions(config_path)
    run_config = run_options_config(dry_run=True if dry_run else None, record=(entity, record_id))
    result = defs.resolve_job_def(record_job_name(connection)).execute_in_process(
        instance=instance or dg.DagsterInstance.get(), run_config=run_config, raise_on_error=False,
        run_id=make_new_run_id(), tags={"sync/connection": connection, "sync/trigger": "cli", **worker_tags()})
    produced = asset_metadata(result.all_events)
    out: dict[str, Any] = {"connection": connection, "entity": entity, "id": record_id, "run_id": result.run_id,
                           "ok": result.success, "dry_run": dry_run, "record": None, "entities": {}}
    for e in entities:
        meta = produced.get(f"{connection}/{e}")
        if meta is None:
            continue
        out["record"] = out["record"] or meta.get("record")
        out["entities"][e] = two_way_counts(meta)
    if not result.success:
        out["error"] = first_error(result.all_events)
    return out


def render(out: dict[str, Any]) -> str:
    lines = [f"{out['connection']}: {out['entity']} {out['id']} {'OK' if out['ok'] else 'FAILED'} "
             f"(run {out['run_id'][:8]})"]
    record = out.get("record") or {}
    if record:
        needed = {e: ids for e, ids in record.get("needed", {}).items() if e != out["entity"]}
        lines.append(f"  found in {record.get('system')}" + ("; with " + "; ".join(
            f"{e} {', '.join(ids)}" for e, ids in needed.items()) if needed else "; it refers to nothing else"))
    for entity, counts in out["entities"].items():
        if counts:
            lines.append(two_way_line(entity, counts, dry_run=out["dry_run"]))
    if out.get("error"):
        lines.append(f"  error: {out['error']}")
    return "\n".join(lines)


def _cmd(args: argparse.Namespace) -> int:
    from sync_pipeline.cli.local import ensure_dagster_home, sandbox_if_configured

    config_path = (args.config or default_config_path()).resolve()
    ensure_dagster_home(config_path.parent)
    with sandbox_if_configured(config_path):
        out = sync_record(config_path, args.connection, args.entity, args.id, dry_run=args.dry_run)
    print(json.dumps(out, indent=2, default=str) if args.json else render(out))
    return 0 if out["ok"] else 1


def add_sync_record_parser(sub, config_arg) -> None:
    p = sub.add_parser("sync-record", help="sync one record (and what it refers to) of a two-way connection now")
    config_arg(p)
    p.add_argument("connection")
    p.add_argument("entity", help="organisations, contacts, products, invoices, credit_notes (or clients)")
    p.add_argument("id", help="the record's id in either system")
    p.add_argument("--dry-run", action="store_true", help="plan only, write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)

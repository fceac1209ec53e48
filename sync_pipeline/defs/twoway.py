"""`<connection>/<entity>` for an entity synced both ways (DESIGN §5a): both sides read, one plan, writes to
either side, and per side what was done (load/twoway.py)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import ConnectionSettings, Settings
from sync_pipeline.connectors.registry import TargetEntity, connector_for, side_of
from sync_pipeline.defs.resources import RunOptions, SyncSettings, mark_dry_run, plan_words, warehouse
from sync_pipeline.load.departments import DepartmentError, resolve_departments
from sync_pipeline.defs.record import record_scope_for
from sync_pipeline.load.record_scope import restrict_plan, scope_summary
from sync_pipeline.load.twoway import (PAIR_COUNTS, SIDE_COUNTS, TABLE, TwoWayResult, TwoWaySpec, apply_twoway,
                                      compute_plan)
from sync_pipeline.load.twoway_sides import Side, placeholders_for
from sync_pipeline.load.entities import entity_model


def side_asset_key(settings_or_systems, system: str, entity: str) -> dg.AssetKey:
    """The extract asset that lands a side's records: the side's own stream, or the source stream it reads."""
    cfg = settings_or_systems[system]
    side = side_of(cfg.type, entity)
    if side is not None and side.stream is not None:
        return dg.AssetKey([system, side.stream.asset])
    raw = side.raw_entity if side is not None else entity
    stream = next(s for s in connector_for(cfg.type).source.streams if s.entity == raw)
    return dg.AssetKey([system, stream.asset])


class MappingError(ValueError):
    """A custom mapping names a field the system does not have (found when the run asks the system)."""


def _check_live_fields(connection: ConnectionSettings, entity: str, system: str, have: set[str],
                       wanted: list[str]) -> None:
    missing = [f for f in wanted if f not in have]
    if missing:
        raise MappingError(f"mapping.{entity}: {system} has no field {', '.join(map(repr, missing))} "
                           f"(its {entity} fields: {', '.join(sorted(have))})")


def twoway_spec(settings: Settings, connection: ConnectionSettings, entity: str, sync_settings: SyncSettings
                ) -> TwoWaySpec:
    sides = []
    custom = connection.custom_fields(entity)
    for key, system in (("a", connection.source), ("b", connection.target)):
        cfg = settings.systems[system]
        connector = connector_for(cfg.type)
        side = side_of(cfg.type, entity)
        if side is None:
            raise ValueError(f"{connection.name}: {system} ({cfg.type}) has no {entity} to sync both ways")
        writer = None
        if side.writer is not None:
            writer = (lambda s=side, name=system: s.writer(sync_settings.client(name), connection))
        extra = dict(side.placeholders(connection)) if side.placeholders else {}
        if custom and side.live_fields is not None:  # the instance's own fields (its cf_ custom fields)
            _check_live_fields(connection, entity, system, side.live_fields(sync_settings.client(system)),
                               [a_f if key == "a" else b_f for _, a_f, b_f in custom])
        sides.append(Side(key, system, connector.label or cfg.type, side.raw_entity, connector.sql(side.mapping_sql),
                          {**placeholders_for(cfg), **extra}, writer, output=side.output,
                          custom=tuple((name, a_field if key == "a" else b_field) for name, a_field, b_field in custom)))
    a, b = sides
    direction = connection.direction_code(settings.systems)
    departments = None
    if connection.departments and entity == "clients":  # resolved against both systems' lists: names and ids work
        departments = resolve_departments(
            connection.departments, sync_settings.client(a.system).iter_department_pages(),
            sync_settings.client(b.system).iter_department_pages(), a=a.system, b=b.system)
    model = entity_model(entity)
    # a custom mapping syncs its own fields instead of the standard ones; references always sync
    fields = (tuple(name for name, _, _ in custom) + tuple(r.field for r in model.refs)) if custom else model.fields
    return TwoWaySpec(connection.name, entity, a, b, fields + (("department",) if departments else ()),
                      departments=departments,
                      a_to_b=direction in ("a_to_b", "both") and b.writer is not None,
                      b_to_a=direction in ("b_to_a", "both") and a.writer is not None,
                      winner=connection.winner_side(settings.systems))


def _metadata(spec: TwoWaySpec, result: TwoWayResult, dry_run: bool) -> dict:
    would = "would be " if dry_run else ""
    lines = ["| written to | " + " | ".join(f"{would}{v}" for v in SIDE_COUNTS) + " |",
             "|---|" + "---|" * len(SIDE_COUNTS)]
    for system, counts in result.sides.items():
        lines.append(f"| {system} | " + " | ".join(str(counts.get(v, 0)) for v in SIDE_COUNTS) + " |")
    lines.append("")
    lines.append(", ".join(f"{k.replace('_', ' ')} {result.counts.get(k, 0)}" for k in PAIR_COUNTS))
    meta: dict = {
        # the one-way vocabulary too, so run summaries and `status` read two-way loads like any other
        **plan_words({"created": result.total("created"), "updated": result.total("updated"),
                      "adopted": result.total("adopted")}, dry_run),
        "failed": result.total("failed"), "unknown": result.total("unknown"), "blocked": 0,
        **{k: int(result.counts.get(k, 0)) for k in PAIR_COUNTS},
        "per_side": dg.MetadataValue.json({s: {v: int(c.get(v, 0)) for v in SIDE_COUNTS} for s, c in result.sides.items()}),
        "two_way": dg.MetadataValue.md("\n".join(lines)),
        "dry_run": dry_run,
        "direction": f"{spec.a.system} → {spec.b.system}: {'yes' if spec.a_to_b else 'no'}; "
                     f"{spec.b.system} → {spec.a.system}: {'yes' if spec.b_to_a else 'no'}; winner "
                     f"{spec.side(spec.winner).system}",
        "first_errors": dg.MetadataValue.text("\n".join(f"{k}: {m}" for k, m in result.errors[:5]) or "-"),
    }
    if spec.departments is not None:
        meta["departments_mapped"] = dg.MetadataValue.json(spec.departments)
        meta["departments_unmapped"] = dg.MetadataValue.json(result.unmapped_departments)
    for kind, rows in result.examples.items():
        meta[f"{kind}_examples"] = dg.MetadataValue.json(rows)
    return meta


def build_twoway_asset(conn_cfg: ConnectionSettings, settings: Settings, spec: TargetEntity) -> dg.AssetsDefinition:
    name, entity = conn_cfg.name, spec.name
    deps = [side_asset_key(settings.systems, conn_cfg.source, entity),
            side_asset_key(settings.systems, conn_cfg.target, entity)]
    if spec.after:  # what its references point at syncs first (DESIGN §5a)
        deps.append(dg.AssetKey([name, spec.after]))

    @dg.asset(
        key=[name, entity], deps=deps, group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        description=spec.description, tags={"sync/connection": name},
    )
    def _asset(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
               duckdb: DuckDBResource):
        settings_now = sync_settings.load()
        current = settings_now.connections[name]
        dry_run = run_options.dry_run_for(current.dry_run)
        if dry_run:
            mark_dry_run(context)
        result = TwoWayResult()
        try:
            tw = twoway_spec(settings_now, current, entity, sync_settings)
        except (DepartmentError, MappingError) as exc:
            raise dg.Failure(description=f"{name}/{entity}: {exc}") from exc
        try:
            with warehouse(duckdb) as conn:
                scope = None
                if run_options.record_id:  # one record on demand: it and what it refers to, nothing else
                    scope = record_scope_for(
                        conn, settings=settings_now, connection=current, run_options=run_options,
                        sync_settings=sync_settings, run_id=context.run.run_id,
                        spec_for=lambda e: tw if e == entity else twoway_spec(settings_now, current, e, sync_settings))
                    if not scope.ids.get(entity):
                        context.log.info(f"{name}/{entity}: nothing needed by {scope.describe()}")
                        return dg.MaterializeResult(metadata={**_metadata(tw, result, dry_run),
                                                              "record": dg.MetadataValue.json(scope_summary(scope))})
                planned = compute_plan(conn, tw, result)
                if scope is not None:
                    left = restrict_plan(conn, TABLE, scope, entity)
                    context.log.info(f"{name}/{entity}: {left} of the plan's rows concern {scope.describe()}")
                for system, unmapped in result.unmapped_departments.items():
                    context.log.warning(f"{name}/{entity}: departments of {system} that `departments` does not map: "
                                        f"{', '.join(unmapped)} (their clients sync without a department)")
                context.log.info(f"{name}/{entity} two-way plan: {dict(planned)}" + (" (dry run)" if dry_run else ""))
                concurrency = min(settings_now.systems[s].write_concurrency for s in (tw.a.system, tw.b.system))
                apply_twoway(conn, tw, run_id=context.run.run_id, dry_run=dry_run, error_budget=current.error_budget,
                             concurrency=concurrency, progress=context.log.info, result=result)
        except Exception as exc:
            raise dg.Failure(description=f"{name}/{entity}: {exc}", metadata=_metadata(tw, result, dry_run)) from exc
        for key, message in result.errors[:5]:
            context.log.warning(f"{name}/{entity} {key} not written: {message}")
        for row in result.examples.get("conflicts", []):
            context.log.info(f"{name}/{entity} conflict on {row['key']}: both sides changed, {row['winner']} won; "
                             f"kept {row['kept']}, lost {row['lost']}")
        meta = _metadata(tw, result, dry_run)
        if scope is not None:
            meta["record"] = dg.MetadataValue.json(scope_summary(scope))
        return dg.MaterializeResult(metadata=meta)

    return _asset

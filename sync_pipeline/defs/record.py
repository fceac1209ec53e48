"""One record on demand from the Dagster launchpad or `sync-pipeline sync-record`: `<connection>_record_job` runs
only the connection's two-way entities, with `record_entity` and `record_id` in the run_options resource's config;
each of them syncs that record and what it refers to, and nothing else (load/record_scope.py)."""

from __future__ import annotations

import dagster as dg

from sync_pipeline.config import ConnectionSettings, Settings
from sync_pipeline.connectors.registry import connector_for, side_of, target_entities
from sync_pipeline.defs.resources import RunOptions, SyncSettings
from sync_pipeline.load.record_scope import (RecordScope, SideAccess, record_closure, store_scope, stored_scope)
from sync_pipeline.load.twoway import TwoWaySpec
from sync_pipeline.warehouse.raw import ensure_raw_table


def record_job_name(connection: str) -> str:
    return f"{connection}_record_job"


def two_way_entities(settings: Settings, connection: ConnectionSettings) -> list[str]:
    return [e.name for e in target_entities(settings.systems[connection.target].type) if e.two_way]


def build_record_job(conn: ConnectionSettings, settings: Settings):
    entities = two_way_entities(settings, conn)
    if not entities:
        return None
    return dg.define_asset_job(
        name=record_job_name(conn.name),
        selection=dg.AssetSelection.assets(*[dg.AssetKey([conn.name, e]) for e in entities]),
        description=(f"Sync one record of {conn.name} and what it refers to: set record_entity (one of "
                     f"{', '.join(entities)}) and record_id (an id in {conn.source} or {conn.target}) under "
                     "resources.run_options.config."),
        tags={"sync/connection": conn.name, "sync/record": "true"},
    )


def _access(settings: Settings, system: str, sync_settings: SyncSettings, spec_for) -> SideAccess:
    cfg = settings.systems[system]
    connector = connector_for(cfg.type)
    api = sync_settings.client(system)
    fetched: dict[tuple[str, str], dict | None] = {}  # one GET per record, whichever entities ask

    def side(entity: str):
        spec: TwoWaySpec = spec_for(entity)
        return spec.a if spec.a.system == system else spec.b

    def fetch(entity: str, record_id: str) -> dict | None:
        rs = side_of(cfg.type, entity)
        if rs is None or rs.fetch is None:
            raise ValueError(f"{system} ({cfg.type}) cannot read one {entity} record by id")
        key = (rs.raw_entity, record_id)
        if key not in fetched:
            fetched[key] = rs.fetch(api, record_id)
        return fetched[key]

    def keys(raw_entity: str):
        streams = [*(connector.source.streams if connector.source else ()),
                   *(s.stream for s in connector.sides if s.stream is not None)]
        return next(s.keys for s in streams if s.entity == raw_entity)

    return SideAccess(side, fetch, keys, journal=bool(connector.source) and cfg.is_source)


def record_scope_for(conn, *, settings: Settings, connection: ConnectionSettings, run_options: RunOptions,
                     sync_settings: SyncSettings, run_id: str, spec_for) -> RecordScope:
    """This run's scope: worked out (records fetched and landed) by its first step, read back by the others."""
    scope = stored_scope(conn, run_id)
    if scope is not None:
        return scope
    entity, record_id = run_options.record_entity, run_options.record_id
    known = two_way_entities(settings, connection)
    if entity not in known:
        raise dg.Failure(description=f"{connection.name}: no two-way entity {entity!r}; one of: {', '.join(known)}")
    order = [connection.source, connection.target]
    # the side that already holds the id is asked first (the other would answer 404 to a foreign id)
    for system in list(order):
        rs = side_of(settings.systems[system].type, entity)
        table = ensure_raw_table(conn, system, rs.raw_entity)
        if conn.execute(f"SELECT count(*) FROM {table} WHERE record_key = ?", [record_id]).fetchone()[0]:
            order = [system] + [s for s in order if s != system]
            break
    sides = {("a" if s == connection.source else "b"): _access(settings, s, sync_settings, spec_for) for s in order}
    scope = record_closure(conn, entity=entity, record_id=record_id, run_id=run_id, sides=sides)
    store_scope(conn, run_id, scope)
    return scope

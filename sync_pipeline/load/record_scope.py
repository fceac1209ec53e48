"""One record on demand (`sync-pipeline sync-record`, the `<connection>_record_job`): that record and what it refers
to (its customer, its lines' products) are read fresh from their system by id and landed in raw, and each two-way
entity's plan is cut down to them. Nothing else is read or written.

`record_closure` finds the side the id lives on and the ids the record refers to, from the record as its own mapping
SQL reads it (before references are put in the links' terms)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sync_pipeline.load.entities import entity_model
from sync_pipeline.load.twoway_sides import Side, sql_literal
from sync_pipeline.warehouse.raw import RawKeys, RawLanding, ensure_raw_table


class RecordNotFound(LookupError):
    pass


@dataclass
class RecordScope:
    """The ids (on side `key`) each entity of the run may touch."""

    entity: str
    record_id: str
    key: str                                        # a | b: the side the id is on
    system: str
    ids: dict[str, set[str]] = field(default_factory=dict)

    def describe(self) -> str:
        needed = ["{} {}".format(e, ", ".join(sorted(i))) for e, i in self.ids.items() if e != self.entity and i]
        return f"{self.entity} {self.record_id} in {self.system}" + (f", with {'; '.join(needed)}" if needed else "")


@dataclass(frozen=True)
class SideAccess:
    """How the scope reads one side: its Side per entity, a fetch by id (None when absent), its raw keys."""

    side: Callable[[str], Side]                        # entity -> Side
    fetch: Callable[[str, str], dict | None]           # (entity, id) -> the record as the system answers it
    keys: Callable[[str], RawKeys]                     # raw entity -> where its records keep id and times
    journal: bool                                      # its raw records feed staging (a source)


def _land(conn: duckdb.DuckDBPyConnection, access: SideAccess, side: Side, record: dict, run_id: str) -> None:
    landing = RawLanding(conn, system=side.system, entity=side.entity, run_id=run_id, keys=access.keys(side.entity),
                         journal=access.journal)
    landing.add_page([record])
    landing.commit(advance_cursor=False)


def _refs_of(conn: duckdb.DuckDBPyConnection, side: Side, record_id: str, entity: str) -> dict[str, set[str]]:
    """The ids the record refers to, per entity, as its side's mapping reads them."""
    model = entity_model(entity)
    if not model.refs:
        return {}
    table = ensure_raw_table(conn, side.system, side.entity)
    conn.execute(side.render(f"(SELECT * FROM {table} WHERE record_key = {sql_literal(record_id)})"))
    out: dict[str, set[str]] = {}
    for ref in model.refs:
        if ref.item is None:
            values = [r[0] for r in conn.execute(f'SELECT "{ref.field}" FROM {side.output}').fetchall() if r[0]]
        else:
            values = [r[0] for r in conn.execute(
                f'SELECT unnest("{ref.field}").{ref.item} FROM {side.output}').fetchall() if r[0]]
        for e in ref.entities:
            out.setdefault(e, set()).update(values)
    return out


_SCOPES = """CREATE TABLE IF NOT EXISTS sync.record_scopes (
    run_id VARCHAR PRIMARY KEY, entity VARCHAR, record_id VARCHAR, side VARCHAR, system VARCHAR, ids JSON)"""


def stored_scope(conn: duckdb.DuckDBPyConnection, run_id: str) -> RecordScope | None:
    """The scope an earlier step of this run worked out (it is fetched once per run)."""
    conn.execute(_SCOPES)
    row = conn.execute("SELECT entity, record_id, side, system, ids FROM sync.record_scopes WHERE run_id = ?",
                       [run_id]).fetchone()
    if row is None:
        return None
    return RecordScope(row[0], row[1], row[2], row[3], {e: set(i) for e, i in json.loads(row[4]).items()})


def store_scope(conn: duckdb.DuckDBPyConnection, run_id: str, scope: RecordScope) -> None:
    conn.execute(_SCOPES)
    conn.execute("INSERT OR REPLACE INTO sync.record_scopes VALUES (?, ?, ?, ?, ?, ?)",
                 [run_id, scope.entity, scope.record_id, scope.key, scope.system,
                  json.dumps({e: sorted(i) for e, i in scope.ids.items()})])


def record_closure(conn: duckdb.DuckDBPyConnection, *, entity: str, record_id: str, run_id: str,
                   sides: Mapping[str, SideAccess]) -> RecordScope:
    """Fetch the record from the side that has it (in the order of `sides`) and land it, then each record it refers
    to; return the ids each entity may touch. Raises RecordNotFound when neither side has it."""
    for key, access in sides.items():
        record = access.fetch(entity, record_id)
        if record is None:
            continue
        side = access.side(entity)
        _land(conn, access, side, record, run_id)
        scope = RecordScope(entity, record_id, key, side.system, {entity: {record_id}})
        for ref_entity, ids in _refs_of(conn, side, record_id, entity).items():
            for ref_id in sorted(ids):
                try:
                    ref_side = access.side(ref_entity)
                except LookupError:
                    continue
                found = access.fetch(ref_entity, ref_id)
                if found is not None and _kind_fits(conn, ref_side, ref_id, found, access, run_id):
                    scope.ids.setdefault(ref_entity, set()).add(ref_id)
        return scope
    raise RecordNotFound(f"no {entity} record {record_id!r} in {' or '.join(a.side(entity).system for a in sides.values())}")


def _kind_fits(conn: duckdb.DuckDBPyConnection, side: Side, ref_id: str, record: dict, access: SideAccess,
               run_id: str) -> bool:
    """Land the referred record; it belongs to the entity when its mapping keeps it (a Billy contact is an
    organisation when it is a company, a contact when a person)."""
    _land(conn, access, side, record, run_id)
    table = ensure_raw_table(conn, side.system, side.entity)
    conn.execute(side.render(f"(SELECT * FROM {table} WHERE record_key = {sql_literal(ref_id)})"))
    return conn.execute(f"SELECT count(*) FROM {side.output}").fetchone()[0] > 0


def restrict_plan(conn: duckdb.DuckDBPyConnection, table: str, scope: RecordScope, entity: str) -> int:
    """Keep in the plan only the rows of the records this entity may touch; returns how many are left."""
    ids = sorted(scope.ids.get(entity, set()))
    conn.execute(f"DELETE FROM {table} WHERE {scope.key}_id IS NULL OR {scope.key}_id NOT IN "
                 f"(SELECT unnest($ids::VARCHAR[]))", {"ids": ids})
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def scope_summary(scope: RecordScope) -> dict[str, Any]:
    return {"record": f"{scope.entity} {scope.record_id}", "system": scope.system,
            "needed": {e: sorted(i) for e, i in scope.ids.items()}}

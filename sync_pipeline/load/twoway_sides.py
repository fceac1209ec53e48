"""Each side of a two-way entity as one canonical row per record (`_side_a`, `_side_b`): the vendor's mapping SQL
over its raw table (plus the connection's custom fields), references put in the links' terms, the mapped fields as
JSON, their content hash, and the values the match rules compare.

The same mapping hashes what a system answered to our write (`answer_hashes`), so the hash a link stores for
that side is the record as the system keeps it: a system that trims or reformats a value does not make our own
write look like a user's edit on the next run (no echo)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from sync_pipeline.load.entities import EntityModel
from sync_pipeline.load.twoway_refs import refs_to_keys
from sync_pipeline.warehouse.db import read_sql
from sync_pipeline.warehouse.raw import ensure_raw_table


def sql_literal(value: str | bool) -> str:
    """A placeholder's value as SQL (values from code and validated settings only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Side:
    """One system's side of a connection's two-way entity."""

    key: str                                    # a (the connection's source) | b (its target)
    system: str                                 # the system's name in sync.yaml
    label: str                                  # how people call it ("Sugester")
    entity: str                                 # raw entity (clients, contacts, invoices)
    mapping_sql: str                            # produces `output` from {clients} / {raw}; other placeholders below
    placeholders: Mapping[str, str]             # {instance} {system_type} {identifier} ... as quoted literals
    writer: Callable[[], Any] | None = None     # -> SideWriter; None: this side is never written
    output: str = "_clients"                    # the table the mapping SQL creates
    custom: tuple[tuple[str, str], ...] = ()    # (canonical name, the vendor's field) of a custom mapping

    def render(self, table: str) -> str:
        return self.mapping_sql.format(clients=table, raw=table, **self.placeholders)


def placeholders_for(system_cfg: Any) -> dict[str, str]:
    """The mapping SQL's placeholders for a configured system (the same as staging gives a source)."""
    base_url = system_cfg.resolved_base_url() if hasattr(system_cfg, "resolved_base_url") else ""
    return {"instance": sql_literal(system_cfg.name), "system_type": sql_literal(system_cfg.type),
            "identifier": sql_literal(getattr(system_cfg, "identifier", "source_id")),
            "identifier_field": sql_literal(getattr(system_cfg, "identifier_field", "") or ""),
            "base_url": sql_literal(base_url if base_url.startswith(("http://", "https://")) and "'" not in base_url
                                    else "")}


def fields_json(fields: Sequence[str]) -> str:
    """SQL for the mapped fields of a mapped row as one JSON object, keys in the given order."""
    return "CAST(json_object(" + ", ".join(f"'{f}', {_quoted(f)}" for f in fields) + ") AS VARCHAR)"


def _custom_columns(conn: duckdb.DuckDBPyConnection, side: Side) -> None:
    """A custom mapping's fields, read from the record as the vendor sent it (text; blank is no value)."""
    if not side.custom:
        return
    have = {r[0] for r in conn.execute(f"DESCRIBE {side.output}").fetchall()}
    replaced = [name for name, _ in side.custom if name in have]
    keep = f"* EXCLUDE ({', '.join(_quoted(n) for n in replaced)})" if replaced else "*"
    cols = ", ".join(f"nullif(trim(CAST(json_extract_string(payload, {sql_literal('$.' + vendor)}) AS VARCHAR)), '') "
                     f"AS {_quoted(name)}" for name, vendor in side.custom)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {side.output} AS SELECT {keep}, {cols} FROM {side.output}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def map_side(conn: duckdb.DuckDBPyConnection, side: Side, table: str, model: EntityModel | None, connection: str,
             fields: Sequence[str]) -> None:
    """Run the side's mapping over `table`, add the custom fields, and put references in the links' terms
    (a reference not linked yet leaves the record `blocked`, with the reason)."""
    conn.execute(side.render(table))
    _custom_columns(conn, side)
    conn.execute(f"ALTER TABLE {side.output} ADD COLUMN IF NOT EXISTS blocked VARCHAR")
    if model is not None:
        refs_to_keys(conn, side.output, side.key, connection, [r for r in model.refs if r.field in fields])


_SIDE_SQL = """
CREATE OR REPLACE TEMP TABLE _side_{key} AS
SELECT source_id AS id,
       {instance} || ':' || source_id AS own_key,      -- the key a record created from this one carries
       derived_id AS alt_key,                          -- its account id (the key of earlier one-way syncs)
       ref_key,                                        -- the key found in its own external-id field
       {fields} AS fields,
       md5({fields}) AS hash,
       {match_1} AS match_1,                           -- the entity's match rules (load/entities.py)
       {match_2} AS match_2,
       blocked,                                        -- why it cannot sync yet (a reference not linked)
       -- a record the latest full key scan did not find, and not landed since, was deleted in its system
       NOT EXISTS (SELECT 1 FROM sync.scans WHERE system = {instance} AND entity = {entity})
           OR source_id IN (SELECT record_key FROM sync.scan_keys WHERE system = {instance} AND entity = {entity})
           OR source_id IN (SELECT r.record_key FROM {raw} r JOIN sync.scans s ON s.system = {instance}
                            AND s.entity = {entity} WHERE r.extracted_at > s.scanned_at)
           AS present
FROM {output}
WHERE source_id IS NOT NULL
"""


def _departments(conn: duckdb.DuckDBPyConnection, side: Side, departments: Mapping[str, str] | None) -> list[str]:
    """Put the mapped rows' `department` in the target's terms (side a is translated through the map; b is already)
    and return the departments the map does not name."""
    if departments is None:
        return []
    out = side.output
    conn.execute("CREATE OR REPLACE TEMP TABLE _dept AS SELECT unnest($a::VARCHAR[]) AS a, unnest($b::VARCHAR[]) AS b",
                 {"a": list(departments), "b": list(departments.values())})
    col = "a" if side.key == "a" else "b"
    unmapped = [r[0] for r in conn.execute(
        f"""SELECT DISTINCT department FROM {out} WHERE department IS NOT NULL
            AND department NOT IN (SELECT {col} FROM _dept) ORDER BY 1""").fetchall()]
    if side.key == "a":
        conn.execute(f"UPDATE {out} SET department = (SELECT b FROM _dept WHERE a = {out}.department)")
    return unmapped


def _map(conn: duckdb.DuckDBPyConnection, side: Side, table: str, spec: Any) -> list[str]:
    map_side(conn, side, table, spec.model, spec.connection, spec.fields)
    return _departments(conn, side, spec.departments)


def latest_rows(table: str) -> str:
    """A raw table's latest version of each record, as a subquery (conflicting copies left out)."""
    return (f"(SELECT * FROM {table} WHERE conflict IS NULL QUALIFY row_number() OVER "
            "(PARTITION BY record_key ORDER BY source_updated_at DESC NULLS LAST) = 1)")


def build_side(conn: duckdb.DuckDBPyConnection, side: Side, spec: Any) -> list[str]:
    """`_side_<key>`: one row per record of the side's raw table (its latest version); returns the departments
    of its records that `spec.departments` (when given) does not map. `spec`: a TwoWaySpec (fields, model,
    connection, departments)."""
    table = ensure_raw_table(conn, side.system, side.entity)
    # the vendors' SQL uses them; temporary, so they stay for the answers mapped later on this connection
    conn.execute(read_sql("sync_pipeline.transform", "sql/staging_macros.sql"))
    unmapped = _map(conn, side, latest_rows(table), spec)
    rules = list(spec.model.match) if spec.model is not None else []
    matches = [r.expr for r in rules] + ["CAST(NULL AS VARCHAR)"] * (2 - len(rules))
    conn.execute(_SIDE_SQL.format(key=side.key, instance=side.placeholders["instance"], raw=table, output=side.output,
                                  entity=sql_literal(side.entity), fields=fields_json(spec.fields),
                                  match_1=matches[0], match_2=matches[1]))
    return unmapped


def answer_hashes(conn: duckdb.DuckDBPyConnection, side: Side, spec: Any,
                  answers: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """id → content hash of each record as the system answered it, mapped like its raw records."""
    if not answers:
        return {}
    conn.execute("""CREATE OR REPLACE TEMP TABLE _answers AS
                    SELECT CAST(unnest($ids::VARCHAR[]) AS VARCHAR) AS record_key,
                           CAST(unnest($ids::VARCHAR[]) AS VARCHAR) AS source_id,
                           CAST(unnest($payloads::VARCHAR[]) AS JSON) AS payload,
                           CAST(NULL AS TIMESTAMPTZ) AS source_updated_at""",
                 {"ids": [str(a["id"]) for a in answers],
                  "payloads": [json.dumps(a, ensure_ascii=False, default=str) for a in answers]})
    _map(conn, side, "_answers", spec)
    return dict(conn.execute(f"SELECT source_id, md5({fields_json(spec.fields)}) FROM {side.output}").fetchall())

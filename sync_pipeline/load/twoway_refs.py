"""References between two-way entities (an invoice's customer, its lines' products): each side refers by its own ids;
the plan compares them in the links' terms (our key of the linked pair), and a write puts the written side's ids back.

A reference to a record that is not linked on both sides yet cannot be written: the record is `blocked` with the
reason, and syncs on a later run, once what it refers to is linked (entities sync in dependency order, DESIGN §5a).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb

from sync_pipeline.load.entities import Ref

_LINKED = """SELECT DISTINCT ON ({key}_id) {key}_id AS id, our_key FROM sync.links
             WHERE connection = $connection AND entity IN (SELECT unnest($entities::VARCHAR[]))
               AND a_id IS NOT NULL AND b_id IS NOT NULL"""


def _block(reason_sql: str) -> str:
    return f"CASE WHEN {reason_sql} IS NULL THEN o.blocked ELSE concat_ws('; ', o.blocked, {reason_sql}) END"


def refs_to_keys(conn: duckdb.DuckDBPyConnection, table: str, key: str, connection: str, refs: Sequence[Ref]) -> None:
    """In `table` (a side's mapped rows), replace each reference by the linked pair's key; an id not linked yet
    becomes NULL and the row's `blocked` says which."""
    for ref in refs:
        params = {"connection": connection, "entities": list(ref.entities)}
        linked = _LINKED.format(key=key)
        what = " or ".join(ref.entities)
        if ref.item is None:
            reason = (f"CASE WHEN o.\"{ref.field}\" IS NOT NULL AND k.our_key IS NULL THEN "
                      f"'{ref.field} ' || o.\"{ref.field}\" || ' is not among the linked {what} yet' END")
            conn.execute(
                f"""CREATE OR REPLACE TEMP TABLE {table} AS
                    SELECT o.* REPLACE (k.our_key AS "{ref.field}", {_block(reason)} AS blocked)
                    FROM {table} o LEFT JOIN ({linked}) k ON k.id = o."{ref.field}" """, params)
            continue
        item = ref.item
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ref_items AS
                WITH x AS (SELECT source_id, unnest("{ref.field}") AS it, generate_subscripts("{ref.field}", 1) AS pos
                           FROM {table})
                SELECT x.source_id,
                       list(struct_update(x.it, {item} := k.our_key) ORDER BY x.pos) AS items,
                       string_agg(CASE WHEN x.it.{item} IS NOT NULL AND k.our_key IS NULL THEN x.it.{item} END, ', ')
                           AS missing,
                       count(*) FILTER (WHERE x.it.{item} IS NULL) AS without
                FROM x LEFT JOIN ({linked}) k ON k.id = x.it.{item}
                GROUP BY x.source_id""", params)
        required = (f" WHEN r.without > 0 THEN '{ref.field}: ' || r.without || ' without a {item}'"
                    if ref.required else "")
        reason = (f"CASE WHEN r.missing IS NOT NULL THEN '{ref.field}: {item} ' || r.missing || "
                  f"' not among the linked {what} yet'{required} END")
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT o.* REPLACE (CASE WHEN r.source_id IS NULL THEN o."{ref.field}" ELSE r.items END AS "{ref.field}",
                                    {_block(reason)} AS blocked)
                FROM {table} o LEFT JOIN _ref_items r ON r.source_id = o.source_id""")


def key_to_id(conn: duckdb.DuckDBPyConnection, connection: str, key: str, refs: Iterable[Ref]) -> dict[str, str]:
    """our key → the side `key`'s id, for every linked record the references may point at."""
    entities = sorted({e for r in refs for e in r.entities})
    if not entities:
        return {}
    return dict(conn.execute(
        f"""SELECT our_key, {key}_id FROM sync.links WHERE connection = $connection
            AND entity IN (SELECT unnest($entities::VARCHAR[])) AND a_id IS NOT NULL AND b_id IS NOT NULL""",
        {"connection": connection, "entities": entities}).fetchall())


def keys_to_ids(fields: Mapping[str, Any], refs: Iterable[Ref], ids: Mapping[str, str]) -> dict[str, Any]:
    """The fields of a record about to be written, with references in the written side's ids."""
    out = dict(fields)
    for ref in refs:
        value = out.get(ref.field)
        if value is None:
            continue
        if ref.item is None:
            out[ref.field] = ids.get(value)
        else:
            out[ref.field] = [{**it, ref.item: ids.get(it.get(ref.item)) if it.get(ref.item) else None}
                              for it in value]
    return out

"""A system's clients or products as plain canonical rows, whatever the vendor, for a target that takes records
from any system (Invoice2go through Zapier): `_source_clients` or `_source_products`, built from the system's
two-way sides (their mapping SQL over what its reads landed in raw).

Clients come from the sides `clients`, `organisations` and `contacts` (Billy and Simply CRM keep companies and
persons apart); products from `products`. A system without such a side gives an empty table, and says so."""

from __future__ import annotations

from typing import Any

import duckdb

from sync_pipeline.connectors.registry import connector_for
from sync_pipeline.load.twoway_sides import Side, latest_rows, placeholders_for, sql_literal
from sync_pipeline.warehouse.db import read_sql
from sync_pipeline.warehouse.raw import ensure_raw_table

KINDS = {"clients": ("clients", "organisations", "contacts"), "products": ("products",)}
COLUMNS = {"clients": ("name", "tax_id", "email", "phone", "street", "city", "post_code", "country"),
           "products": ("name", "code", "description", "unit_price", "currency")}


def source_rows(conn: duckdb.DuckDBPyConnection, system_cfg: Any, kind: str, connection: Any = None) -> list[str]:
    """Create `_source_<kind>` (our_key, source, source_id and COLUMNS[kind]) from `system_cfg`'s sides; returns
    the sides it read (empty: the system has none of this kind)."""
    connector = connector_for(system_cfg.type)
    cols, name = COLUMNS[kind], sql_literal(system_cfg.name)
    conn.execute(read_sql("sync_pipeline.transform", "sql/staging_macros.sql"))  # the vendors' SQL uses them
    parts, used = [], []
    for n, rs in enumerate(s for s in connector.sides if s.entity in KINDS[kind]):
        extra = dict(rs.placeholders(connection)) if rs.placeholders else {}
        side = Side("a", system_cfg.name, connector.label, rs.raw_entity, connector.sql(rs.mapping_sql),
                    {**placeholders_for(system_cfg), **extra}, output=rs.output)
        conn.execute(side.render(latest_rows(ensure_raw_table(conn, side.system, side.entity))))
        have = {r[0] for r in conn.execute(f"DESCRIBE {side.output}").fetchall()}
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _source_part_{n} AS SELECT "
                     f"{name} || ':' || source_id AS our_key, {name} AS source, "
                     "source_id, " + ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' if c in have
                                               else f'CAST(NULL AS VARCHAR) AS "{c}"' for c in cols)
                     + f" FROM {side.output} WHERE source_id IS NOT NULL")
        parts.append(f"SELECT * FROM _source_part_{n}")
        used.append(rs.entity)
    empty = "SELECT CAST(NULL AS VARCHAR) AS our_key, CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS " \
            "source_id, " + ", ".join(f'CAST(NULL AS VARCHAR) AS "{c}"' for c in cols) + " WHERE false"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _source_{kind} AS " + " UNION ALL ".join(parts or [empty]))
    return used

"""Build the canonical staging tables from raw, splitting staged from quarantined records.

Staging is a pure function of raw (plus the identity bindings), built in one transaction, so for every run:
records in = staged + quarantined (rejected). A full build maps every raw record. An incremental build maps
again only what the raw journal (`sync.raw_journal`, written by the landing) names since the last build, and
what those changes can reach: the invoices of a changed client's account, and every quarantined invoice (whose
reason may name a client). Both give the same tables; `update_staging` picks one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import duckdb

from sync_pipeline.connectors.registry import connector_for
from sync_pipeline.warehouse.builds import fingerprint
from sync_pipeline.warehouse.db import read_sql, transaction
from sync_pipeline.warehouse.raw import DEFAULT_CLOCK_SKEW, ensure_raw_table

_ACCOUNT_COLS = ("account_id, source_instance, source_system, source_id, name, tax_id, email, phone, street, city, "
                 "post_code, country, kind, department, source_updated_at")
_INVOICE_COLS = ("invoice_key, source_instance, source_id, account_id, number, kind, source_kind, status, source_status, "
                 "issue_date, due_date, paid_date, currency, total_net, total_gross, paid_amount, amount_due, view_url, "
                 "source_updated_at, department")


@dataclass(frozen=True)
class SourceSystemRef:
    name: str
    type: str
    identifier: str
    identifier_field: str = ""  # the custom field holding the account id (Zoho)
    max_clock_skew: timedelta = DEFAULT_CLOCK_SKEW  # a record stamped later than read + this is quarantined
    base_url: str = ""  # the instance's address: where a record has no link, the vendor's SQL may build one


@dataclass
class EntityCounts:
    records_in: int = 0
    staged: int = 0
    quarantined: int = 0   # rejected: not staged
    flagged: int = 0       # staged, but reported (identifier drift)


@dataclass
class StagingStats:
    per_system: dict[str, dict[str, EntityCounts]] = field(default_factory=dict)

    def total(self, entity: str, attr: str) -> int:
        return sum(getattr(s[entity], attr) for s in self.per_system.values())


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _remember_quarantine(conn: duckdb.DuckDBPyConnection) -> None:
    """_previous_quarantine: when each quarantined record was first seen, kept across builds (people ask
    "since when?")."""
    conn.execute("""CREATE OR REPLACE TEMP TABLE _previous_quarantine AS
                    SELECT source_instance, entity, record_key, reason, min(first_seen_at) AS first_seen_at
                    FROM staging.quarantine GROUP BY ALL""")


def rebuild_staging(conn: duckdb.DuckDBPyConnection, systems: list[SourceSystemRef], *, run_id: str) -> StagingStats:
    stats = StagingStats()
    conn.execute(read_sql("sync_pipeline.transform", "sql/staging_macros.sql"))
    with transaction(conn):
        _remember_quarantine(conn)
        for table in ("staging.accounts", "staging.invoices", "staging.quarantine"):
            conn.execute(f"DELETE FROM {table}")
        for s in systems:
            stats.per_system[s.name] = _stage_system(conn, s, run_id)
    return stats


def static_fingerprint(systems: list[SourceSystemRef]) -> str:
    """What staging is a function of besides the raw records: the sources as configured and the SQL that maps
    them. When it changes, staging is built in full."""
    parts: list[str] = [repr(sorted((s.name, s.type, s.identifier, s.identifier_field, str(s.max_clock_skew),
                                     s.base_url) for s in systems))]
    for name in ("sql/staging_macros.sql", "sql/identity.sql", "sql/raw_problems.sql", "sql/invoice_checks.sql"):
        parts.append(read_sql("sync_pipeline.transform", name))
    for s in systems:
        connector = connector_for(s.type)
        parts += [connector.sql(connector.source.clients_sql), connector.sql(connector.source.invoices_sql)]
    return fingerprint(*parts)


def journal_head(conn: duckdb.DuckDBPyConnection, consumed: int = 0) -> int:
    """The newest journal entry (or `consumed` when none is newer: entries are dropped once consumed)."""
    (head,) = conn.execute("SELECT max(seq) FROM sync.raw_journal").fetchone()
    return max(head or 0, consumed)


@dataclass(frozen=True)
class StagingBuild:
    mode: str           # full | incremental | kept
    fingerprint: str    # of what the tables now hold: the static inputs and the journal position
    summary: dict       # for sync.builds: {"static": ..., "journal": ...}


def update_staging(conn: duckdb.DuckDBPyConnection, systems: list[SourceSystemRef], *, run_id: str,
                   last: dict | None) -> StagingBuild:
    """Bring staging up to date with raw. `last`: the summary recorded for the previous build (None: none)."""
    static = static_fingerprint(systems)
    incremental = bool(last) and last.get("static") == static and isinstance(last.get("journal"), int)
    head = journal_head(conn, last["journal"] if incremental else 0)
    if incremental and head == last["journal"]:
        mode = "kept"
    elif incremental:
        mode = "incremental"
        restage(conn, systems, run_id=run_id, after=last["journal"], upto=head)
    else:
        mode = "full"
        rebuild_staging(conn, systems, run_id=run_id)
    # the entries up to `head` are in the tables now
    conn.execute("DELETE FROM sync.raw_journal WHERE seq <= ?", [head])
    return StagingBuild(mode, fingerprint(static, head), {"static": static, "journal": head})


def staging_stats(conn: duckdb.DuckDBPyConnection, systems: list[SourceSystemRef]) -> StagingStats:
    """The counts a rebuild reported, read back from the staging tables (when staging is kept as it is)."""
    stats = StagingStats()
    for s in systems:
        (accounts, invoices, q_clients, flagged, q_invoices) = conn.execute(
            """SELECT (SELECT count(*) FROM staging.accounts WHERE source_instance = $s),
                      (SELECT count(*) FROM staging.invoices WHERE source_instance = $s),
                      count(*) FILTER (WHERE entity = 'clients' AND disposition = 'rejected'),
                      count(*) FILTER (WHERE entity = 'clients' AND disposition = 'kept'),
                      count(*) FILTER (WHERE entity = 'invoices' AND disposition = 'rejected')
               FROM staging.quarantine WHERE source_instance = $s""", {"s": s.name}).fetchone()
        stats.per_system[s.name] = {"clients": EntityCounts(accounts + q_clients, accounts, q_clients, flagged),
                                    "invoices": EntityCounts(invoices + q_invoices, invoices, q_invoices, 0)}
    return stats


def rebuild_unmatched_accounts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    sql = read_sql("sync_pipeline.transform", "sql/unmatched_accounts.sql")
    with transaction(conn):
        conn.execute("DELETE FROM identity.unmatched_accounts")
        conn.execute(f"INSERT INTO identity.unmatched_accounts {sql}")
    return dict(conn.execute("SELECT problem, count(*) FROM identity.unmatched_accounts GROUP BY 1").fetchall())


def _problems(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, tables: dict[str, str], entities: list[str]) -> None:
    """_problems: what is wrong with the raw records of these entities, whatever the vendor (raw_problems.sql)."""
    sql = read_sql("sync_pipeline.transform", "sql/raw_problems.sql")
    skew = _lit(f"{int(s.max_clock_skew.total_seconds())} seconds")
    source = connector_for(s.type).source
    parts = [sql.format(table=tables[e], id_key=_lit(source.keys(e).id),
                        updated_key=_lit(source.keys(e).updated_at), skew=skew) for e in entities]
    conn.execute("CREATE OR REPLACE TEMP TABLE _problems AS " + " UNION ALL ".join(f"({p})" for p in parts))


def _placeholders(s: SourceSystemRef, tables: dict[str, str]) -> dict[str, str]:
    return dict(tables, instance=_lit(s.name), system_type=_lit(s.type), identifier=_lit(s.identifier),
                identifier_field=_lit(s.identifier_field),
                base_url=_lit(s.base_url if re.match(r"https?://[^\s'\\]+$", s.base_url) else ""))


def _map_clients(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, tables: dict[str, str]) -> None:
    """_accounts_mapped: the clients of `tables["clients"]`, mapped and checked (binding new identifiers)."""
    connector = connector_for(s.type)
    _problems(conn, s, tables, ["clients"])
    for sql in (connector.sql(connector.source.clients_sql), read_sql("sync_pipeline.transform", "sql/identity.sql")):
        conn.execute(sql.format(**_placeholders(s, tables)))


def _map_invoices(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, tables: dict[str, str]) -> None:
    """_invoices_mapped: the invoices (and Zoho's credit notes) of `tables`, against _accounts_mapped."""
    connector = connector_for(s.type)
    _problems(conn, s, tables, [e for e in tables if e != "clients"])
    for sql in (connector.sql(connector.source.invoices_sql), read_sql("sync_pipeline.transform", "sql/invoice_checks.sql")):
        conn.execute(sql.format(**_placeholders(s, tables)))


def _insert_mapped(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, run_id: str, entities: tuple[str, ...]) -> None:
    """Insert what _accounts_mapped / _invoices_mapped hold into staging and its quarantine."""
    if "clients" in entities:
        # the country as typed, and its ISO code when recognised (the key's normalisation matches countries.py)
        conn.execute(f"""INSERT INTO staging.accounts ({_ACCOUNT_COLS}, country_code)
                         SELECT {', '.join('m.' + c.strip() for c in _ACCOUNT_COLS.split(','))}, k.code
                         FROM _accounts_mapped m
                         LEFT JOIN meta.countries k ON k.alias = country_key(m.country)
                         WHERE m.reason = ''""")
    if "invoices" in entities:
        conn.execute(f"INSERT INTO staging.invoices SELECT {_INVOICE_COLS} FROM _invoices_mapped WHERE reason = ''")
    for entity, table, reason_col, disposition in (
        ("clients", "_accounts_mapped", "reason", "rejected"),
        ("clients", "_accounts_mapped", "drift", "kept"),
        ("invoices", "_invoices_mapped", "reason", "rejected"),
    ):
        if entity not in entities:
            continue
        # An id too long to be one (the reason says so) is shown cut short: quarantine rows are read by people,
        # in the UI and the run summary; the payload keeps it whole.
        conn.execute(
            f"""INSERT INTO staging.quarantine
                SELECT ?, ?, m.record_key,
                       CASE WHEN length(m.source_id) > 64 THEN left(m.source_id, 40) || '…' ELSE m.source_id END,
                       m.{reason_col}, ?, m.payload,
                       coalesce(p.first_seen_at, now()), ?
                FROM {table} m
                LEFT JOIN _previous_quarantine p
                  ON p.source_instance = ? AND p.entity = ? AND p.record_key = m.record_key AND p.reason = m.{reason_col}
                WHERE coalesce(m.{reason_col}, '') <> ''""",
            [s.name, entity, disposition, run_id, s.name, entity],
        )


def _stage_system(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, run_id: str) -> dict[str, EntityCounts]:
    source = connector_for(s.type).source
    tables = {entity: ensure_raw_table(conn, s.name, entity) for entity in source.entities}
    _map_clients(conn, s, tables)
    _map_invoices(conn, s, tables)
    _insert_mapped(conn, s, run_id, ("clients", "invoices"))
    counts = {}
    for entity, table in (("clients", "_accounts_mapped"), ("invoices", "_invoices_mapped")):
        extra = ", count(*) FILTER (WHERE coalesce(drift, '') <> '')" if entity == "clients" else ", 0"
        n_in, staged, rejected, flagged = conn.execute(
            f"SELECT count(*), count(*) FILTER (WHERE reason = ''), count(*) FILTER (WHERE reason <> ''){extra} FROM {table}"
        ).fetchone()
        counts[entity] = EntityCounts(n_in, staged, rejected, flagged)
    return counts


def restage(conn: duckdb.DuckDBPyConnection, systems: list[SourceSystemRef], *, run_id: str, after: int,
            upto: int) -> None:
    """Map again only the records the journal names in (after, upto], and what they reach; one transaction."""
    conn.execute(read_sql("sync_pipeline.transform", "sql/staging_macros.sql"))
    with transaction(conn):
        _remember_quarantine(conn)
        for s in systems:
            _restage_system(conn, s, run_id, after, upto)


def _delta(conn: duckdb.DuckDBPyConnection, raw: str, name: str, keys: str) -> str:
    """A temp table with the rows of `raw` whose record_key is in the temp table `keys`."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {raw} "
                 f"WHERE record_key IN (SELECT record_key FROM {keys})")
    return name


def _restage_system(conn: duckdb.DuckDBPyConnection, s: SourceSystemRef, run_id: str, after: int, upto: int) -> None:
    source = connector_for(s.type).source
    raw = {entity: ensure_raw_table(conn, s.name, entity) for entity in source.entities}
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _journal AS SELECT DISTINCT entity, record_key FROM sync.raw_journal
           WHERE system = ? AND seq > ? AND seq <= ?""", [s.name, after, upto])
    (n,) = conn.execute("SELECT count(*) FROM _journal").fetchone()
    if not n:
        return
    instance = {"s": s.name}
    conn.execute("CREATE OR REPLACE TEMP TABLE _touched_accounts (account_id VARCHAR)")
    conn.execute("CREATE OR REPLACE TEMP TABLE _ck AS SELECT record_key FROM _journal WHERE entity = 'clients'")
    (changed_clients,) = conn.execute("SELECT count(*) FROM _ck").fetchone()
    if changed_clients:
        _map_clients(conn, s, {"clients": _delta(conn, raw["clients"], "_delta_clients", "_ck")})
        # The accounts these clients held: their invoices are mapped again. (A staged client is bound, so it keeps
        # its account; one that was not staged had its invoices in quarantine, and those are all mapped again.)
        conn.execute("""INSERT INTO _touched_accounts
                        SELECT account_id FROM staging.accounts
                        WHERE source_instance = $s AND source_id IN (SELECT record_key FROM _ck)""", instance)
        conn.execute("DELETE FROM staging.accounts WHERE source_instance = $s AND source_id IN (SELECT record_key FROM _ck)",
                     instance)
        conn.execute("""DELETE FROM staging.quarantine WHERE source_instance = $s AND entity = 'clients'
                        AND record_key IN (SELECT record_key FROM _ck)""", instance)
        _insert_mapped(conn, s, run_id, ("clients",))
    # Every client of the instance as staged now, in the shape the invoices' SQL joins (a record key is its id;
    # a record with no id is never staged and matches no invoice).
    conn.execute("""CREATE OR REPLACE TEMP TABLE _accounts_mapped AS
                    SELECT source_id, account_id, '' AS reason FROM staging.accounts WHERE source_instance = $s
                    UNION ALL
                    SELECT record_key, NULL, reason FROM staging.quarantine
                    WHERE source_instance = $s AND entity = 'clients' AND disposition = 'rejected'
                      AND record_key NOT LIKE 'nokey:%'""", instance)
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE _ik AS
           SELECT record_key FROM _journal WHERE entity <> 'clients'
           UNION SELECT source_id FROM staging.invoices
                 WHERE source_instance = $s AND account_id IN (SELECT account_id FROM _touched_accounts)
           UNION SELECT record_key FROM staging.quarantine WHERE source_instance = $s AND entity = 'invoices'""",
        instance)
    _map_invoices(conn, s, {e: _delta(conn, t, f"_delta_{e}", "_ik") for e, t in raw.items() if e != "clients"})
    conn.execute("DELETE FROM staging.invoices WHERE source_instance = $s AND source_id IN (SELECT record_key FROM _ik)",
                 instance)
    conn.execute("""DELETE FROM staging.quarantine WHERE source_instance = $s AND entity = 'invoices'
                    AND record_key IN (SELECT record_key FROM _ik)""", instance)
    _insert_mapped(conn, s, run_id, ("invoices",))

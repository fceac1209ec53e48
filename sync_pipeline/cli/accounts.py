"""The list of accounts by invoice status, for the people who chase payments (`sync-pipeline accounts`).

One row per account of `marts.account_metrics_reporting` (amounts in the reporting currency) with its
financial health, its name and contacts from `staging.accounts` and its count of open risk alerts.
Framework-free: a DuckDB connection in, plain data out; the CLI only opens the warehouse and prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

if TYPE_CHECKING:
    import duckdb

BANDS = ("healthy", "at_risk", "critical", "unknown")
# --sort name → ORDER BY (a whitelist: never interpolate user text into SQL). Ties: account_id.
SORTS = {
    "overdue_amount": "overdue_amount DESC",
    "max_days_overdue": "max_days_overdue DESC NULLS LAST",
    "total_due": "total_due DESC",
    "score": "score ASC NULLS LAST",  # worst first; unknown (no score) last
    "name": "lower(name) ASC NULLS LAST",
    "overdue_invoice_count": "overdue_invoice_count DESC",
}
DEFAULT_SORT = "overdue_amount"
DEFAULT_LIMIT = 20
REQUIRED_TABLES = ("marts.account_metrics_reporting", "marts.financial_health", "marts.risk_alerts",
                   "staging.accounts")
NO_METRICS = "no metrics yet: run `sync-pipeline run` first"


class NoMetrics(LookupError):
    """The warehouse holds no computed metrics (no tables yet, or never filled)."""


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    name: str | None
    band: str
    score: int | None
    overdue_invoice_count: int
    overdue_amount: Decimal
    reporting_currency: str
    overdue_since: date | None
    max_days_overdue: int | None
    total_due: Decimal
    total_paid: Decimal
    last_payment_date: date | None
    dso_90d: Decimal | None
    open_alerts: int
    reason: str | None
    email: str | None
    phone: str | None
    unconverted_currencies: tuple[str, ...] = ()


COLUMNS = tuple(f.name for f in fields(AccountRow))


@dataclass(frozen=True)
class AccountsList:
    as_of: date | None
    reporting_currency: str
    total: int                    # accounts matching the band filter (before --limit)
    bands: dict[str, int]         # accounts per band, over all accounts (the filter does not apply)
    accounts: list[AccountRow] = field(default_factory=list)


# One row per account. Name and contacts come from one staging row per account (the most recently
# updated), never mixed across rows; an account without a health row counts as unknown.
_BASE = """
    WITH acc AS (
        SELECT account_id, name, email, phone FROM staging.accounts
        QUALIFY row_number() OVER (PARTITION BY account_id
                                   ORDER BY source_updated_at DESC NULLS LAST, source_instance, source_id) = 1
    ), alerts AS (
        SELECT account_id, count(*) AS n FROM marts.risk_alerts WHERE status = 'open' GROUP BY account_id
    )
    SELECT r.account_id, a.name, coalesce(h.band, 'unknown') AS band, h.score, r.overdue_invoice_count,
           r.overdue_amount, r.reporting_currency, r.overdue_since, r.max_days_overdue, r.total_due,
           r.total_paid, r.last_payment_date, r.dso_90d, coalesce(al.n, 0) AS open_alerts, h.reason,
           a.email, a.phone, r.unconverted_currencies, r.as_of
    FROM marts.account_metrics_reporting r
    LEFT JOIN marts.financial_health h USING (account_id)
    LEFT JOIN acc a USING (account_id)
    LEFT JOIN alerts al USING (account_id)
"""


def _existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()
    return {r[0] for r in rows}


def list_accounts(conn: duckdb.DuckDBPyConnection, *, bands: list[str] | tuple[str, ...] | None = None,
                  sort: str = DEFAULT_SORT, limit: int = DEFAULT_LIMIT) -> AccountsList:
    """Accounts matching `bands` (all when empty), ordered by `sort` then account_id, at most `limit`
    of them (0: all). Raises NoMetrics when the warehouse has no metrics yet."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of: {', '.join(SORTS)}")
    bad = [b for b in bands or () if b not in BANDS]
    if bad:
        raise ValueError(f"unknown band(s) {', '.join(bad)}; one of: {', '.join(BANDS)}")
    if limit < 0:
        raise ValueError("limit must be 0 (all) or more")
    missing = [t for t in REQUIRED_TABLES if t not in _existing_tables(conn)]
    if missing:
        raise NoMetrics(f"{NO_METRICS} (missing {', '.join(missing)})")
    as_of, currency, n = conn.execute(
        "SELECT max(as_of), any_value(reporting_currency), count(*) FROM marts.account_metrics_reporting").fetchone()
    if n == 0:
        raise NoMetrics(NO_METRICS)

    counts = dict(conn.execute(f"SELECT band, count(*) FROM ({_BASE}) GROUP BY band").fetchall())
    band_counts = {b: int(counts.pop(b, 0)) for b in BANDS} | {b: int(c) for b, c in sorted(counts.items())}

    where, params = "", {}
    if bands:
        where, params = "WHERE list_contains($bands, band)", {"bands": sorted(set(bands))}
    (total,) = conn.execute(f"SELECT count(*) FROM ({_BASE}) {where}", params).fetchone()
    sql = f"SELECT * EXCLUDE (as_of) FROM ({_BASE}) {where} ORDER BY {SORTS[sort]}, account_id"
    if limit:
        sql += " LIMIT $limit"
        params["limit"] = limit
    rows = [AccountRow(*row[:-1], unconverted_currencies=tuple(row[-1] or ()))
            for row in conn.execute(sql, params).fetchall()]
    return AccountsList(as_of=as_of, reporting_currency=currency, total=int(total), bands=band_counts,
                        accounts=rows)


# -- output ------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact, e.g. "1234.50"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(result: AccountsList) -> dict[str, Any]:
    """A JSON-ready object: amounts as exact decimal strings, dates ISO 8601."""
    return {
        "as_of": _plain(result.as_of),
        "reporting_currency": result.reporting_currency,
        "total": result.total,
        "bands": dict(result.bands),
        "accounts": [{c: _plain(getattr(a, c)) for c in COLUMNS} for a in result.accounts],
    }


def _amount(value: Decimal | None) -> str:
    # spaces as thousands separators, as in the health reasons: "12 345.60"
    return "-" if value is None else f"{value:,.2f}".replace(",", " ")


def _opt(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return value.isoformat() if isinstance(value, date) else str(value)


def header_line(result: AccountsList) -> str:
    as_of = result.as_of.isoformat() if result.as_of else "?"
    noun = "account" if result.total == 1 else "accounts"
    return (f"{result.total} {noun} (as of {as_of}, amounts in {result.reporting_currency}); "
            f"showing {len(result.accounts)}")


def footer_line(result: AccountsList) -> str:
    parts = [f"{band} {n}" for band, n in result.bands.items()]
    return f"bands (all accounts): {', '.join(parts)}"


def render_table(result: AccountsList) -> str:
    """Header, an aligned table (the columns that matter for chasing a payment) and band counts."""
    lines = [header_line(result)]
    if result.accounts:
        with_unconverted = any(a.unconverted_currencies for a in result.accounts)
        headers = ["account", "name", "band", "score", "overdue", "overdue amount", "overdue since",
                   "max days", "total due", "total paid", "last payment", "DSO 90d", "alerts", "email",
                   "phone", "reason"]
        align = ["left", "left", "left", "right", "right", "right", "left", "right", "right", "right", "left",
                 "right", "right", "left", "left", "left"]
        if with_unconverted:
            headers.append("not converted")
            align.append("left")
        table = []
        for a in result.accounts:
            row = [a.account_id, _opt(a.name), a.band, _opt(a.score), str(a.overdue_invoice_count),
                   _amount(a.overdue_amount), _opt(a.overdue_since), _opt(a.max_days_overdue),
                   _amount(a.total_due), _amount(a.total_paid), _opt(a.last_payment_date),
                   "-" if a.dso_90d is None else f"{a.dso_90d:.1f}", str(a.open_alerts), _opt(a.email),
                   _opt(a.phone), _opt(a.reason)]
            if with_unconverted:
                row.append(", ".join(a.unconverted_currencies) or "-")
            table.append(row)
        lines.append(tabulate(table, headers=headers, colalign=align, disable_numparse=True))
        if with_unconverted:
            lines.append("not converted: amounts in these currencies are left out (no exchange rate)")
    if len(result.accounts) < result.total:
        lines.append(f"({result.total - len(result.accounts)} more; --limit 0 shows all)")
    lines.append(footer_line(result))
    return "\n".join(lines)

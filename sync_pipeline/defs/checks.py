"""Asset checks that guard the staging keys (STYLE 9)."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.defs.resources import warehouse
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES


def _check(asset, name: str, description: str, sql: str, what: str, *, blocking: bool = True):
    """A check passes when `sql` (returning offending keys) returns no row. A blocking check stops
    the writes to targets downstream; a non-blocking one warns."""
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN

    @dg.asset_check(asset=asset, name=name, description=description, blocking=blocking)
    def _c(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse(duckdb) as conn:
            rows = conn.execute(sql).fetchall()
        return dg.AssetCheckResult(
            passed=not rows, severity=severity,
            metadata={"offending": len(rows), "examples": dg.MetadataValue.text(", ".join(str(r[0]) for r in rows[:10]) or "-")},
            description=f"{len(rows)} {what}" if rows else None,
        )

    return _c


def build_staging_checks() -> list:
    return [
        _check(INVOICES, "invoice_key_unique", "Every invoice_key appears once.",
               "SELECT invoice_key FROM staging.invoices GROUP BY 1 HAVING count(*) > 1", "duplicate invoice keys"),
        _check(INVOICES, "invoice_has_account", "Every staged invoice belongs to a staged account.",
               """SELECT i.invoice_key FROM staging.invoices i
                  WHERE NOT EXISTS (SELECT 1 FROM staging.accounts a
                                    WHERE a.account_id = i.account_id AND a.source_instance = i.source_instance)""",
               "invoices without a staged account"),
        _check(ACCOUNTS, "account_unique_per_source", "One row per (account_id, source instance).",
               "SELECT account_id FROM staging.accounts GROUP BY account_id, source_instance HAVING count(*) > 1",
               "accounts staged twice in one source (two records share an identifier)"),
        _check(ACCOUNTS, "no_identifier_drift", "No bound account changed its identifier in the source.",
               "SELECT record_key FROM staging.quarantine WHERE reason LIKE 'identifier drift%'",
               "records whose identifier changed after binding", blocking=False),
    ]

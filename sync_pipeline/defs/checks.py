"""Asset checks that guard the staging keys (STYLE 9)."""


from dataclasses import dataclass

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.defs.metrics import ACCOUNT_METRICS
from sync_pipeline.defs.resources import warehouse_read_only
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES

# Overdue invoices restated from DESIGN §4 on their own, so the metric SQL is checked, not repeated.
_OVERDUE_INVOICES = """
    SELECT i.* FROM staging.invoices i, (SELECT any_value(as_of) AS d FROM marts.account_metrics) m
    WHERE i.status IN ('open', 'partially_paid') AND i.amount_due > 0 AND i.due_date < m.d
      AND i.issue_date <= m.d AND i.kind NOT IN ('proforma', 'estimate')"""


@dataclass(frozen=True)
class _Check:
    """A check passes when `sql` (returning offending keys) returns no row. A blocking check stops the writes to
    targets downstream; a non-blocking one warns."""

    asset: dg.AssetKey
    name: str
    description: str
    sql: str
    what: str
    blocking: bool = True


def _checks(name: str, checks: list[_Check]):
    """The checks of one layer in one step (one read-only connection; a step each cost a run 0.1 s apiece)."""

    @dg.multi_asset_check(
        name=name, pool="duckdb",
        specs=[dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description, blocking=c.blocking)
               for c in checks])
    def _run(duckdb: DuckDBResource):
        with warehouse_read_only(duckdb) as conn:
            for c in checks:
                rows = conn.execute(c.sql).fetchall()
                yield dg.AssetCheckResult(
                    asset_key=c.asset, check_name=c.name, passed=not rows,
                    severity=dg.AssetCheckSeverity.ERROR if c.blocking else dg.AssetCheckSeverity.WARN,
                    metadata={"offending": len(rows),
                              "examples": dg.MetadataValue.text(", ".join(str(r[0]) for r in rows[:10]) or "-")},
                    description=f"{len(rows)} {c.what}" if rows else None,
                )

    return _run


def build_metrics_checks() -> list:
    return [_checks("metrics_checks", [
        _Check(ACCOUNT_METRICS, "overdue_invoice_has_account", "Every overdue invoice belongs to a staged account.",
               f"""SELECT o.invoice_key FROM ({_OVERDUE_INVOICES}) o
                   WHERE NOT EXISTS (SELECT 1 FROM staging.accounts a WHERE a.account_id = o.account_id)""",
               "overdue invoices without a staged account"),
        _Check(ACCOUNT_METRICS, "overdue_amount_matches_invoices",
               "Per account and currency, the overdue amount and count equal the sum over its overdue invoices.",
               f"""WITH o AS (SELECT account_id, currency, sum(amount_due) AS amount, count(*) AS n
                              FROM ({_OVERDUE_INVOICES}) GROUP BY ALL)
                   SELECT coalesce(m.account_id, o.account_id) || ' ' || coalesce(m.currency, o.currency)
                   FROM marts.account_metrics m FULL JOIN o USING (account_id, currency)
                   WHERE coalesce(m.overdue_amount, 0) <> coalesce(o.amount, 0)
                      OR coalesce(m.overdue_invoice_count, 0) <> coalesce(o.n, 0)""",
               "accounts whose overdue figures differ from their invoices"),
        _Check(ACCOUNT_METRICS, "fx_rates_complete",
               "Every invoice currency has a rate to the reporting currency (else it is left out of rolled-up figures).",
               """SELECT DISTINCT m.currency FROM marts.account_metrics m
                  CROSS JOIN (SELECT any_value(reporting_currency) AS rc FROM marts.account_metrics_reporting) x
                  LEFT JOIN marts.fx_rates r ON r.currency = m.currency AND r.reporting_currency = x.rc
                  WHERE m.currency <> x.rc AND r.rate IS NULL""",
               "currencies without an exchange rate", blocking=False),
    ])]


def build_staging_checks() -> list:
    return [_checks("staging_checks", [
        _Check(INVOICES, "no_negative_amount_due", "No invoice has a negative amount due.",
               "SELECT invoice_key FROM staging.invoices WHERE amount_due < 0", "invoices with a negative amount due"),
        _Check(INVOICES, "invoice_key_unique", "Every invoice_key appears once.",
               "SELECT invoice_key FROM staging.invoices GROUP BY 1 HAVING count(*) > 1", "duplicate invoice keys"),
        _Check(INVOICES, "invoice_has_account", "Every staged invoice belongs to a staged account.",
               """SELECT i.invoice_key FROM staging.invoices i
                  WHERE NOT EXISTS (SELECT 1 FROM staging.accounts a
                                    WHERE a.account_id = i.account_id AND a.source_instance = i.source_instance)""",
               "invoices without a staged account"),
        _Check(ACCOUNTS, "account_unique_per_source", "One row per (account_id, source instance).",
               "SELECT account_id FROM staging.accounts GROUP BY account_id, source_instance HAVING count(*) > 1",
               "accounts staged twice in one source (two records share an identifier)"),
        _Check(ACCOUNTS, "no_identifier_drift", "No bound account changed its identifier in the source.",
               "SELECT record_key FROM staging.quarantine WHERE reason LIKE 'identifier drift%'",
               "records whose identifier changed after binding", blocking=False),
    ])]

"""`metrics/account_metrics`: overdue and totals per account and currency, as of the run's date."""


from datetime import date, datetime, timezone

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.defs.resources import warehouse
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES
from sync_pipeline.transform.metrics import metrics_summary, rebuild_account_metrics, worst_accounts

ACCOUNT_METRICS = dg.AssetKey(["metrics", "account_metrics"])


class MetricsConfig(dg.Config):
    as_of: str = ""  # YYYY-MM-DD; empty means today (UTC). Schedules set it to the tick's date.


def resolve_as_of(value: str) -> date:
    return date.fromisoformat(value) if value else datetime.now(timezone.utc).date()


def build_metrics_assets() -> list:
    @dg.asset(
        key=ACCOUNT_METRICS, deps=[ACCOUNTS, INVOICES], group_name="metrics", kinds={"duckdb"}, pool="duckdb",
        description="Per account and currency: total billed (12 months), paid, due, overdue count, amount, "
                    "overdue since and days (DESIGN §4), as of the run's date in UTC.",
    )
    def account_metrics(context: dg.AssetExecutionContext, config: MetricsConfig, duckdb: DuckDBResource):
        as_of = resolve_as_of(config.as_of)
        with warehouse(duckdb) as conn:
            rows = rebuild_account_metrics(conn, as_of=as_of)
            summary = metrics_summary(conn)
            worst = worst_accounts(conn, 10)
        context.log.info(f"metrics as of {as_of}: {rows} rows, {summary['accounts_overdue']} accounts overdue")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "accounts": summary["accounts"],
            "accounts_overdue": summary["accounts_overdue"],
            "overdue_invoices": summary["overdue_invoices"],
            "by_currency": dg.MetadataValue.json(summary["by_currency"]),
            "worst_accounts": dg.MetadataValue.md(worst.to_markdown(index=False) if len(worst) else "_no overdue account_"),
        })

    return [account_metrics]

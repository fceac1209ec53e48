"""`metrics/account_metrics` (per currency and in the reporting currency), `metrics/financial_health`
and `metrics/risk_alerts`, as of the run's date in UTC."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.defs.resources import RunOptions, SyncSettings, warehouse
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES
from sync_pipeline.transform.metrics import (
    evaluate_risk_alerts,
    load_fx_rates,
    metrics_summary,
    rebuild_account_metrics,
    rebuild_financial_health,
    rebuild_reporting_rollup,
    worst_accounts,
)

ACCOUNT_METRICS = dg.AssetKey(["metrics", "account_metrics"])
FINANCIAL_HEALTH = dg.AssetKey(["metrics", "financial_health"])
RISK_ALERTS = dg.AssetKey(["metrics", "risk_alerts"])
METRICS_KEYS = [ACCOUNT_METRICS, FINANCIAL_HEALTH, RISK_ALERTS]
GROUP = "metrics"



def _markdown(df, empty: str) -> str:
    return df.to_markdown(index=False) if len(df) else empty


def build_metrics_assets() -> list:
    @dg.asset(
        key=ACCOUNT_METRICS, deps=[ACCOUNTS, INVOICES], group_name=GROUP, kinds={"duckdb"}, pool="duckdb",
        description="Per account and currency, and rolled up in the reporting currency: total billed (12 months), "
                    "paid, due, overdue count and amount, overdue since, max days overdue, aging buckets, DSO over "
                    "90 days, last payment date (DESIGN §4). A currency with no exchange rate is left out of the "
                    "rolled-up figures and reported.",
    )
    def account_metrics(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
                        duckdb: DuckDBResource):
        settings = sync_settings.load()
        as_of = run_options.as_of_date()
        with warehouse(duckdb) as conn:
            rates = load_fx_rates(conn, settings.metrics, settings.path.parent)
            rows = rebuild_account_metrics(conn, as_of=as_of)
            rollup = rebuild_reporting_rollup(conn, reporting_currency=settings.metrics.reporting_currency)
            summary = metrics_summary(conn)
        for currency, m in rollup.missing_rates.items():
            context.log.warning(f"no exchange rate {currency}→{settings.metrics.reporting_currency}: "
                                f"{m['accounts']} accounts' {currency} amounts left out of the rolled-up figures")
        context.log.info(f"metrics as of {as_of}: {rows} account×currency rows, {rollup.rows} accounts")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "accounts": summary["accounts"],
            "accounts_overdue": summary["accounts_overdue"],
            "overdue_invoices": summary["overdue_invoices"],
            "by_currency": dg.MetadataValue.json(summary["by_currency"]),
            "reporting_currency": dg.MetadataValue.text(settings.metrics.reporting_currency),
            "fx_rates": dg.MetadataValue.json({c: str(r) for c, r in rates.items()}),
            "missing_fx_rates": dg.MetadataValue.json(rollup.missing_rates),
        })

    @dg.asset(
        key=FINANCIAL_HEALTH, deps=[ACCOUNT_METRICS], group_name=GROUP, kinds={"duckdb"}, pool="duckdb",
        description="A score 0–100 and a band (healthy, at_risk, critical, unknown) per account, with the reason in "
                    "words; weights and thresholds from sync.yaml `metrics.health`.",
    )
    def financial_health(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
                         duckdb: DuckDBResource):
        m = sync_settings.load().metrics
        with warehouse(duckdb) as conn:
            bands = rebuild_financial_health(conn, as_of=run_options.as_of_date(),
                                             reporting_currency=m.reporting_currency, health=m.health)
            worst = worst_accounts(conn, 10)
        context.log.info(f"financial health: {bands}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": sum(bands.values()),
            **{f"band_{band}": n for band, n in bands.items()},
            "worst_accounts": dg.MetadataValue.md(_markdown(worst, "_no accounts_")),
        })

    @dg.asset(
        key=RISK_ALERTS, deps=[FINANCIAL_HEALTH], group_name=GROUP, kinds={"duckdb"}, pool="duckdb",
        description="Risk alerts from the rules in sync.yaml `metrics.alerts`: opened once, open while the rule "
                    "holds, resolved (with the date) when it stops holding.",
    )
    def risk_alerts(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
                    duckdb: DuckDBResource):
        rules = sync_settings.load().metrics.alerts
        as_of = run_options.as_of_date()
        with warehouse(duckdb) as conn:
            counts = evaluate_risk_alerts(conn, as_of=as_of, rules=rules)
            open_alerts = conn.execute(
                """SELECT account_id, rule, severity, value, opened_on, last_seen_on FROM marts.risk_alerts
                   WHERE status = 'open' ORDER BY severity = 'critical' DESC, opened_on, account_id LIMIT 10"""
            ).df()
            (total,) = conn.execute("SELECT count(*) FROM marts.risk_alerts").fetchone()
        context.log.info(f"risk alerts as of {as_of}: {counts}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": total,
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "opened": counts["opened"], "open": counts["open"], "resolved": counts["resolved"],
            "open_alerts": dg.MetadataValue.md(_markdown(open_alerts, "_no open alert_")),
        })

    return [account_metrics, financial_health, risk_alerts]

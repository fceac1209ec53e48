"""`metrics/account_metrics` (per currency and in the reporting currency), `metrics/financial_health`
and `metrics/risk_alerts`, as of the run's date in UTC."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.defs.resources import RunOptions, SyncSettings, warehouse
from sync_pipeline.defs.staging import ACCOUNTS, BUILD as STAGING_BUILD, INVOICES
from sync_pipeline.transform.metrics import (
    evaluate_risk_alerts,
    load_fx_rates,
    metrics_summary,
    rebuild_account_metrics,
    rebuild_financial_health,
    rebuild_reporting_rollup,
    worst_accounts,
)
from sync_pipeline.warehouse.builds import Build, fingerprint, forget_build, is_current, last_build, record_build
from sync_pipeline.warehouse.db import read_sql

ACCOUNT_METRICS = dg.AssetKey(["metrics", "account_metrics"])
FINANCIAL_HEALTH = dg.AssetKey(["metrics", "financial_health"])
RISK_ALERTS = dg.AssetKey(["metrics", "risk_alerts"])
METRICS_KEYS = [ACCOUNT_METRICS, FINANCIAL_HEALTH, RISK_ALERTS]
GROUP = "metrics"
# their rows in sync.builds: each table is kept as it is while its inputs are (same staging, same as-of date,
# same settings and SQL), so a run with nothing changed does not recompute them
BUILDS = {ACCOUNT_METRICS: "metrics/account_metrics", FINANCIAL_HEALTH: "metrics/financial_health",
          RISK_ALERTS: "metrics/risk_alerts"}
_SQL = {ACCOUNT_METRICS: ("sql/account_metrics.sql", "sql/account_metrics_reporting.sql"),
        FINANCIAL_HEALTH: ("sql/financial_health.sql",), RISK_ALERTS: ("sql/risk_alerts.sql",)}


def _inputs_fingerprint(conn, key: dg.AssetKey, upstream: str, *settings) -> str | None:
    """The fingerprint of `key`'s inputs: its upstream build as recorded, the settings and its SQL; None when
    the upstream has no recorded build (it failed or was never built), which always rebuilds."""
    up = last_build(conn, upstream)
    if up is None:
        return None
    return fingerprint(BUILDS[key], up.fingerprint, *settings,
                       *(read_sql("sync_pipeline.transform", f) for f in _SQL[key]))


def _kept(conn, key: dg.AssetKey, fp: str | None) -> Build | None:
    return is_current(conn, BUILDS[key], fp) if fp is not None else None


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
        reporting = settings.metrics.reporting_currency
        with warehouse(duckdb) as conn:
            rates = load_fx_rates(conn, settings.metrics, settings.path.parent)
            fp = _inputs_fingerprint(conn, ACCOUNT_METRICS, STAGING_BUILD, as_of.isoformat(), reporting,
                                     sorted((c, str(r)) for c, r in rates.items()))
            kept = _kept(conn, ACCOUNT_METRICS, fp)
            if kept:
                built = kept.summary
                context.log.info("account metrics kept as they were: same staging, date and settings")
            else:
                forget_build(conn, BUILDS[ACCOUNT_METRICS])
                rows = rebuild_account_metrics(conn, as_of=as_of)
                rollup = rebuild_reporting_rollup(conn, reporting_currency=reporting)
                built = {"rows": rows, "rollup_rows": rollup.rows, "missing_rates": rollup.missing_rates,
                         "summary": metrics_summary(conn)}
                if fp is not None:
                    record_build(conn, BUILDS[ACCOUNT_METRICS], fp, context.run.run_id, built)
        rows, summary = built["rows"], built["summary"]
        for currency, m in built["missing_rates"].items():
            context.log.warning(f"no exchange rate {currency}→{settings.metrics.reporting_currency}: "
                                f"{m['accounts']} accounts' {currency} amounts left out of the rolled-up figures")
        context.log.info(f"metrics as of {as_of}: {rows} account×currency rows, {built['rollup_rows']} accounts")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "accounts": summary["accounts"],
            "accounts_overdue": summary["accounts_overdue"],
            "overdue_invoices": summary["overdue_invoices"],
            "by_currency": dg.MetadataValue.json(summary["by_currency"]),
            "reporting_currency": dg.MetadataValue.text(settings.metrics.reporting_currency),
            "fx_rates": dg.MetadataValue.json({c: str(r) for c, r in rates.items()}),
            "missing_fx_rates": dg.MetadataValue.json(built["missing_rates"]),
            "rebuilt": not kept,
        })

    @dg.asset(
        key=FINANCIAL_HEALTH, deps=[ACCOUNT_METRICS], group_name=GROUP, kinds={"duckdb"}, pool="duckdb",
        description="A score 0–100 and a band (healthy, at_risk, critical, unknown) per account, with the reason in "
                    "words; weights and thresholds from sync.yaml `metrics.health`.",
    )
    def financial_health(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
                         duckdb: DuckDBResource):
        m = sync_settings.load().metrics
        as_of = run_options.as_of_date()
        with warehouse(duckdb) as conn:
            fp = _inputs_fingerprint(conn, FINANCIAL_HEALTH, BUILDS[ACCOUNT_METRICS], as_of.isoformat(),
                                     m.reporting_currency, m.health)
            kept = _kept(conn, FINANCIAL_HEALTH, fp)
            if kept:
                bands = kept.summary["bands"]
            else:
                forget_build(conn, BUILDS[FINANCIAL_HEALTH])
                bands = rebuild_financial_health(conn, as_of=as_of, reporting_currency=m.reporting_currency,
                                                 health=m.health)
                if fp is not None:
                    record_build(conn, BUILDS[FINANCIAL_HEALTH], fp, context.run.run_id, {"bands": bands})
            worst = worst_accounts(conn, 10)
        context.log.info(f"financial health: {bands}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": sum(bands.values()),
            **{f"band_{band}": n for band, n in bands.items()},
            "worst_accounts": dg.MetadataValue.md(_markdown(worst, "_no accounts_")),
            "rebuilt": not kept,
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
            fp = _inputs_fingerprint(conn, RISK_ALERTS, BUILDS[FINANCIAL_HEALTH], as_of.isoformat(), rules)
            kept = _kept(conn, RISK_ALERTS, fp)
            if kept:
                # what evaluating the same rules on the same figures and date again reports: nothing opened or
                # resolved by this run
                (n_open,) = conn.execute("SELECT count(*) FROM marts.risk_alerts WHERE status = 'open'").fetchone()
                counts = {"opened": 0, "open": n_open, "resolved": 0}
            else:
                forget_build(conn, BUILDS[RISK_ALERTS])
                counts = evaluate_risk_alerts(conn, as_of=as_of, rules=rules)
                if fp is not None:
                    record_build(conn, BUILDS[RISK_ALERTS], fp, context.run.run_id)
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
            "rebuilt": not kept,
        })

    return [account_metrics, financial_health, risk_alerts]

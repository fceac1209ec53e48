"""Load assets per connection: `<connection>/clients` and `<connection>/deals` (plan, then apply)."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import ConnectionSettings
from sync_pipeline.defs.metrics import FINANCIAL_HEALTH, RISK_ALERTS
from sync_pipeline.defs.resources import SyncSettings, warehouse
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES
from sync_pipeline.load.apply import apply_plan
from sync_pipeline.load.plan import Plan, compute_plan
from sync_pipeline.load.sugester import (
    SugesterClientsWriter,
    SugesterDealsWriter,
    desired_clients_sql,
    desired_deals_sql,
)


class LoadConfig(dg.Config):
    dry_run: bool | None = None  # None: the connection's `dry_run` from sync.yaml


def _plan_markdown(plan: Plan) -> str:
    lines = ["| action | count | examples |", "|---|---|---|"]
    for action in ("create", "recover", "update", "unchanged", "blocked"):
        n = plan.counts.get(action, 0)
        if n:
            lines.append(f"| {action} | {n} | {', '.join(plan.examples(action)) or '-'} |")
    return "\n".join(lines)


def _load_asset(conn_cfg: ConnectionSettings, entity: str, deps: list, desired_sql, writer_cls, description: str):
    name = conn_cfg.name

    @dg.asset(
        key=[name, entity], deps=deps, group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        description=description, tags={"sync/connection": name},
    )
    def _asset(context: dg.AssetExecutionContext, config: LoadConfig, sync_settings: SyncSettings,
               duckdb: DuckDBResource):
        settings = sync_settings.load()
        current = settings.connections[name]
        dry_run = current.dry_run if config.dry_run is None else config.dry_run
        params = {"source": current.source, "connection": name, "dry_run": dry_run,
                  "deal_kinds": list(current.deal_kinds)}
        sql = desired_sql(current)
        with warehouse(duckdb) as conn, sync_settings.sugester(current.target) as api:
            plan = compute_plan(conn, connection=name, entity=entity, desired_sql=sql,
                                params={k: v for k, v in params.items() if f"${k}" in sql})
            context.log.info(f"{name}/{entity} plan: {dict(plan.counts)}" + (" (dry run)" if dry_run else ""))
            result = apply_plan(conn, plan, writer_cls(api), run_id=context.run.run_id, dry_run=dry_run,
                                error_budget=current.error_budget, progress=context.log.info)
        for key, message in result.errors[:5]:
            context.log.warning(f"{name}/{entity} {key} rejected by {current.target}: {message}")
        return dg.MaterializeResult(metadata={
            **result.as_metadata(),
            "dry_run": dry_run,
            "plan": dg.MetadataValue.md(_plan_markdown(plan)),
            "plan_examples": dg.MetadataValue.json(
                {a: plan.examples(a) for a in ("create", "recover", "update", "blocked") if plan.counts.get(a)}),
            "first_errors": dg.MetadataValue.text("\n".join(f"{k}: {m}" for k, m in result.errors[:5]) or "-"),
        })

    return _asset


def load_keys(connection: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([connection, "clients"]), dg.AssetKey([connection, "deals"])]


def build_load_assets(conn_cfg: ConnectionSettings) -> list[dg.AssetsDefinition]:
    clients_key, _ = load_keys(conn_cfg.name)
    return [
        _load_asset(conn_cfg, "clients", [ACCOUNTS, FINANCIAL_HEALTH, RISK_ALERTS], desired_clients_sql, SugesterClientsWriter,
                    f"Staged accounts of {conn_cfg.source} upserted as {conn_cfg.target} clients by account_id."),
        _load_asset(conn_cfg, "deals", [INVOICES, clients_key], desired_deals_sql, SugesterDealsWriter,
                    f"One {conn_cfg.target} deal per {conn_cfg.source} invoice of kinds "
                    f"{', '.join(conn_cfg.deal_kinds)}, ever, linking back to the invoice."),
    ]

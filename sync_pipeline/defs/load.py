"""Load assets per connection, one per entity of its target (`<connection>/clients`, `/deals`,
`/accounts`, `/invoices`): compute the plan against the ledger, then apply it."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import ConnectionSettings
from sync_pipeline.connectors.registry import TargetEntity, connector_for, target_entities
from sync_pipeline.defs.metrics import FINANCIAL_HEALTH, RISK_ALERTS
from sync_pipeline.defs.resources import RunOptions, SyncSettings, warehouse
from sync_pipeline.defs.staging import ACCOUNTS, INVOICES
from sync_pipeline.load.apply import ApplyResult, apply_plan
from sync_pipeline.load.plan import Plan, compute_plan


def _plan_markdown(plan: Plan) -> str:
    lines = ["| action | count | examples |", "|---|---|---|"]
    for action in ("create", "recover", "update", "unchanged", "blocked"):
        n = plan.counts.get(action, 0)
        if n:
            lines.append(f"| {action} | {n} | {', '.join(plan.examples(action)) or '-'} |")
    return "\n".join(lines)


def _metadata(result: ApplyResult, plan: Plan, dry_run: bool) -> dict:
    return {
        **result.as_metadata(),
        "dry_run": dry_run,
        "plan": dg.MetadataValue.md(_plan_markdown(plan)),
        "plan_examples": dg.MetadataValue.json(
            {a: plan.examples(a) for a in ("create", "recover", "update", "blocked") if plan.counts.get(a)}),
        "first_errors": dg.MetadataValue.text("\n".join(f"{k}: {m}" for k, m in result.errors[:5]) or "-"),
    }


def _load_asset(conn_cfg: ConnectionSettings, target_type: str, spec: TargetEntity, deps: list):
    name, entity = conn_cfg.name, spec.name
    connector = connector_for(target_type)

    @dg.asset(
        key=[name, entity], deps=deps, group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        description=spec.description, tags={"sync/connection": name},
    )
    def _asset(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
               duckdb: DuckDBResource):
        settings = sync_settings.load()
        current = settings.connections[name]
        dry_run = run_options.dry_run_for(current.dry_run)
        params = {"source": current.source, "connection": name, "dry_run": dry_run,
                  "deal_kinds": list(current.deal_kinds), "reporting": settings.metrics.reporting_currency}
        sql = connector.payload_sql(spec, current)
        result = ApplyResult()
        plan = None
        try:
            api = sync_settings.client(current.target)
            with warehouse(duckdb) as conn:
                plan = compute_plan(conn, connection=name, entity=entity, desired_sql=sql,
                                    params={k: v for k, v in params.items() if f"${k}" in sql})
                context.log.info(f"{name}/{entity} plan: {dict(plan.counts)}" + (" (dry run)" if dry_run else ""))
                apply_plan(conn, plan, spec.writer(api), run_id=context.run.run_id, dry_run=dry_run,
                           error_budget=current.error_budget,
                           concurrency=settings.systems[current.target].write_concurrency,
                           progress=context.log.info, result=result)
        except Exception as exc:
            # What was written before the failure is in the target and the ledger: say so, do not report 0.
            raise dg.Failure(description=f"{name}/{entity}: {exc}",
                             metadata=_metadata(result, plan, dry_run) if plan else None) from exc
        for key, message in result.errors[:5]:
            context.log.warning(f"{name}/{entity} {key} not written to {current.target}: {message}")
        return dg.MaterializeResult(metadata=_metadata(result, plan, dry_run))

    return _asset


def load_keys(conn_cfg: ConnectionSettings, target_type: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([conn_cfg.name, e.name]) for e in target_entities(target_type)]


def build_load_assets(conn_cfg: ConnectionSettings, target_type: str) -> list[dg.AssetsDefinition]:
    assets = []
    for spec in target_entities(target_type):
        deps = [ACCOUNTS, FINANCIAL_HEALTH, RISK_ALERTS] if spec.needs_metrics else [INVOICES]
        if spec.after:
            deps.append(dg.AssetKey([conn_cfg.name, spec.after]))
        assets.append(_load_asset(conn_cfg, target_type, spec, deps))
    return assets

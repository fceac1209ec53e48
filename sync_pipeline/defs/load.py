"""Load assets per connection, one per entity of its target (`<connection>/clients`, `/deals`,
`/accounts`, `/invoices`): compute the plan against the ledger, then apply it."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import ConnectionSettings, Settings
from sync_pipeline.connectors.registry import TargetEntity, connector_for, target_entities
from sync_pipeline.defs.metrics import BUILDS as METRICS_BUILDS, FINANCIAL_HEALTH, RISK_ALERTS
from sync_pipeline.defs.resources import RunOptions, SyncSettings, mark_dry_run, plan_words, warehouse
from sync_pipeline.defs.staging import ACCOUNTS, BUILD as STAGING_BUILD, INVOICES
from sync_pipeline.defs.twoway import build_twoway_asset, side_asset_key
from sync_pipeline.load.apply import ApplyResult, apply_plan
from sync_pipeline.load.deletions import flag_source_deletions
from sync_pipeline.load.plan import Plan, compute_plan, inputs_fingerprint
from sync_pipeline.load.quota import begin, hold_back, period_bounds, used
from sync_pipeline.load.source_rows import KINDS, source_rows
from sync_pipeline.warehouse.builds import forget_build, is_current, last_build, record_build


def _plan_markdown(plan: Plan) -> str:
    lines = ["| action | count | examples |", "|---|---|---|"]
    for action in ("create", "recover", "update", "unchanged", "blocked", "deleted"):
        n = plan.counts.get(action, 0)
        if n:
            lines.append(f"| {action} | {n} | {', '.join(plan.examples(action)) or '-'} |")
    return "\n".join(lines)


def _metadata(result: ApplyResult, plan: Plan, dry_run: bool, reused: bool = False) -> dict:
    return {
        **plan_words(result.as_metadata(), dry_run),
        "dry_run": dry_run,
        "plan_reused": reused,
        "plan": dg.MetadataValue.md(_plan_markdown(plan)),
        "plan_examples": dg.MetadataValue.json(
            {a: plan.examples(a) for a in ("create", "recover", "update", "blocked") if plan.counts.get(a)}),
        "first_errors": dg.MetadataValue.text("\n".join(f"{k}: {m}" for k, m in result.errors[:5]) or "-"),
    }


class _PlanCache:
    """The last run's plan of one connection and entity, kept in sync.builds with the fingerprint of its inputs.
    It holds again when the inputs are the same: when it has nothing to send, or for a dry run after a dry run
    (whose log rows are copied). A real run that sent everything records the plan as it then stands (all
    unchanged) under the ledger as it then is; a run that left anything failed or unknown records nothing."""

    def __init__(self, conn, *, connection: str, entity: str, desired_sql: str, params: dict, upstream: list[str],
                 ledger_entities: list[str]):
        self.conn, self.connection, self.entity = conn, connection, entity
        self.name = f"plan/{connection}/{entity}"
        self._args = dict(connection=connection, entity=entity, desired_sql=desired_sql, params=params,
                          ledger_entities=ledger_entities)
        builds = [last_build(conn, u) for u in upstream]
        self._upstream = None if any(b is None for b in builds) else [b.fingerprint for b in builds]
        self.fingerprint = self._inputs()

    def _inputs(self) -> str | None:
        if self._upstream is None:  # an upstream table set without a recorded build: never reuse
            return None
        return inputs_fingerprint(self.conn, upstream=self._upstream, **self._args)

    def reusable(self, *, dry_run: bool) -> Plan | None:
        build = is_current(self.conn, self.name, self.fingerprint) if self.fingerprint else None
        if build is None:
            return None
        plan = Plan.from_summary(self.connection, self.entity, build.summary)
        if plan.actionable == 0:
            return plan
        if dry_run and build.summary.get("dry_run") and build.run_id:
            (logged,) = self.conn.execute(
                """SELECT count(*) FROM sync.log WHERE run_id = ? AND connection = ? AND entity = ? AND dry_run
                   AND action LIKE 'plan_%'""", [build.run_id, self.connection, self.entity]).fetchone()
            if logged == plan.actionable:
                return Plan.from_summary(self.connection, self.entity, build.summary, logged_by=build.run_id)
        return None

    def forget(self) -> None:
        forget_build(self.conn, self.name)

    def record(self, plan: Plan, result: ApplyResult, *, dry_run: bool, run_id: str) -> None:
        if dry_run:  # the ledger is as it was: the same inputs give this plan again
            if self.fingerprint:
                record_build(self.conn, self.name, self.fingerprint, run_id, {**plan.summary(), "dry_run": True})
            return
        sent = sum(result.counts.get(k, 0) for k in ("created", "updated", "adopted"))
        if sent == plan.actionable and not result.counts.get("failed") and not result.counts.get("unknown"):
            after = self._inputs()  # the ledger as the writes left it
            if after:
                record_build(self.conn, self.name, after, run_id, {**plan.settled().summary(), "dry_run": False})


def _quota(conn, target_cfg, entity: str, plan: Plan, as_of, run_id: str) -> dict | None:
    """Cut the plan to what the target's quota leaves this period (load/quota.py); None: no quota."""
    limit = (getattr(target_cfg, "quota", None) or {}).get(entity)
    if limit is None:
        return None
    bounds = period_bounds(as_of, target_cfg.quota_period)
    begin(conn, run_id=run_id, system=target_cfg.name, entity=entity, bounds=bounds)
    before = used(conn, system=target_cfg.name, entity=entity, bounds=bounds)
    waiting = hold_back(conn, plan, limit - before)
    return {"quota_limit": limit, "quota_used_before": before, "waiting_for_next_period": waiting,
            "period": target_cfg.quota_period,
            "quota_period": dg.MetadataValue.text(f"{bounds[0]:%Y-%m-%d} .. {bounds[1]:%Y-%m-%d} (UTC, end excluded)")}


def _load_asset(conn_cfg: ConnectionSettings, target_type: str, spec: TargetEntity, deps: list):
    name, entity = conn_cfg.name, spec.name
    connector = connector_for(target_type)
    # the table sets the desired SQL reads, by their builds (sync.builds); raw side tables have none: never reused
    upstream = ([STAGING_BUILD, *(METRICS_BUILDS.values() if spec.needs_metrics else ())] if not spec.source_rows
                else ["raw sides: no build recorded"])

    @dg.asset(
        key=[name, entity], deps=deps, group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        description=spec.description, tags={"sync/connection": name},
    )
    def _asset(context: dg.AssetExecutionContext, run_options: RunOptions, sync_settings: SyncSettings,
               duckdb: DuckDBResource):
        settings = sync_settings.load()
        current = settings.connections[name]
        dry_run = run_options.dry_run_for(current.dry_run)
        if dry_run:
            mark_dry_run(context)
        params = {"source": current.source, "connection": name, "dry_run": dry_run,
                  "deal_kinds": list(current.deal_kinds), "reporting": settings.metrics.reporting_currency}
        sql = connector.payload_sql(spec, current)
        updates = getattr(current, spec.updates_setting) if spec.updates_setting else True
        result = ApplyResult()
        plan = None
        reused = False
        deletions = None
        quota = None
        try:
            api = sync_settings.client(current.target)
            with warehouse(duckdb) as conn:
                used = {k: v for k, v in params.items() if f"${k}" in sql}
                if spec.mirrors and not dry_run:
                    deletions = flag_source_deletions(conn, connection=name, entity=entity, source=current.source,
                                                      source_entity=spec.mirrors, run_id=context.run.run_id)
                    if deletions[0]:
                        context.log.warning(f"{name}/{entity}: {deletions[0]} records deleted in {current.source} "
                                            f"have a copy in {current.target}; left as they are (flagged in "
                                            "sync.deletions)")
                if spec.source_rows:  # the source's clients or products, whatever the vendor
                    read = source_rows(conn, settings.systems[current.source], spec.source_rows, current)
                    if not read:
                        context.log.warning(f"{name}/{entity}: {current.source} has no {spec.source_rows} to send")
                cache = _PlanCache(conn, connection=name, entity=entity, desired_sql=sql,
                                   params={**used, "updates": updates}, upstream=upstream,
                                   ledger_entities=[entity, *([spec.after] if spec.after else [])])
                plan = cache.reusable(dry_run=dry_run)
                reused = plan is not None
                if plan is None:
                    cache.forget()
                    plan = compute_plan(conn, connection=name, entity=entity, desired_sql=sql, params=used,
                                        keep_payloads=not dry_run, updates=updates)
                quota = _quota(conn, settings.systems[current.target], entity, plan, run_options.as_of_date(),
                               context.run.run_id)
                if quota and quota["waiting_for_next_period"]:
                    context.log.warning(f"{name}/{entity}: the {quota['period']} quota of {quota['quota_limit']} is reached; "
                                        f"{quota['waiting_for_next_period']} wait for the next period")
                context.log.info(f"{name}/{entity} plan: {dict(plan.counts)}" + (" (dry run)" if dry_run else "")
                                 + (" (inputs unchanged since the last run: its plan holds)" if reused else ""))
                apply_plan(conn, plan, spec.writer(api), run_id=context.run.run_id, dry_run=dry_run,
                           error_budget=current.error_budget,
                           concurrency=settings.systems[current.target].write_concurrency,
                           progress=context.log.info, result=result, target_system=current.target)
                cache.record(plan, result, dry_run=dry_run, run_id=context.run.run_id)
        except Exception as exc:
            # What was written before the failure is in the target and the ledger: say so, do not report 0.
            raise dg.Failure(description=f"{name}/{entity}: {exc}",
                             metadata=_metadata(result, plan, dry_run, reused) if plan else None) from exc
        for key, message in result.errors[:5]:
            context.log.warning(f"{name}/{entity} {key} not written to {current.target}: {message}")
        meta = _metadata(result, plan, dry_run, reused)
        if quota:
            meta.update(quota)
        if deletions is not None:
            meta.update(deleted_in_source_new=deletions[0], deleted_in_source=deletions[1])
        return dg.MaterializeResult(metadata=meta)

    return _asset


def source_row_keys(settings: Settings, system: str, kind: str) -> list[dg.AssetKey]:
    """The extract assets landing the sides `source_rows` reads for `kind` (clients, products) of `system`."""
    cfg = settings.systems[system]
    keys = {side_asset_key(settings.systems, system, s.entity) for s in connector_for(cfg.type).sides
            if s.entity in KINDS[kind]}
    return sorted(keys, key=lambda k: k.to_user_string())


def load_keys(conn_cfg: ConnectionSettings, target_type: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([conn_cfg.name, e.name]) for e in target_entities(target_type)]


def build_load_assets(conn_cfg: ConnectionSettings, settings: Settings) -> list[dg.AssetsDefinition]:
    target_type = settings.systems[conn_cfg.target].type
    assets = []
    for spec in target_entities(target_type):
        if spec.two_way:
            assets.append(build_twoway_asset(conn_cfg, settings, spec))
            continue
        deps = [ACCOUNTS, FINANCIAL_HEALTH, RISK_ALERTS] if spec.needs_metrics else [INVOICES]
        if spec.source_rows:  # the reads that land the source's sides of this kind
            deps = source_row_keys(settings, conn_cfg.source, spec.source_rows)
        if spec.after:
            deps.append(dg.AssetKey([conn_cfg.name, spec.after]))
        assets.append(_load_asset(conn_cfg, target_type, spec, deps))
    return assets

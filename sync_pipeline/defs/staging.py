"""`staging/accounts`, `staging/invoices`, `staging/quarantine`: one rebuild from raw, one transaction."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import Settings
from sync_pipeline.defs.extract import extract_keys
from sync_pipeline.defs.resources import warehouse
from sync_pipeline.transform.staging import (SourceSystemRef, rebuild_unmatched_accounts, staging_stats,
                                            update_staging)
from sync_pipeline.warehouse.builds import forget_build, last_build, record_build

GROUP = "staging"
ACCOUNTS = dg.AssetKey(["staging", "accounts"])
INVOICES = dg.AssetKey(["staging", "invoices"])
QUARANTINE = dg.AssetKey(["staging", "quarantine"])
UNMATCHED = dg.AssetKey(["staging", "unmatched_accounts"])
STAGING_KEYS = [ACCOUNTS, INVOICES, QUARANTINE, UNMATCHED]
BUILD = "staging"  # its row in sync.builds


def _quarantine_preview(conn):
    """The newest quarantined records: a Markdown table for the UI, and rows for the CLI summary."""
    df = conn.execute(
        """SELECT source_instance AS system, entity, coalesce(source_id, record_key) AS record, reason, disposition
           FROM staging.quarantine ORDER BY first_seen_at DESC, record LIMIT 10"""
    ).df()
    markdown = df.to_markdown(index=False) if len(df) else "_nothing in quarantine_"
    return markdown, df.head(5).to_dict(orient="records")


def build_staging_assets(settings: Settings) -> list:
    sources = [SourceSystemRef(s.name, s.type, s.identifier, getattr(s, "identifier_field", ""), s.max_clock_skew,
                               s.resolved_base_url())
               for s in settings.source_systems.values()]
    upstream = [k for s in settings.source_systems.values() for k in extract_keys(s)]
    upstream += [dg.AssetKey([s.name, "invoice_history"]) for s in sources if settings.history_start_for(s.name)]

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(ACCOUNTS, deps=upstream, group_name=GROUP, kinds={"duckdb"},
                         description="One row per account and source instance, keyed by the immutable account_id."),
            dg.AssetSpec(INVOICES, deps=upstream, group_name=GROUP, kinds={"duckdb"},
                         description="Canonical invoices (DESIGN §3), amounts as DECIMAL(18,2)."),
            dg.AssetSpec(QUARANTINE, deps=upstream, group_name=GROUP, kinds={"duckdb"},
                         description="Records that could not be mapped, with the reason and the raw payload."),
        ],
        pool="duckdb",
        name="staging",
    )
    def staging(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with warehouse(duckdb) as conn:
            last = last_build(conn, BUILD)
            forget_build(conn, BUILD)  # recorded again once the tables are up to date
            build = update_staging(conn, sources, run_id=context.run.run_id, last=last.summary if last else None)
            record_build(conn, BUILD, build.fingerprint, context.run.run_id, build.summary)
            stats = staging_stats(conn, sources)
            if build.mode == "kept":
                # nothing changed in any source's raw records, the configuration or the SQL since the last build
                context.log.info("staging kept as it was: no source changed since it was last built")
            elif build.mode == "incremental":
                context.log.info("staging updated incrementally: only the records that changed since the last "
                                 "build, and what they reach, were mapped again")
            per_system = {
                name: {entity: vars(c) for entity, c in entities.items()} for name, entities in stats.per_system.items()
            }
            for name, entities in per_system.items():
                for entity, c in entities.items():
                    context.log.info(f"{name}/{entity}: in {c['records_in']} = staged {c['staged']} + "
                                     f"quarantined {c['quarantined']} (flagged {c['flagged']})")
            preview, examples = _quarantine_preview(conn)
        yield dg.MaterializeResult(asset_key=ACCOUNTS, metadata={
            "dagster/row_count": stats.total("clients", "staged"),
            "records_in": stats.total("clients", "records_in"),
            "quarantined": stats.total("clients", "quarantined"),
            "identifier_drift": stats.total("clients", "flagged"),
            "per_system": dg.MetadataValue.json(per_system),
            "rebuilt": build.mode != "kept",
            "build": build.mode,
        })
        yield dg.MaterializeResult(asset_key=INVOICES, metadata={
            "dagster/row_count": stats.total("invoices", "staged"),
            "records_in": stats.total("invoices", "records_in"),
            "quarantined": stats.total("invoices", "quarantined"),
            "per_system": dg.MetadataValue.json(per_system),
        })
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
            "dagster/row_count": stats.total("clients", "quarantined") + stats.total("invoices", "quarantined")
                                 + stats.total("clients", "flagged"),
            "preview": dg.MetadataValue.md(preview),
            "examples": dg.MetadataValue.json(examples),
        })

    @dg.asset(
        key=UNMATCHED, deps=[ACCOUNTS, QUARANTINE], group_name=GROUP, kinds={"duckdb"}, pool="duckdb",
        description="Source customers that are not synced: no account identifier (e.g. the Zoho custom field is "
                    "empty), or identifier drift (kept on its original account). `sync-pipeline unmatched` lists them.",
    )
    def unmatched_accounts(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with warehouse(duckdb) as conn:
            problems = rebuild_unmatched_accounts(conn)
            df = conn.execute(
                """SELECT system, source_id, name, problem, reason, invoices_held FROM identity.unmatched_accounts
                   ORDER BY problem, system, name LIMIT 20""").df()
        total = sum(problems.values())
        if total:
            context.log.info(f"{total} source customers are not synced: {problems}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": total,
            "no_identifier": problems.get("no_identifier", 0),
            "identifier_drift": problems.get("identifier_drift", 0),
            "preview": dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "_every customer is matched_"),
        })

    return [staging, unmatched_accounts]

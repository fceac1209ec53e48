"""`<connection>/user_pairing`: the users of a connection's two systems, paired by login and e-mail, read live
from both APIs into sync.user_pairing (for connections whose systems both have a users endpoint)."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import ConnectionSettings
from sync_pipeline.defs.resources import SyncSettings, warehouse
from sync_pipeline.load.user_pairing import compute_report, has_user_pairing, preview_markdown, write_report


def user_pairing_keys(conn_cfg: ConnectionSettings, source_type: str, target_type: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([conn_cfg.name, "user_pairing"])] if has_user_pairing(source_type, target_type) else []


def build_user_pairing_assets(conn_cfg: ConnectionSettings, source_type: str, target_type: str,
                              after: list[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The asset, after the connection's loads `after`: it reads none of them, but a sync's first error
    should be the sync's own (a wrong token fails the extract, not this report)."""
    if not has_user_pairing(source_type, target_type):
        return []
    name = conn_cfg.name

    @dg.asset(
        key=[name, "user_pairing"], deps=after, group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        tags={"sync/connection": name},
        description=(f"Users of {conn_cfg.source} and {conn_cfg.target} paired by identical login and e-mail (the "
                     "condition for switching between the two apps); the others with what differs."),
    )
    def _asset(context: dg.AssetExecutionContext, sync_settings: SyncSettings, duckdb: DuckDBResource):
        # Both APIs are read before the warehouse is opened: the DuckDB writer is held only to store the rows.
        report = compute_report(sync_settings.load(), name, sync_settings.client)
        with warehouse(duckdb) as conn:
            write_report(conn, report, run_id=context.run.run_id)
        differences = report.differences()
        context.log.info(f"{name}/user_pairing: {report.paired} paired, {len(report.unpaired)} unpaired "
                         f"{differences}")
        return dg.MaterializeResult(metadata={
            "paired": report.paired,
            "unpaired": len(report.unpaired),
            **{f"unpaired_{kind}": n for kind, n in differences.items()},
            "dagster/row_count": len(report.rows),
            "preview": dg.MetadataValue.md(preview_markdown(report)),
        })

    return [_asset]

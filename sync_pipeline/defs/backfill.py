"""`<connection>_backfill_job`: one month of the source's invoice history, then what leads to the connection's loads
(staging, metrics, the loads, and the asset checks that gate them), in one run per month partition.
`sync-pipeline backfill` runs it month by month (cli/backfill.py)."""


import dagster as dg

from sync_pipeline.config import ConnectionSettings, SourceSystem
from sync_pipeline.connectors.registry import source_of


def backfill_job_name(connection: str) -> str:
    return f"{connection}_backfill_job"


def history_key(source: str) -> dg.AssetKey:
    return dg.AssetKey([source, "invoice_history"])


def build_backfill_job(conn: ConnectionSettings, source: SourceSystem, connection_job_selection: dg.AssetSelection,
                       load_keys: list[dg.AssetKey]):
    """The connection job's assets that lead to its loads, the loads included, with the month's history read in
    place of the invoice change reads. The asset checks of those assets come along: the blocking ones stop the
    writes to the target as in every sync. Reports that only follow the loads (unmatched accounts, user pairing)
    are left to the next sync. The history asset is the only partitioned one, so the job is partitioned by its
    months; the unpartitioned assets run once in each month's run."""
    changes = dg.AssetSelection.assets(*[dg.AssetKey([source.name, s.asset])
                                         for s in source_of(source.type).streams_staged_as("invoices")])
    to_loads = dg.AssetSelection.assets(*load_keys).upstream().required_multi_asset_neighbors()
    return dg.define_asset_job(
        name=backfill_job_name(conn.name),
        selection=(connection_job_selection & to_loads) - changes | dg.AssetSelection.assets(history_key(source.name)),
        description=f"Historical sync of {conn.source} → {conn.target}, one month per run: that month's invoices "
                    "(replacing their window), then staging, metrics and the loads, clients first. "
                    "`sync-pipeline backfill` runs it over a range and resumes where it stopped.",
        tags={"sync/connection": conn.name},
    )

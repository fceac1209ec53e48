"""Extract assets per source system: `<system>/clients`, `<system>/invoice_changes` (incremental,
cursor minus a re-read lag) and `<system>/invoice_history` (monthly partitions, window replaced)."""


from datetime import date, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import SourceSystem
from sync_pipeline.connectors._http import ApiError
from sync_pipeline.connectors._prefetch import prefetched
from sync_pipeline.connectors.registry import Stream, source_of
from sync_pipeline.defs.resources import SyncSettings, warehouse
from sync_pipeline.warehouse.raw import LandingStats, RawLanding, read_cursor


def _landing_metadata(stats: LandingStats, pages: int, since) -> dict:
    return {
        "records_received": stats.received,
        "records_landed": stats.landed,
        "records_without_id": stats.without_id,
        "duplicates_identical": stats.duplicates,
        "superseded_in_read": stats.superseded,
        "conflicting_duplicates": stats.conflicts,
        "records_from_future": stats.from_future,
        "records_changed": stats.changed,
        "pages_requested": pages,
        "changed_since": dg.MetadataValue.text(since.isoformat() if since else "(full read)"),
        "cursor": dg.MetadataValue.text(stats.cursor.isoformat() if stats.cursor else "(none)"),
    }


def _incremental_asset(system: SourceSystem, stream: Stream, description: str):
    name, entity, keys, method = system.name, stream.entity, stream.keys, stream.read_changed

    @dg.asset(
        key=[name, stream.asset], group_name=name, kinds={"api", "duckdb"}, pool="duckdb", description=description,
        tags={"sync/system": name},
    )
    def _asset(context: dg.AssetExecutionContext, sync_settings: SyncSettings, duckdb: DuckDBResource):
        current = sync_settings.load().systems[name]
        api = sync_settings.client(name)
        with warehouse(duckdb) as conn:
            cursor = read_cursor(conn, name, entity)
            since = cursor - current.reread_lag if cursor else None
            landing = RawLanding(conn, system=name, entity=entity, run_id=context.run.run_id, keys=keys,
                                 max_clock_skew=current.max_clock_skew)
            try:
                for page in prefetched(getattr(api, method)(updated_since=since)):
                    landing.add_page(page)
            except ApiError:
                # Keep what was fetched (e.g. until a daily API limit); the cursor stays, so the next
                # run reads again from the same point and resumes.
                kept = landing.commit(advance_cursor=False)
                context.log.warning(f"{name}/{entity}: stopped after {kept.received} records; they are kept")
                raise
            stats = landing.commit(advance_cursor=True)
            context.log.info(f"{name}/{entity}: {stats.received} records in {api.pages_requested} pages since {since}")
            return dg.MaterializeResult(metadata=_landing_metadata(stats, api.pages_requested, since))

    return _asset


def _history_asset(system: SourceSystem, history_start: date):
    name = system.name
    source = source_of(system.type)
    partitions = dg.MonthlyPartitionsDefinition(
        start_date=history_start.replace(day=1).isoformat(), timezone="UTC", end_offset=1,
    )

    @dg.asset(
        key=[name, "invoice_history"], group_name=name, kinds={"api", "duckdb"}, pool="duckdb",
        partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
        tags={"sync/system": name},
        description=f"Invoices of {name} by month of issue date. Materialising a month replaces exactly that "
                    "window in the raw table, so backfills and re-runs never duplicate.",
    )
    def _asset(context: dg.AssetExecutionContext, sync_settings: SyncSettings, duckdb: DuckDBResource):
        window = context.partition_time_window  # a single run may cover a range of months
        date_from, date_to = window.start.date(), window.end.date() - timedelta(days=1)
        skew = sync_settings.load().systems[name].max_clock_skew
        api = sync_settings.client(name)
        with warehouse(duckdb) as conn:
            landing = RawLanding(conn, system=name, entity="invoices", run_id=context.run.run_id,
                                 keys=source.keys("invoices"), max_clock_skew=skew)
            for page in prefetched(getattr(api, source.history_reader)(date_from=date_from, date_to=date_to)):
                landing.add_page(page)
            stats = landing.commit(window=(date_from, date_to))
            meta = _landing_metadata(stats, api.pages_requested, None)
            meta.update(window=dg.MetadataValue.text(f"{date_from} .. {date_to}"), rows_replaced=stats.replaced_window)
            return dg.MaterializeResult(metadata=meta)

    return _asset


def build_extract_assets(system: SourceSystem, history_start: date | None) -> list[dg.AssetsDefinition]:
    assets = [
        _incremental_asset(system, stream, f"{stream.entity.capitalize()} of {system.name} changed since the last run "
                                           f"(minus the re-read lag of {system.reread_lag}).")
        for stream in source_of(system.type).streams
    ]
    if history_start is not None:
        assets.append(_history_asset(system, history_start))
    return assets


def extract_keys(system: SourceSystem) -> list[dg.AssetKey]:
    """The unpartitioned extract assets a connection job runs."""
    return [dg.AssetKey([system.name, stream.asset]) for stream in source_of(system.type).streams]

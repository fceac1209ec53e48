"""Extract assets per source system: `<system>/clients`, `<system>/invoice_changes` (incremental,
cursor minus a re-read lag) and `<system>/invoice_history` (monthly partitions, window replaced)."""


from datetime import date, datetime, timedelta, timezone

import dagster as dg
from dagster_duckdb import DuckDBResource

from sync_pipeline.config import SourceSystem
from sync_pipeline.connectors._http import ApiError
from sync_pipeline.connectors._prefetch import prefetched
from sync_pipeline.connectors.registry import Stream, side_streams, source_of
from sync_pipeline.defs.resources import SyncSettings, warehouse
from sync_pipeline.warehouse.raw import DEFAULT_CLOCK_SKEW, LandingStats, RawLanding, read_cursor
from sync_pipeline.warehouse.scans import page_keys, record_scan, scan_due


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


def _incremental_asset(system, stream: Stream, description: str, *, staged: bool = True):
    """`staged`: False for a two-way side of a system that is no source (its records are never staged)."""
    name, entity, keys, method = system.name, stream.entity, stream.keys, stream.read_changed

    @dg.asset(
        key=[name, stream.asset], group_name=name, kinds={"api", "duckdb"}, pool="duckdb", description=description,
        tags={"sync/system": name},
    )
    def _asset(context: dg.AssetExecutionContext, sync_settings: SyncSettings, duckdb: DuckDBResource):
        current = sync_settings.load().systems[name]
        api = sync_settings.client(name)
        skew = getattr(current, "max_clock_skew", DEFAULT_CLOCK_SKEW)
        with warehouse(duckdb) as conn:
            cursor = read_cursor(conn, name, entity)
            since = cursor - getattr(current, "reread_lag", timedelta(0)) if cursor else None
            started = datetime.now(timezone.utc)
            landing = RawLanding(conn, system=name, entity=entity, run_id=context.run.run_id, keys=keys,
                                 max_clock_skew=skew, journal=staged)
            seen: list[str] = []  # a full read is a key scan too
            try:
                for page in prefetched(getattr(api, method)(updated_since=since)):
                    landing.add_page(page)
                    if since is None and stream.scan:
                        seen.extend(page_keys(page, keys.id))
            except ApiError:
                # Keep what was fetched (e.g. until a daily API limit); the cursor stays, so the next
                # run reads again from the same point and resumes.
                kept = landing.commit(advance_cursor=False)
                context.log.warning(f"{name}/{entity}: stopped after {kept.received} records; they are kept")
                raise
            stats = landing.commit(advance_cursor=True)
            pages = api.pages_requested
            context.log.info(f"{name}/{entity}: {stats.received} records in {pages} pages since {since}")
            meta = _landing_metadata(stats, pages, since)
            if stream.scan and (since is None or scan_due(conn, name, entity, current.key_scan_every)):
                if since is not None:
                    full = (RawLanding(conn, system=name, entity=entity, run_id=context.run.run_id, keys=keys,
                                       max_clock_skew=skew, journal=staged) if stream.scan_lands else None)
                    for page in prefetched(getattr(api, stream.scan)()):
                        seen.extend(page_keys(page, keys.id))
                        if full is not None:
                            full.add_page(page)
                    if full is not None:
                        meta["records_changed_in_scan"] = full.commit(advance_cursor=False).changed
                found = record_scan(conn, system=name, entity=entity, keys=seen, run_id=context.run.run_id,
                                    started_at=started)
                context.log.info(f"{name}/{entity}: key scan found {found} records "
                                 f"({api.pages_requested - pages} pages)")
                meta["key_scan_found"] = found
            return dg.MaterializeResult(metadata=meta)

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
        # A run may cover a range of months (a UI backfill: BackfillPolicy.single_run()). Each month is read and
        # committed on its own, and its materialization carries that month's counts only: partition-scoped
        # metadata, instead of the range's figures stamped on every month.
        skew = sync_settings.load().systems[name].max_clock_skew
        api = sync_settings.client(name)
        with warehouse(duckdb) as conn:
            months = context.partition_keys
            for key in months:
                window = partitions.time_window_for_partition_key(key)
                date_from, date_to = window.start.date(), window.end.date() - timedelta(days=1)
                pages_before = api.pages_requested
                landing = RawLanding(conn, system=name, entity="invoices", run_id=context.run.run_id,
                                     keys=source.keys("invoices"), max_clock_skew=skew)
                for page in prefetched(getattr(api, source.history_reader)(date_from=date_from, date_to=date_to)):
                    landing.add_page(page)
                stats = landing.commit(window=(date_from, date_to))
                meta = _landing_metadata(stats, api.pages_requested - pages_before, None)
                meta.update(window=dg.MetadataValue.text(f"{date_from} .. {date_to}"),
                            rows_replaced=stats.replaced_window)
                context.add_asset_metadata(meta, partition_key=key)
                if len(months) > 1:  # a range run says where it is
                    context.log.info(f"{name}/invoice_history {key[:7]}: {stats.received} invoices received, "
                                     f"{stats.landed} landed, {stats.replaced_window} replaced")
        return dg.MaterializeResult()

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


def build_side_assets(system) -> list[dg.AssetsDefinition]:
    """The raw reads of a system's two-way sides that are no source stream (`<system>/clients` of Sugester,
    `<system>/products` of Billy), never staged."""
    return [_incremental_asset(system, stream, f"{stream.entity.capitalize()} of {system.name} changed since the "
                               "last run, read for the two-way sync (never staged), with a nightly full key scan "
                               "that shows deletions.", staged=False)
            for stream in side_streams(system.type)]


def side_keys(system) -> list[dg.AssetKey]:
    return [dg.AssetKey([system.name, stream.asset]) for stream in side_streams(system.type)]

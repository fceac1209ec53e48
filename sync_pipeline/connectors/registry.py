"""System type → connector: everything the pipeline knows of one vendor, declared in its folder.

Every layer asks here (extract streams and their raw keys, staging SQL, target entities, the client
factory, the sandbox's credentials, the default schedule); no other module branches on a type string.
Adding a vendor is one folder under `connectors/` and one line in `_CONNECTORS`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from sync_pipeline.warehouse.db import read_sql
from sync_pipeline.warehouse.raw import RawKeys

if TYPE_CHECKING:
    from sync_pipeline.config import ConnectionSettings
    from sync_pipeline.connectors._http import HttpApi


@dataclass(frozen=True)
class Stream:
    """One incrementally read list of a source: raw table `raw.<system>_<entity>`, asset `<system>/<asset>`."""

    entity: str                 # raw entity: clients, invoices, creditnotes
    asset: str                  # asset name: clients, invoice_changes, creditnote_changes
    read_changed: str           # client method yielding pages changed since a time: (updated_since=) -> pages
    keys: RawKeys = RawKeys()
    staged_as: str = "invoices"  # canonical entity it feeds: clients or invoices (credit notes are invoices)
    # client method yielding every record's id (and what else it returns) with no filter: the full key scan
    # that shows which records were deleted at the source (run when due, see `key_scan_every`)
    scan: str | None = None
    # the scan returns whole records (an API with no field selection, such as Billy's): they are landed too, so
    # what changed without a timestamp (an old invoice paid late) is caught by the scan
    scan_lands: bool = False


@dataclass(frozen=True)
class Source:
    """A system that is read: its streams and the SQL from its raw tables to the canonical model."""

    streams: tuple[Stream, ...]
    clients_sql: str            # produces _clients (file in the connector's folder)
    invoices_sql: str           # produces _invoices_mapped
    history_reader: str = "iter_invoice_pages_issued_between"  # (date_from=, date_to=) -> pages

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(s.entity for s in self.streams)

    def keys(self, entity: str) -> RawKeys:
        return next(s.keys for s in self.streams if s.entity == entity)

    def streams_staged_as(self, canonical: str) -> tuple[Stream, ...]:
        return tuple(s for s in self.streams if s.staged_as == canonical)


@dataclass(frozen=True)
class TargetEntity:
    """One entity a target receives, in load order: asset `<connection>/<name>`, ledger entity `<name>`."""

    name: str
    payload_sql: str                                        # file in the connector's folder: (our_key, payload, blocked)
    writer: Callable[[Any], Any]                            # api client -> TargetWriter
    needs_metrics: bool                                     # runs after the metrics assets
    after: str | None                                       # entity loaded first (its ledger rows may be read by payload_sql)
    description: str
    render: Callable[[str, ConnectionSettings], str] | None = None  # fills placeholders of payload_sql
    # synced both ways by the two-way engine (load/twoway.py) between the sides of source and target
    # (RecordSide), instead of being planned from payload_sql against the ledger
    two_way: bool = False
    updates_setting: str | None = None  # a connection setting that, when false, leaves records as created (update_deals)
    # the source's raw entity each record mirrors, keyed `<source>:<id>` (deals mirror invoices): a source record
    # deleted at the source (gone from its key scan) is flagged in sync.deletions, its copy left as it is
    mirrors: str | None = None
    # its records come from the source system's sides, whatever the vendor (load/source_rows.py: "clients" or
    # "products" into _source_<kind>), not from staging; the plan is never reused (its inputs are raw tables)
    source_rows: str | None = None


@dataclass(frozen=True)
class RecordSide:
    """What a system offers to a two-way entity (DESIGN §5a, load/twoway.py): its records in raw, mapped by
    `mapping_sql` to the canonical columns (the `_clients` shape of staging), and a writer when it can be
    written. A system that is not a source reads its side through `stream` (landed, never staged)."""

    entity: str                                             # the two-way entity (load/entities.py): clients, ...
    mapping_sql: str                                        # file in the connector's folder producing `output`
    # (api client[, connection settings]) -> SideWriter; None: read only
    writer: Callable[..., Any] | None = None
    stream: Stream | None = None                            # for a system that is not a source
    raw: str | None = None                                  # the raw entity it reads (default: `entity`)
    output: str = "_clients"                                # the table its mapping SQL creates
    # the vendor's fields a custom mapping may name (VENDOR_APIS), and a pattern for custom fields (cf_123)
    fields: frozenset[str] = frozenset()
    field_pattern: str | None = None
    field_pattern_help: str = ""
    # what the mapping SQL needs from the connection (e.g. {invoice_link}): connection settings -> placeholders
    placeholders: Callable[[Any], Mapping[str, str]] | None = None
    # (api client, id) -> the record as a list read lands it, or None when this system has no such record of this
    # entity: one record on demand (sync-record)
    fetch: Callable[[Any, str], dict | None] | None = None
    # api client -> the fields this instance really has (custom fields differ per instance): a custom mapping is
    # checked against it when a run starts, beyond the documented fields checked at load
    live_fields: Callable[[Any], set[str]] | None = None

    @property
    def raw_entity(self) -> str:
        return self.raw or (self.stream.entity if self.stream is not None else self.entity)

    def has_field(self, name: str) -> bool:
        return name in self.fields or bool(self.field_pattern and re.fullmatch(self.field_pattern, name))


@dataclass(frozen=True)
class Connector:
    types: tuple[str, ...]                                  # system types it serves (one API, several names)
    package: str                                            # where its SQL files live
    build_client: Callable[..., HttpApi]                    # (system settings[, session]) -> API client
    sandbox_credentials: Callable[[Any], Mapping[str, str]]  # system settings -> Sandbox(**credentials)
    source: Source | None = None
    targets: tuple[TargetEntity, ...] = ()
    sides: tuple[RecordSide, ...] = ()                      # entities it can sync both ways
    default_schedule: str = "every_3_hours"                 # of a connection into this target
    open_session: Callable[[Any], Any] | None = None        # system settings -> a session its clients share
    users_reader: str | None = None                         # client method yielding pages of users (user pairing)
    label: str = field(default="", compare=False)           # how people call it ("Sugester")
    # a target whose connections may take any system as their source (it reads the source's sides, not staging)
    side_sourced: bool = False

    def sql(self, name: str) -> str:
        return read_sql(self.package, name)

    def payload_sql(self, entity: TargetEntity, connection: ConnectionSettings) -> str:
        sql = self.sql(entity.payload_sql)
        return entity.render(sql, connection) if entity.render else sql


class UnknownSystemType(LookupError):
    pass


# One line per vendor folder.
_CONNECTORS = (
    "sync_pipeline.connectors.fakturownia.connector",
    "sync_pipeline.connectors.zoho_invoice.connector",
    "sync_pipeline.connectors.sugester.connector",
    "sync_pipeline.connectors.customersuccessbox.connector",
    "sync_pipeline.connectors.billy.connector",
    "sync_pipeline.connectors.simply_crm.connector",
    "sync_pipeline.connectors.invoice2go_zapier.connector",
)


@cache
def _by_type() -> dict[str, Connector]:
    found: dict[str, Connector] = {}
    for module in _CONNECTORS:
        connector: Connector = importlib.import_module(module).CONNECTOR
        for t in connector.types:
            if t in found:
                raise RuntimeError(f"system type {t!r} is declared by two connectors")
            found[t] = connector
    return found


def known_types() -> tuple[str, ...]:
    return tuple(_by_type())


def connector_for(system_type: str) -> Connector:
    try:
        return _by_type()[system_type]
    except KeyError:
        raise UnknownSystemType(f"no connector for system type {system_type!r} (known: "
                                f"{', '.join(sorted(_by_type()))})") from None


def source_of(system_type: str) -> Source:
    source = connector_for(system_type).source
    if source is None:
        raise UnknownSystemType(f"system type {system_type!r} cannot be a source")
    return source


def target_entities(system_type: str) -> tuple[TargetEntity, ...]:
    targets = connector_for(system_type).targets
    if not targets:
        raise UnknownSystemType(f"system type {system_type!r} cannot be a target")
    return targets


def side_of(system_type: str, entity: str) -> RecordSide | None:
    """The system's side of a two-way entity, or None when it has none."""
    return next((s for s in connector_for(system_type).sides if s.entity == entity), None)


def side_streams(system_type: str) -> tuple[Stream, ...]:
    """The streams a system's two-way sides read beyond its source streams (each once: two sides may share one)."""
    connector = connector_for(system_type)
    own = {s.asset for s in connector.source.streams} if connector.source else set()
    out: dict[str, Stream] = {}
    for side in connector.sides:
        if side.stream is not None and side.stream.asset not in own:
            out.setdefault(side.stream.asset, side.stream)
    return tuple(out.values())


def build_client(system: Any) -> HttpApi:
    """The API client of a configured system (its secrets must be resolved)."""
    return connector_for(system.type).build_client(system)

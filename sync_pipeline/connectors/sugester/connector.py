"""Sugester (CRM, VENDOR_APIS §2) as a target: clients both ways with the source's clients (load/twoway.py),
metric fields on linked clients, one deal per invoice."""

from __future__ import annotations

from sync_pipeline.connectors._side_writer import fetcher
from sync_pipeline.connectors.registry import Connector, RecordSide, Stream, TargetEntity
from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.connectors.sugester.side import clients_writer
from sync_pipeline.connectors.sugester.target import (SugesterClientMetricsWriter, SugesterDealsWriter,
                                                      render_client_metrics)


def _client(cfg) -> SugesterClient:
    return SugesterClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                          api_token=cfg.api_token.get_secret_value(), **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"sugester_token": cfg.api_token.get_secret_value()}


CONNECTOR = Connector(
    types=("sugester",),
    label="Sugester",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    users_reader="iter_user_pages",  # inferred endpoint [I]: the user pairing report
    sides=(
        # Sugester is read only for this: its clients are landed in raw.<system>_clients, never staged
        RecordSide("clients", "clients.sql", clients_writer,
                   stream=Stream("clients", "clients", "iter_client_pages", staged_as="clients",
                                 scan="iter_client_pages"),
                   fetch=fetcher(lambda api, i: api.get_client(int(i)), str.isdigit)),
    ),
    targets=(
        TargetEntity("clients", "", None, False, None,
                     "Clients both ways between the source and Sugester: created and edited on either side, paired "
                     "by key, tax number or e-mail, conflicts decided by the declared winner, deletions flagged.",
                     two_way=True),
        TargetEntity("client_metrics", "client_metrics_payload.sql", SugesterClientMetricsWriter, True, "clients",
                     "The connection's metric fields written onto each linked Sugester client.",
                     render=render_client_metrics),
        TargetEntity("deals", "deals_payload.sql", SugesterDealsWriter, False, "clients",
                     "One Sugester deal per invoice of the selected kinds, ever, linking back to the invoice; kept "
                     "current when the invoice's status or amount changes (update_deals), never re-created once "
                     "deleted in Sugester.",
                     updates_setting="update_deals", mirrors="invoices"),
    ),
    default_schedule="every_3_hours",
)

"""Sugester (CRM, VENDOR_APIS §2) as a target: clients upserted by account_id, one deal per invoice."""

from __future__ import annotations

from sync_pipeline.connectors.registry import Connector, TargetEntity
from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.connectors.sugester.target import SugesterClientsWriter, SugesterDealsWriter, render_clients


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
    targets=(
        TargetEntity("clients", "clients_payload.sql", SugesterClientsWriter, True, None,
                     "Staged accounts upserted as Sugester clients by account_id, with mapped metric fields.",
                     render=render_clients),
        TargetEntity("deals", "deals_payload.sql", SugesterDealsWriter, False, "clients",
                     "One Sugester deal per invoice of the selected kinds, ever, linking back to the invoice."),
    ),
    default_schedule="every_3_hours",
)

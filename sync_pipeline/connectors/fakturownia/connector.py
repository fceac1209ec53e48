"""Fakturownia / InvoiceOcean (one API on two domains, VENDOR_APIS §1) as a source: clients and invoices."""

from __future__ import annotations

from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.connectors.registry import Connector, Source, Stream


def _client(cfg) -> FakturowniaClient:
    return FakturowniaClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                             api_token=cfg.api_token.get_secret_value(), per_page=cfg.per_page, **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"fakturownia_token": cfg.api_token.get_secret_value()}


CONNECTOR = Connector(
    types=("fakturownia", "invoiceocean"),
    label="Fakturownia",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    source=Source(
        streams=(Stream("clients", "clients", "iter_client_pages", staged_as="clients"),
                 Stream("invoices", "invoice_changes", "iter_invoice_pages")),
        clients_sql="clients.sql",
        invoices_sql="invoices.sql",
    ),
)

"""Fakturownia / InvoiceOcean (one API on two domains, VENDOR_APIS §1) as a source of clients and invoices,
and one side of the two-way client sync."""

from __future__ import annotations

from sync_pipeline.connectors._side_writer import fetcher
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.connectors.fakturownia.side import clients_writer
from sync_pipeline.connectors.registry import Connector, RawKeys, RecordSide, Source, Stream


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
    users_reader="iter_user_pages",  # inferred endpoint [I]: the user pairing report
    source=Source(
        streams=(Stream("clients", "clients", "iter_client_pages", staged_as="clients", scan="iter_client_pages"),
                 Stream("invoices", "invoice_changes", "iter_invoice_pages", scan="iter_invoice_keys")),
        clients_sql="clients.sql",
        invoices_sql="invoices.sql",
    ),
    sides=(RecordSide("clients", "clients.sql", clients_writer,
                      fetch=fetcher(lambda api, i: api.get_client(int(i)), str.isdigit)),
           # products, read for targets that take them from any system (Invoice2go); never written
           RecordSide("products", "products.sql", None, output="_rows",
                      stream=Stream("products", "products", "iter_changed_product_pages",
                                    RawKeys("id", "updated_at", "created_at"), staged_as="products",
                                    scan="iter_product_pages"))),  # clients are written too (two-way sync)
)

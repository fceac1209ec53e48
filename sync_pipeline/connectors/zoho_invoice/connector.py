"""Zoho Invoice (API v3, OAuth2 refresh tokens, VENDOR_APIS §5) as a source: contacts, invoices, credit notes."""

from __future__ import annotations

from sync_pipeline.connectors.registry import Connector, RawKeys, RecordSide, Source, Stream
from sync_pipeline.connectors.zoho_invoice.client import ZohoInvoiceClient, ZohoOAuth


def oauth_session(cfg) -> ZohoOAuth:
    """One OAuth session per system and step: access tokens live an hour and a refresh token may hold only 30
    live ones, so every client of the step shares it (SyncSettings owns and closes it)."""
    return ZohoOAuth(system=cfg.name, accounts_url=cfg.resolved_accounts_url(), client_id=cfg.client_id,
                     client_secret=cfg.client_secret.get_secret_value(),
                     refresh_token=cfg.refresh_token.get_secret_value(), timeout=cfg.timeout_seconds,
                     retry=cfg.http_options()["retry"])


def _client(cfg, oauth: ZohoOAuth | None = None) -> ZohoInvoiceClient:
    if oauth is None:
        opts = cfg.http_options()
        return ZohoInvoiceClient.from_credentials(
            system=cfg.name, api_url=cfg.resolved_base_url(), accounts_url=cfg.resolved_accounts_url(),
            organization_id=cfg.organization_id, client_id=cfg.client_id,
            client_secret=cfg.client_secret.get_secret_value(), refresh_token=cfg.refresh_token.get_secret_value(),
            per_page=cfg.per_page, **opts)
    return ZohoInvoiceClient(system=cfg.name, api_url=cfg.resolved_base_url(), organization_id=cfg.organization_id,
                             oauth=oauth, per_page=cfg.per_page, **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"zoho_client_id": cfg.client_id, "zoho_client_secret": cfg.client_secret.get_secret_value(),
            "zoho_refresh_token": cfg.refresh_token.get_secret_value(), "zoho_organization_id": cfg.organization_id}


_MODIFIED = "last_modified_time"
CONNECTOR = Connector(
    types=("zoho_invoice",),
    label="Zoho Invoice",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    open_session=oauth_session,
    source=Source(
        streams=(Stream("clients", "clients", "iter_client_pages", RawKeys("contact_id", _MODIFIED, "date"),
                        staged_as="clients"),
                 Stream("invoices", "invoice_changes", "iter_invoice_pages", RawKeys("invoice_id", _MODIFIED, "date")),
                 Stream("creditnotes", "creditnote_changes", "iter_creditnote_pages",
                        RawKeys("creditnote_id", _MODIFIED, "date"))),
        clients_sql="clients.sql",
        invoices_sql="invoices.sql",
    ),
    sides=(RecordSide("clients", "clients.sql"),),  # read only: a two-way client sync can only take from it
)

"""Build the API client of a configured system (framework-free; the Dagster resource and tests use it)."""

from __future__ import annotations

from sync_pipeline.config import (
    CustomerSuccessBoxSystem,
    FakturowniaSystem,
    SugesterSystem,
    System,
    ZohoInvoiceSystem,
)
from sync_pipeline.systems._http import HttpApi
from sync_pipeline.systems.fakturownia import FakturowniaClient
from sync_pipeline.systems.sugester import SugesterClient


def build_client(cfg: System) -> HttpApi:
    opts = cfg.http_options()
    if isinstance(cfg, FakturowniaSystem):
        return FakturowniaClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                                 api_token=cfg.api_token.get_secret_value(), per_page=cfg.per_page, **opts)
    if isinstance(cfg, SugesterSystem):
        return SugesterClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                              api_token=cfg.api_token.get_secret_value(), **opts)
    if isinstance(cfg, ZohoInvoiceSystem):
        from sync_pipeline.systems.zoho_invoice import ZohoInvoiceClient

        return ZohoInvoiceClient(
            system=cfg.name, api_url=cfg.resolved_base_url(), accounts_url=cfg.resolved_accounts_url(),
            organization_id=cfg.organization_id, client_id=cfg.client_id,
            client_secret=cfg.client_secret.get_secret_value(), refresh_token=cfg.refresh_token.get_secret_value(),
            per_page=cfg.per_page, **opts)
    if isinstance(cfg, CustomerSuccessBoxSystem):
        from sync_pipeline.systems.customersuccessbox import CustomerSuccessBoxClient

        opts.pop("timeout", None)
        return CustomerSuccessBoxClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                                        api_key=cfg.api_key.get_secret_value(), timeout=cfg.timeout_seconds, **opts)
    raise TypeError(f"{cfg.name}: no client for system type {cfg.type!r}")

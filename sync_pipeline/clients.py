"""Build the API client of a configured system (framework-free; the Dagster resource and tests use it)."""

from __future__ import annotations

import hashlib
import threading

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


# Zoho access tokens live an hour and a refresh token may hold only 30 live ones: one OAuth session
# per configured Zoho system and process, shared by every client built here, keeps a token until it
# expires instead of asking for a new one per asset and run.
_ZOHO_SESSIONS: dict[tuple[str, ...], object] = {}
_ZOHO_LOCK = threading.Lock()


def _zoho_oauth(cfg: ZohoInvoiceSystem, retry):
    from sync_pipeline.systems.zoho_invoice import ZohoOAuth

    secret, refresh = cfg.client_secret.get_secret_value(), cfg.refresh_token.get_secret_value()
    key = (cfg.name, cfg.resolved_accounts_url(), cfg.client_id,
           hashlib.sha256(f"{secret}\0{refresh}".encode()).hexdigest())  # a changed secret means a new session
    with _ZOHO_LOCK:
        session = _ZOHO_SESSIONS.get(key)
        if session is None:
            session = ZohoOAuth(system=cfg.name, accounts_url=cfg.resolved_accounts_url(), client_id=cfg.client_id,
                                client_secret=secret, refresh_token=refresh, timeout=cfg.timeout_seconds, retry=retry)
            _ZOHO_SESSIONS[key] = session
        return session


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
            per_page=cfg.per_page, oauth=_zoho_oauth(cfg, opts["retry"]), **opts)
    if isinstance(cfg, CustomerSuccessBoxSystem):
        from sync_pipeline.systems.customersuccessbox import CustomerSuccessBoxClient

        opts.pop("timeout", None)
        return CustomerSuccessBoxClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                                        api_key=cfg.api_key.get_secret_value(), timeout=cfg.timeout_seconds, **opts)
    raise TypeError(f"{cfg.name}: no client for system type {cfg.type!r}")

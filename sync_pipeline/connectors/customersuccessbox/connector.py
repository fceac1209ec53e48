"""CustomerSuccessBox (push-only API, VENDOR_APIS §6) as a target: accounts with metrics, and their invoices."""

from __future__ import annotations

from sync_pipeline.connectors.customersuccessbox.client import CustomerSuccessBoxClient
from sync_pipeline.connectors.customersuccessbox.target import accounts_writer, invoices_writer
from sync_pipeline.connectors.registry import Connector, TargetEntity


def _client(cfg) -> CustomerSuccessBoxClient:
    opts = cfg.http_options()
    opts.pop("timeout", None)
    return CustomerSuccessBoxClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                                    api_key=cfg.api_key.get_secret_value(), timeout=cfg.timeout_seconds, **opts)


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"csb_api_key": cfg.api_key.get_secret_value()}


CONNECTOR = Connector(
    types=("customersuccessbox",),
    label="CustomerSuccessBox",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    targets=(
        TargetEntity("accounts", "accounts_payload.sql", accounts_writer, True, None,
                     "Accounts pushed to CustomerSuccessBox by account_id, with overdue metrics and health."),
        TargetEntity("invoices", "invoices_payload.sql", invoices_writer, False, "accounts",
                     "Every invoice of a pushed account, with its status in CustomerSuccessBox's words."),
    ),
    default_schedule="nightly",  # CSB's own Zoho sync runs at midnight GMT
)

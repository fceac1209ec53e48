"""Invoice2go through Zapier catch hooks (VENDOR_APIS §7) as a target: clients and products of any configured
system (its sides: Fakturownia/InvoiceOcean, Sugester, Billy, Simply CRM and Zoho Invoice clients;
Fakturownia/InvoiceOcean, Billy and Simply CRM products), each sent once, within the plan's quota per period."""

from __future__ import annotations

from sync_pipeline.connectors.invoice2go_zapier.client import Invoice2goZapier, hook_url
from sync_pipeline.connectors.invoice2go_zapier.target import clients_writer, products_writer
from sync_pipeline.connectors.registry import Connector, TargetEntity


def _client(cfg) -> Invoice2goZapier:
    hooks = {}
    for entity in ("clients", "products"):
        secret = getattr(cfg, f"{entity}_hook_url")
        if secret is not None:
            hooks[entity] = (hook_url(secret.get_secret_value(), cfg.base_url), f"{entity}_hook_url")
    return Invoice2goZapier(system=cfg.name, hooks=hooks, **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {}


CONNECTOR = Connector(
    types=("invoice2go_zapier",),
    label="Invoice2go (Zapier)",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    side_sourced=True,
    targets=(
        TargetEntity("clients", "clients_payload.sql", clients_writer, False, None,
                     "Each client of the source posted once to the clients hook; the Zap creates it in Invoice2go. "
                     "Within the plan's quota: the rest wait for the next period.",
                     updates_setting="send_updates", source_rows="clients"),
        TargetEntity("products", "products_payload.sql", products_writer, False, "clients",
                     "Each product of the source posted once to the products hook; the Zap creates it in Invoice2go. "
                     "Within the plan's quota: the rest wait for the next period.",
                     updates_setting="send_updates", source_rows="products"),
    ),
    default_schedule="every_3_hours",
)

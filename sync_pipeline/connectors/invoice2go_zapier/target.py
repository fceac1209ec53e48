"""The writer of one entity into Invoice2go through its Zapier hook (load/apply.py TargetWriter).

A record is sent once, ever (the ledger keeps it); with `send_updates` an edited record is sent again, and the
Zap then creates another record in Invoice2go (nothing can update one through Zapier). Nothing comes back from
Invoice2go, so there is nothing to look up after a lost answer."""

from __future__ import annotations

from sync_pipeline.connectors.invoice2go_zapier.client import Invoice2goZapier
from sync_pipeline.load.plan import PlanItem


class HookWriter:
    def __init__(self, api: Invoice2goZapier, entity: str):
        self.hook = api.hook(entity)

    def create(self, item: PlanItem) -> str:
        return self.hook.deliver(item.payload)

    def update(self, target_id: str, item: PlanItem) -> None:
        self.hook.deliver(item.payload)

    def find(self, item: PlanItem) -> str | None:
        return None


def clients_writer(api: Invoice2goZapier) -> HookWriter:
    return HookWriter(api, "clients")


def products_writer(api: Invoice2goZapier) -> HookWriter:
    return HookWriter(api, "products")

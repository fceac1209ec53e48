"""CustomerSuccessBox as a target: the writers that push accounts and invoices (payloads: the SQL beside this).

CSB upserts by id (account_id, invoice_id), so a push is its own crash recovery: there is nothing to
look up, and sending a record again is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from sync_pipeline.connectors.customersuccessbox.client import CustomerSuccessBoxClient
from sync_pipeline.load.plan import PlanItem


class UpsertWriter:
    """A TargetWriter for an endpoint that upserts by our key."""

    def __init__(self, push: Callable[[dict], object]):
        self._push = push

    def create(self, item: PlanItem) -> str:
        self._push(item.payload)
        return item.our_key

    def update(self, target_id: str, item: PlanItem) -> None:
        self._push(item.payload)

    def find(self, item: PlanItem) -> str | None:
        return None  # an upsert needs no lookup: "create" again is the recovery


def accounts_writer(api: CustomerSuccessBoxClient) -> UpsertWriter:
    return UpsertWriter(api.push_account)


def invoices_writer(api: CustomerSuccessBoxClient) -> UpsertWriter:
    return UpsertWriter(api.push_invoice)

"""CustomerSuccessBox as a target: desired accounts and invoices (SQL), and the writers that push them.

CSB upserts by id (account_id, invoice_id), so a push is its own crash recovery: there is nothing to
look up, and sending a record again is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from sync_pipeline.config import ConnectionSettings
from sync_pipeline.load.plan import PlanItem
from sync_pipeline.systems.customersuccessbox import CustomerSuccessBoxClient
from sync_pipeline.warehouse.db import read_sql


def desired_accounts_sql(connection: ConnectionSettings) -> str:
    return read_sql("sync_pipeline.load", "sql/csb_accounts.sql")


def desired_invoices_sql(connection: ConnectionSettings) -> str:
    return read_sql("sync_pipeline.load", "sql/csb_invoices.sql")


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

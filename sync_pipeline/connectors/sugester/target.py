"""Sugester as a target: the writers that send clients and deals (their payloads are the SQL beside this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.load.metric_fields import json_object_pairs, metric_joins
from sync_pipeline.load.plan import PlanItem

if TYPE_CHECKING:
    from sync_pipeline.config import ConnectionSettings

OUR_KEY_NAME = "sync_pipeline"  # the key under which our id travels in Sugester's external_ids


def render_clients(sql: str, connection: ConnectionSettings) -> str:
    """Clients with the connection's metric fields (custom fields) filled from the metrics marts."""
    return sql.format(metric_joins=metric_joins("a.account_id"),
                      metric_fields=json_object_pairs(connection.metric_fields))


class SugesterClientsWriter:
    def __init__(self, api: SugesterClient):
        self.api = api

    def create(self, item: PlanItem) -> str:
        return str(self.api.create_client(item.payload)["id"])

    def update(self, target_id: str, item: PlanItem) -> None:
        self.api.update_client(int(target_id), item.payload)

    def find(self, item: PlanItem) -> str | None:
        found = self.api.find_client_by_external_id(item.our_key)
        return str(found["id"]) if found else None


class SugesterDealsWriter:
    def __init__(self, api: SugesterClient):
        self.api = api

    def create(self, item: PlanItem) -> str:
        return str(self.api.create_deal(item.payload)["id"])

    def update(self, target_id: str, item: PlanItem) -> None:
        self.api.update_deal(int(target_id), item.payload)

    def find(self, item: PlanItem) -> str | None:
        found = self.api.find_deal_by_external_id(
            client_id=item.payload["client_id"], key=OUR_KEY_NAME, value=item.our_key
        )
        return str(found["id"]) if found else None

"""Sugester as a target: the writers of the metric fields on linked clients and of deals (payloads: the SQL
beside this). Clients themselves sync both ways (side.py, load/twoway.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.connectors.sugester.side import OUR_KEY_NAME
from sync_pipeline.load.metric_fields import json_object_pairs, metric_joins
from sync_pipeline.load.plan import PlanItem

if TYPE_CHECKING:
    from sync_pipeline.config import ConnectionSettings


def render_client_metrics(sql: str, connection: ConnectionSettings) -> str:
    """Metric fields (custom fields) from the metrics marts; no rows when the connection maps none."""
    pairs = json_object_pairs(connection.metric_fields).removeprefix(", ")
    return sql.format(metric_joins=metric_joins("a.account_id"), metric_fields=pairs,
                      has_fields="true" if connection.metric_fields else "false")


class SugesterClientMetricsWriter:
    """Writes only the metric fields onto the linked client: it exists (the link says so), so a 'create' in
    the ledger's sense is the first update of that client."""

    def __init__(self, api: SugesterClient):
        self.api = api

    def create(self, item: PlanItem) -> str:
        client_id = item.payload["client_id"]
        self.api.update_client(client_id, item.payload["fields"])
        return str(client_id)

    def update(self, target_id: str, item: PlanItem) -> None:
        self.create(item)

    def find(self, item: PlanItem) -> str | None:
        return str(item.payload["client_id"])


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

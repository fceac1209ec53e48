"""Fakturownia clients as one side of the two-way client sync: our key travels in `external_id` [V]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_pipeline.connectors._side_writer import RecordWriter, rails_client
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient


def _payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
    return rails_client(fields) | ({"external_id": our_key} if our_key else {})


def clients_writer(api: FakturowniaClient, connection: object = None) -> RecordWriter:
    return RecordWriter(api.create_client, api.update_client, api.find_client_by_external_id, _payload)

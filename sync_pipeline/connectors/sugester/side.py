"""Sugester clients as one side of the two-way client sync: our key travels in `external_ids` under
`sync_pipeline` and in `external_id` [V]; the street number stays in `street` (Fakturownia has one field)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_pipeline.connectors._side_writer import RecordWriter, rails_client
from sync_pipeline.connectors.sugester.client import SugesterClient

OUR_KEY_NAME = "sync_pipeline"  # the key under which our id travels in Sugester's external_ids


def _payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
    payload = rails_client(fields) | {"street_no": None}
    if our_key:
        payload |= {"external_id": our_key, "external_ids": {OUR_KEY_NAME: our_key}}
    return payload


def clients_writer(api: SugesterClient, connection: object = None) -> RecordWriter:
    return RecordWriter(api.create_client, api.update_client, api.find_client_by_external_id, _payload)

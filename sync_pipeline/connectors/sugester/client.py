"""Sugester CRM client: client and deal lookups by external id, creates and updates, paged reads."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sync_pipeline.connectors._http import BadResponseError
from sync_pipeline.connectors._token_param import TokenParamApi, check_account, record_id


def base_url_for(account: str) -> str:
    return f"https://{check_account(account)}.sugester.pl"


class SugesterClient(TokenParamApi):
    """Sugester's API follows Fakturownia's conventions (same vendor); every path starts with /app/."""

    def iter_client_pages(self) -> Iterator[list[dict]]:
        return self._iter_array_pages("/app/clients.json", {})

    def iter_deal_pages(self, *, client_id: int | None = None) -> Iterator[list[dict]]:
        params = {} if client_id is None else {"client_id": record_id(client_id)}
        return self._iter_array_pages("/app/deals.json", params)

    def find_client_by_external_id(self, external_id: str) -> dict | None:
        # The filter is undocumented, so results are matched exactly and paged: if the server ignored the
        # filter, stopping at page 1 would miss the client and the caller would create a duplicate.
        for page in self._iter_array_pages("/app/clients.json", {"external_id": external_id}):
            for client in page:
                if isinstance(client, dict) and _same(client.get("external_id"), external_id):
                    return client
        return None

    def find_deal_by_external_id(self, *, client_id: int, key: str, value: str) -> dict | None:
        for page in self.iter_deal_pages(client_id=client_id):
            for deal in page:
                ids = deal.get("external_ids") if isinstance(deal, dict) else None
                if isinstance(ids, Mapping) and _same(ids.get(key), value):
                    return deal
        return None

    def create_client(self, client: Mapping[str, Any]) -> dict:
        return self._save("POST", "/app/clients.json", "client", client)

    def update_client(self, client_id: int, client: Mapping[str, Any]) -> dict:
        return self._save("PUT", f"/app/clients/{record_id(client_id)}.json", "client", client)

    def create_deal(self, deal: Mapping[str, Any]) -> dict:
        return self._save("POST", "/app/deals.json", "deal", deal)

    def update_deal(self, deal_id: int, deal: Mapping[str, Any]) -> dict:
        return self._save("PUT", f"/app/deals/{record_id(deal_id)}.json", "deal", deal)

    def _save(self, method: str, path: str, root: str, record: Mapping[str, Any]) -> dict:
        # POST keeps the default (not retried on 5xx/timeouts: a repeat could create a second record); PUT is.
        data = self._write(method, path, {root: dict(record)})
        if isinstance(data, dict) and set(data) == {root} and isinstance(data[root], dict):
            data = data[root]  # tolerate a Rails-style {"client": {...}} wrapper
        if not isinstance(data, dict):
            endpoint = self.endpoint_label(method, path)
            text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
            raise BadResponseError(f"{self.system}: {endpoint} expected the saved object; got {text[:120]}",
                                   system=self.system, endpoint=endpoint, body_excerpt=text[:300])
        return data


def _same(found: Any, wanted: Any) -> bool:
    # Ids come back as numbers or strings depending on how they were written; compare as strings.
    return found is not None and str(found) == str(wanted)

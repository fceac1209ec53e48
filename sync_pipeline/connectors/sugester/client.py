"""Sugester CRM client: client and deal lookups by external id, creates and updates, paged reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sync_pipeline.connectors._http import parse_timestamp
from sync_pipeline.connectors._token_param import TokenParamApi, check_account, record_id, same_id


def base_url_for(account: str) -> str:
    return f"https://{check_account(account)}.sugester.pl"


class SugesterClient(TokenParamApi):
    """Sugester's API follows Fakturownia's conventions (same vendor); every path starts with /app/."""

    def check_connection(self) -> str:
        """The connection status: one cheap authenticated read that writes nothing, the first page of clients
        with one client at most (GET /app/clients.json, per_page=1 [V]). Returns e.g. "reachable, token
        accepted, clients readable"; raises the typed ApiError (AuthError for a rejected token, ...)."""
        data = self._get("/app/clients.json", {"page": 1, "per_page": 1})
        if not isinstance(data, list):
            raise self._bad_body("/app/clients.json", "expected a JSON array", data)
        return "reachable, token accepted, clients readable"

    def iter_client_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Clients as received; with `updated_since`, newest first (`order=updated_at.desc`, the Rails
        convention Sugester shares with Fakturownia [I]) until an older one: a server that ignores the order
        is noticed and read whole, so no change is missed."""
        if updated_since is None:
            return self._iter_array_pages("/app/clients.json", {})
        pages = self._iter_array_pages("/app/clients.json", {"order": "updated_at.desc"})
        return self.changed_since_newest_first(pages, updated_since,
                                               lambda c: parse_timestamp(c.get("updated_at")), "/app/clients.json")

    def iter_deal_pages(self, *, client_id: int | None = None) -> Iterator[list[dict]]:
        params = {} if client_id is None else {"client_id": record_id(client_id)}
        return self._iter_array_pages("/app/deals.json", params)

    def iter_user_pages(self) -> Iterator[list[dict]]:
        """The account's users, {id, login, email, name} as received. The endpoint is inferred [I] (VENDOR_APIS
        documents none): GET /app/users.json, paged like every list."""
        return self._iter_array_pages("/app/users.json", {})

    def iter_department_pages(self) -> Iterator[list[dict]]:
        """Departments, {id, name}. Clients carry `department_id` [V]; the list endpoint is inferred [I]:
        GET /app/departments.json, paged like every list."""
        return self._iter_array_pages("/app/departments.json", {})

    def find_client_by_external_id(self, external_id: str) -> dict | None:
        """A client carrying `external_id` in external_id or in external_ids (our key travels in both)."""
        return self._find_in_list("/app/clients.json", {"external_id": external_id},
                                  lambda c: same_id(c.get("external_id"), external_id)
                                  or any(same_id(v, external_id) for v in _external_ids(c).values()))

    def find_deal_by_external_id(self, *, client_id: int, key: str, value: str) -> dict | None:
        return self._find_in_list("/app/deals.json", {"client_id": record_id(client_id)},
                                  lambda d: same_id(_external_ids(d).get(key), value))

    def get_client(self, client_id: int) -> dict:
        return self._get(f"/app/clients/{record_id(client_id)}.json")

    def create_client(self, client: Mapping[str, Any]) -> dict:
        return self._save("POST", "/app/clients.json", "client", client)

    def update_client(self, client_id: int, client: Mapping[str, Any]) -> dict:
        return self._save("PUT", f"/app/clients/{record_id(client_id)}.json", "client", client)

    def create_deal(self, deal: Mapping[str, Any]) -> dict:
        return self._save("POST", "/app/deals.json", "deal", deal)

    def update_deal(self, deal_id: int, deal: Mapping[str, Any]) -> dict:
        return self._save("PUT", f"/app/deals/{record_id(deal_id)}.json", "deal", deal)


def _external_ids(record: dict) -> Mapping[str, Any]:
    ids = record.get("external_ids")
    return ids if isinstance(ids, Mapping) else {}

"""Sugester CRM simulator: clients and deals under /app/ over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ._http_sim import HttpError, Request, Response, Simulator, json_response, page_args, paginate
from .demo_data import decimal_str, rails_time, token_for
from .demo_users import sugester_users

BLANK = "- nie może być puste"
_NOT_A_NUMBER = "- nie jest liczbą"
_READ_ONLY = frozenset({"id", "created_at", "updated_at", "api_token", "try_update"})
# Rails decimal columns render as strings ("14760.0"), whatever number type the caller sent.
_DECIMALS = frozenset({"price", *(f"decimal{i}" for i in range(1, 11))})
_EXTERNAL_IDS_ARG = re.compile(r"external_ids\[(.+)\]")
DEPARTMENTS = ({"id": 301, "name": "Sprzedaż"}, {"id": 302, "name": "Oddział Kraków"})  # demo [I]
_PHONE_SEPARATORS = re.compile(r"[\s().-]")


class SugesterSim(Simulator):
    """In-memory Sugester account with clients and deals."""

    name = "sugester"

    def __init__(self, *, api_token: str, max_rps: float | None = None, clock_start: datetime | None = None):
        super().__init__(max_rps=max_rps, clock_start=clock_start)
        self.api_token = api_token
        self.clients: dict[int, dict] = {}
        self.deals: dict[int, dict] = {}
        self.users: dict[int, dict] = {u["id"]: u for u in sugester_users()}  # inferred endpoint [I]
        self._next = {"client": 884_001, "deal": 51_001}
        r = self.route
        r("GET", r"/app/clients\.json", lambda req: self._list(req, self.clients))
        r("GET", r"/app/departments\.json", lambda req: paginate(list(DEPARTMENTS), *page_args(req)))
        r("POST", r"/app/clients\.json", self._create_client)
        r("GET", r"/app/clients/(\d+)\.json", lambda req: self._get(req, self.clients))
        r("PUT", r"/app/clients/(\d+)\.json", self._update_client)
        r("DELETE", r"/app/clients/(\d+)\.json", lambda req: self._delete(req, self.clients))
        r("GET", r"/app/deals\.json", lambda req: self._list(req, self.deals))
        r("POST", r"/app/deals\.json", self._create_deal)
        r("GET", r"/app/deals/(\d+)\.json", lambda req: self._get(req, self.deals))
        r("PUT", r"/app/deals/(\d+)\.json", self._update_deal)
        r("DELETE", r"/app/deals/(\d+)\.json", lambda req: self._delete(req, self.deals))
        # Not in VENDOR_APIS (inferred [I]): a bare array in id order, paged like every list.
        r("GET", r"/app/users\.json", lambda req: paginate([self.users[i] for i in sorted(self.users)],
                                                             *page_args(req)))

    def authenticate(self, req: Request) -> bool:
        return req.param("api_token") == self.api_token

    def record_counts(self) -> dict[str, int]:
        return {"clients": len(self.clients), "deals": len(self.deals)}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "clients": list(self.clients.values()),
                    "deals": list(self.deals.values()), "users": list(self.users.values()), "next_ids": self._next}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.clients = {c["id"]: c for c in state["clients"]}
            self.deals = {d["id"]: d for d in state["deals"]}
            # a state saved before users existed starts with the demo users
            self.users = {u["id"]: u for u in state.get("users", sugester_users())}
            self._next.update(state.get("next_ids", {}))

    # -- what people do in Sugester's own UI (tests and demos) -----------------------------------
    def user_add_client(self, **fields: Any) -> dict:
        with self.lock:
            return self._new_client(fields)

    def user_edit_client(self, client_id: int, **fields: Any) -> dict:
        with self.lock:
            return self._update(self.clients[client_id], fields)

    def user_delete(self, kind: str, record_id: int) -> None:
        with self.lock:
            del (self.clients if kind == "client" else self.deals)[record_id]

    # -- generic record handling ------------------------------------------------------------------
    def _list(self, req: Request, store: dict[int, dict]) -> list[dict]:
        page, per_page = page_args(req)
        rows = list(store.values())
        for field, values in req.query.items():
            value = values[0]
            if field in ("external_id", "client_id", "email", "tax_no", "name", "status_id"):
                rows = [r for r in rows if r.get(field) is not None and str(r[field]) == value]
            elif m := _EXTERNAL_IDS_ARG.fullmatch(field):
                rows = [r for r in rows if str((r.get("external_ids") or {}).get(m[1])) == value]
        if req.arg("order") == "updated_at.desc":  # the Rails convention Fakturownia documents [I]
            rows.sort(key=lambda r: (datetime.fromisoformat(r["updated_at"]), r["id"]), reverse=True)
        return paginate(rows, page, per_page)

    def _get(self, req: Request, store: dict[int, dict]) -> dict:
        record = store.get(int(req.params[0]))
        if record is None:
            raise HttpError(404, "Nie znaleziono")
        return record

    def _delete(self, req: Request, store: dict[int, dict]) -> dict:
        self._get(req, store)
        del store[int(req.params[0])]
        return {"code": "success", "message": "Usunięto"}

    def _store(self, kind: str, store: dict[int, dict], fields: Mapping[str, Any], defaults: dict) -> dict:
        record_id = self._next[kind]
        self._next[kind] += 1
        now = rails_time(self.tick())
        record = {"id": record_id, **defaults, **_writable(fields), "created_at": now, "updated_at": now}
        store[record_id] = record
        return record

    def _update(self, record: dict, fields: Mapping[str, Any]) -> dict:
        record.update(_writable(fields))
        record["updated_at"] = rails_time(self.tick())
        return record

    # -- clients --------------------------------------------------------------------------------
    def _create_client(self, req: Request) -> Response:
        body = req.root("client")
        errors = _client_errors(body)
        _decimal_errors(body, errors)
        if errors:
            raise HttpError(422, errors)
        if body.get("try_update") and (existing := self._match_client(body)) is not None:
            return json_response(self._update(existing, body), 200)
        return json_response(self._new_client(body), 201)

    def _new_client(self, body: Mapping[str, Any]) -> dict:
        client_id = self._next["client"]
        defaults = {"name": None, "external_id": None, "external_ids": {}, "status_id": None,
                    "token": token_for(f"sugester-client-{client_id}")}
        return self._store("client", self.clients, body, defaults)

    def _update_client(self, req: Request) -> dict:
        client = self._get(req, self.clients)
        body = req.root("client")
        errors = _client_errors(body) if "name" in body else {}
        _decimal_errors(body, errors)
        if errors:
            raise HttpError(422, errors)
        return self._update(client, body)

    def _match_client(self, body: Mapping[str, Any]) -> dict | None:
        """Same client if any external_ids pair or the external_id matches (the integration upsert key)."""
        wanted = {(k, str(v)) for k, v in (body.get("external_ids") or {}).items()}
        ext = body.get("external_id")
        for client in self.clients.values():
            have = {(k, str(v)) for k, v in (client.get("external_ids") or {}).items()}
            if wanted & have or (ext is not None and str(client.get("external_id")) == str(ext)):
                return client
        return None

    # -- deals ----------------------------------------------------------------------------------
    def _create_deal(self, req: Request) -> Response:
        body = self._deal_body(req, creating=True)
        defaults = {"name": None, "description": None, "price": None, "client_id": None, "status_id": None,
                    "external_ids": {}}
        return json_response(self._store("deal", self.deals, body, defaults), 201)

    def _update_deal(self, req: Request) -> dict:
        deal = self._get(req, self.deals)
        return self._update(deal, self._deal_body(req, creating=False))

    def _deal_body(self, req: Request, *, creating: bool) -> dict:
        """Validate a deal body (422 like the vendor) and resolve its client, creating a nested one."""
        body = dict(req.root("deal"))
        nested = body.pop("client", None)
        errors: dict[str, list[str]] = {}
        if (creating or "name" in body) and not str(body.get("name") or "").strip():
            errors["name"] = [BLANK]
        client = self._deal_client(body, nested, errors)
        _decimal_errors(body, errors)
        if errors:
            raise HttpError(422, errors)
        if client is None and isinstance(nested, dict):
            client = self._new_client(nested)
        if client is not None:
            body["client_id"] = client["id"]
        return body

    def _deal_client(self, body: dict, nested: Any, errors: dict) -> dict | None:
        """The client a deal points at: explicit client_id, else a nested client matched on external ids."""
        if body.get("client_id") not in (None, ""):
            try:
                client = self.clients.get(int(body["client_id"]))
            except (TypeError, ValueError):
                client = None
            if client is None:
                errors["client_id"] = ["- nie istnieje"]
            return client
        if isinstance(nested, dict):
            client = self._match_client(nested)
            if client is None and not str(nested.get("name") or "").strip():
                errors["client.name"] = [BLANK]
            return client
        return None


def _writable(fields: Mapping[str, Any]) -> dict:
    out = {k: v for k, v in fields.items() if k not in _READ_ONLY}
    if isinstance(out.get("phone"), str):  # Sugester keeps phone numbers without separators [I]
        out["phone"] = _PHONE_SEPARATORS.sub("", out["phone"])
    for key in _DECIMALS & out.keys():
        if out[key] not in (None, ""):
            out[key] = decimal_str(Decimal(str(out[key]).strip()))
    if out.get("external_id") is not None:
        out["external_id"] = str(out["external_id"])
    return out


def _client_errors(body: Mapping[str, Any]) -> dict[str, list[str]]:
    return {} if str(body.get("name") or "").strip() else {"name": [BLANK]}


def _decimal_errors(body: Mapping[str, Any], errors: dict) -> None:
    for key in _DECIMALS & body.keys():
        value = body[key]
        if value in (None, ""):
            continue
        try:
            if isinstance(value, bool) or not Decimal(str(value).strip()).is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors[key] = [_NOT_A_NUMBER]

"""Zapier catch-hook simulator ("Webhooks by Zapier") feeding an in-memory Invoice2go account through the user's Zap.

Invoice2go has no public data API; its official Zapier integration only creates clients and products, and created
records count against the plan's quota (VENDOR_APIS.md §7). Everything on Invoice2go's side here — the account,
record ids ("cli_000001"), field names, quota message, Zap history — is our own invented shape [I], not the
vendor's. The hook URL form and the success answer follow Zapier's catch hooks; the 404/410 answers are [I].
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from ._http_sim import HttpError, Request, Response, Simulator, json_response

ENTITIES = ("clients", "products")
_ID_PREFIX = {"clients": "cli", "products": "prd"}
# What the Zap's "Invoice2go: create client/product" action maps from our hook payload [I].
ZAP_FIELDS = {
    "clients": ("name", "email", "phone", "contact_name", "billing_address", "tax_number", "notes"),
    "products": ("name", "code", "description", "price"),
}
DEFAULT_HOOKS = {"1000001/i2gclients": "clients", "1000001/i2gproducts": "products"}


class QuotaExceeded(Exception):
    """The Invoice2go plan allows no more records of this entity in the current billing period [I]."""


class Invoice2goAccount:
    """In-memory Invoice2go account [I]: clients and products, with a per-period quota per entity (None: unlimited)."""

    def __init__(self, *, quota: Mapping[str, int | None] | None = None):
        self.quota: dict[str, int | None] = {entity: None for entity in ENTITIES} | dict(quota or {})
        self.clients: list[dict] = []
        self.products: list[dict] = []
        self.created_in_period: dict[str, int] = {entity: 0 for entity in ENTITIES}
        self._next = {entity: 1 for entity in ENTITIES}

    def records(self, entity: str) -> list[dict]:
        if entity not in ENTITIES:
            raise ValueError(f"unknown Invoice2go entity {entity!r}; expected one of {ENTITIES}")
        return self.clients if entity == "clients" else self.products

    def new_period(self) -> None:
        """A new billing period: the quota counts start again (records stay)."""
        self.created_in_period = {entity: 0 for entity in ENTITIES}

    def create(self, entity: str, fields: Mapping[str, Any], *, at: datetime | None = None) -> dict:
        """Store a record; QuotaExceeded when this period's count has reached the plan's quota."""
        store = self.records(entity)
        limit = self.quota.get(entity)
        if limit is not None and self.created_in_period[entity] >= limit:
            raise QuotaExceeded(f"Invoice2go plan limit reached: {limit} {entity} this period")
        record_id = f"{_ID_PREFIX[entity]}_{self._next[entity]:06d}"
        self._next[entity] += 1
        self.created_in_period[entity] += 1
        record = {"id": record_id, **fields, "created_at": _iso(at or datetime.now(UTC))}
        store.append(record)
        return record

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy({"quota": self.quota, "clients": self.clients, "products": self.products,
                              "created_in_period": self.created_in_period, "next_ids": self._next})

    def load(self, state: Mapping[str, Any]) -> None:
        state = copy.deepcopy(dict(state))
        self.quota = state["quota"]
        self.clients, self.products = state["clients"], state["products"]
        self.created_in_period = state["created_in_period"]
        self._next = state["next_ids"]


class _TaskError(Exception):
    """A Zap step failed; Zapier shows it only in the Zap's history."""


class ZapierSim(Simulator):
    """Catch hooks at `/hooks/catch/<account_id>/<hook_key>/`, each running a Zap that creates one Invoice2go record."""

    name = "zapier"
    rate_limit_message = "Too many requests to this hook, slow down"  # [I]

    def __init__(self, *, account: Invoice2goAccount | None = None, hooks: Mapping[str, str] | None = None,
                 max_rps: float | None = None, clock_start: datetime | None = None):
        super().__init__(max_rps=max_rps, clock_start=clock_start)
        self.account = account or Invoice2goAccount()
        self.hooks: dict[str, str] = dict(hooks or DEFAULT_HOOKS)
        for entity in self.hooks.values():
            self.account.records(entity)  # fail early on an unknown entity
        self.deleted_hooks: set[str] = set()
        self.zap_history: list[dict] = []
        # Zapier accepts the slash-less form too.
        self.route("POST", r"/hooks/catch/([^/]+)/([^/]+)/?", self._catch, auth=False)

    def authenticate(self, req: Request) -> bool:
        return True  # a catch hook's URL is its secret

    def error_body(self, status: int, message: Any) -> Any:
        return {"status": "error", "message": message}  # [I]

    def record_counts(self) -> dict[str, int]:
        with self.lock:
            return {"clients": len(self.account.clients), "products": len(self.account.products)}

    # -- test and demo helpers ------------------------------------------------------------------
    def hook_path(self, entity: str) -> str:
        """The path (under the mount) of the first hook whose Zap creates `entity`."""
        return f"/hooks/catch/{self._hook_key(entity)}/"

    def delete_hook(self, entity: str) -> None:
        """The user turned off or deleted the Zap: its hook answers 410 from now on [I]."""
        with self.lock:
            self.deleted_hooks.add(self._hook_key(entity))

    def restore_hook(self, entity: str) -> None:
        with self.lock:
            self.deleted_hooks.discard(self._hook_key(entity))

    def deliveries(self, entity: str | None = None) -> list[dict]:
        """Payloads the hooks accepted (answered 200), oldest first."""
        with self.lock:
            return [copy.deepcopy(h["payload"]) for h in self.zap_history if entity in (None, h["entity"])]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "account": self.account.to_dict(), "hooks": dict(self.hooks),
                    "deleted_hooks": sorted(self.deleted_hooks), "zap_history": copy.deepcopy(self.zap_history)}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.account.load(state["account"])
            self.hooks = dict(state["hooks"])
            self.deleted_hooks = set(state["deleted_hooks"])
            self.zap_history = copy.deepcopy(state["zap_history"])

    def _hook_key(self, entity: str) -> str:
        key = next((k for k, e in self.hooks.items() if e == entity), None)
        if key is None:
            raise ValueError(f"no hook creates {entity!r}; hooks: {self.hooks}")
        return key

    # -- the hook and its Zap -------------------------------------------------------------------
    def _catch(self, req: Request) -> Response:
        key = f"{req.params[0]}/{req.params[1]}"
        entity = self.hooks.get(key)
        if entity is None:
            # Zapier's answer to a hook it never issued is undocumented [I].
            raise HttpError(404, f"No catch hook at /hooks/catch/{key}/")
        if key in self.deleted_hooks:
            raise HttpError(410, f"Catch hook /hooks/catch/{key}/ is gone: its Zap was turned off or deleted")
        payload = _payload(req)
        attempt = str(uuid.uuid4())
        self._run_zap(key, entity, payload)  # synchronously here; Zapier runs it after answering
        return json_response({"attempt": attempt, "id": attempt, "request_id": attempt, "status": "success"})

    def _run_zap(self, key: str, entity: str, payload: dict) -> None:
        """"Invoice2go: create client/product": map the payload, create the record, log the run."""
        at = self.tick()
        entry = {"at": _iso(at), "hook": key, "entity": entity, "status": "success", "message": "",
                 "payload": copy.deepcopy(payload), "record_id": None}
        try:
            fields = _mapped(entity, payload)
            record = self.account.create(entity, fields, at=at)
        except (_TaskError, QuotaExceeded) as exc:
            entry |= {"status": "error", "message": str(exc)}
        else:
            entry |= {"message": f"Created {entity[:-1]} {record['id']}", "record_id": record["id"]}
        self.zap_history.append(entry)


def _payload(req: Request) -> dict:
    """The hook body as a JSON object, or a form-encoded one flattened like Zapier does (repeated keys: a list)."""
    if "x-www-form-urlencoded" in req.headers.get("content-type", ""):
        try:
            form = parse_qs(req.body.decode(), keep_blank_values=True, strict_parsing=bool(req.body.strip()))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "Malformed form body") from None
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if not isinstance(req.json, dict):
        # Real Zapier also takes a JSON array (one run per element); our connector never sends one [I].
        raise HttpError(400, "Expected a JSON object (or a form-encoded body)")
    return req.json


def _mapped(entity: str, payload: Mapping[str, Any]) -> dict:
    """The Zap's field mapping; fields left empty are not sent to Invoice2go [I]."""
    if not str(payload.get("name") or "").strip():
        label = "Client name" if entity == "clients" else "Product name"
        raise _TaskError(f"Invoice2go: required field \"{label}\" (name) is missing or blank")
    return {f: payload[f] for f in ZAP_FIELDS[entity] if payload.get(f) not in (None, "")}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")

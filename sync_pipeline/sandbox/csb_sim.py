"""CustomerSuccessBox simulator: the push-only HTTP API (upsert by id) plus sandbox-only read endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._http_sim import HttpError, Request, Simulator

# kind -> (required ids; the first is the record key, the second alternatives accepted together)
_KINDS = {
    "account": ("account_id", ()),
    "user": ("user_id", ("account_id",)),
    "subscription": ("subscription_id", ("account_id",)),
    "invoice": ("invoice_id", ("account_id", "subscription_id")),
}
_STORES = {"account": "accounts", "user": "users", "subscription": "subscriptions", "invoice": "invoices"}


class CsbSim(Simulator):
    """In-memory CSB tenant: accounts, users, subscriptions and invoices as last pushed, merged per id."""

    name = "csb"

    def __init__(self, *, api_key: str, max_rps: float | None = None, clock_start: datetime | None = None):
        super().__init__(max_rps=max_rps, clock_start=clock_start)
        self.api_key = api_key
        self.accounts: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.pushes: list[tuple[str, str]] = []  # (kind, id) in arrival order, rejected pushes excluded
        for kind in _KINDS:
            self.route("POST", rf"/api/v1_1/{kind}", lambda req, k=kind: self._push(k, req))
        # Sandbox-only: CSB documents no read API. Same bearer, so a client can verify what it wrote.
        for store in _STORES.values():
            self.route("GET", rf"/_sandbox/{store}", lambda req, s=store: self._read(s, req))

    def authenticate(self, req: Request) -> bool:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    def error_body(self, status: int, message: Any) -> Any:
        # Undocumented; the SDK ignores bodies. 401/422 with this shape are inferred.
        return {"status": "error", "message": "Unauthorized" if status == 401 else str(message)}

    def record_counts(self) -> dict[str, int]:
        return {store: len(getattr(self, store)) for store in _STORES.values()}

    def clear(self) -> None:
        """Forget every record and push (between test scenarios)."""
        with self.lock:
            for store in _STORES.values():
                getattr(self, store).clear()
            self.pushes.clear()

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), **{s: list(getattr(self, s).values()) for s in _STORES.values()},
                    "pushes": [list(p) for p in self.pushes]}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            for kind, store in _STORES.items():
                key = _KINDS[kind][0]
                setattr(self, store, {str(r[key]): r for r in state.get(store, [])})
            self.pushes = [(str(k), str(i)) for k, i in state.get("pushes", [])]

    # -- routes -----------------------------------------------------------------------------------
    def _push(self, kind: str, req: Request) -> dict:
        body = req.json
        if not isinstance(body, dict):
            raise HttpError(400, "A JSON object body is required")
        key, related = _KINDS[kind]
        if _blank(body.get(key)):
            raise HttpError(422, f"{key} is required")
        if related and all(_blank(body.get(r)) for r in related):
            raise HttpError(422, f"{' or '.join(related)} is required")
        record_id = str(body[key])
        store = getattr(self, _STORES[kind])
        store[record_id] = {**store.get(record_id, {}), **body}  # a later push replaces only the keys it sends
        self.pushes.append((kind, record_id))
        return {"status": "success"}

    def _read(self, store: str, req: Request) -> list[dict]:
        rows = list(getattr(self, store).values())
        for name in ("account_id", "subscription_id"):
            if (value := req.arg(name)) is not None:
                rows = [r for r in rows if str(r.get(name)) == value]
        return rows


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())

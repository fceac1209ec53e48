"""Fakturownia / InvoiceOcean simulator: invoices, clients, products and account over real HTTP."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ._http_sim import HttpError, Request, Response, Simulator, html_response, json_response, page_args, paginate
from .demo_data import DEPARTMENTS, NUMBER_PREFIX, FakturowniaData, decimal_str, invoice_template, paused_gc, rails_time, token_for
from .demo_users import fakturownia_users
from .verbatim import verbatim_response

BLANK = "- nie może być puste"
INVALID = "- jest nieprawidłowe"
KINDS = frozenset(
    "vat proforma bill receipt advance final correction invoice_other vat_margin kp kw estimate vat_mp vat_rr "
    "correction_note accounting_note client_order dw wnt wdt import_service import_service_eu import_products "
    "export_products".split())
STATUSES = frozenset({"issued", "sent", "paid", "partial", "rejected"})
# Fields the server computes or owns; a client cannot set them through the API.
_READ_ONLY = frozenset({"id", "token", "view_url", "payment_url", "created_at", "updated_at", "positions",
                        "price_net", "price_tax", "price_gross", "api_token", "oid_unique", "buyer_override"})
_CLIENT_READ_ONLY = frozenset({"id", "token", "created_at", "updated_at", "balance", "deleted", "api_token"})
_TRUE = ("1", "true", "yes", "on")
_ORDERABLE = frozenset({"id", "number", "updated_at", "created_at", "price_net", "price_gross", "price_tax",
                        "issue_date", "payment_to", "paid_date", "transaction_date", "buyer_name", "buyer_tax_no",
                        "seller_name", "oid"})
_PRICE_KEYS = frozenset({"price_net", "price_gross", "total_price_net", "total_price_gross"})
_CACHE_FROM = 10_000  # below this many invoices filtering is cheap, so lists are never cached


class FakturowniaSim(Simulator):
    """In-memory Fakturownia account; takes ownership of the `data` records it is given."""

    name = "fakturownia"

    def __init__(self, *, api_token: str, data: FakturowniaData | None = None, public_base_url: str = "",
                 max_rps: float | None = None, account_prefix: str = "demo"):
        data = data or FakturowniaData(clients=[], invoices=[])
        records = (*data.clients, *data.invoices, *data.products)
        latest = max((datetime.fromisoformat(r["updated_at"]) for r in records), default=None)
        if data.today is not None:  # and never before the data's "today" (sparse data may end earlier)
            morning = datetime.combine(data.today, time(6, 0), UTC)
            latest = max(latest, morning) if latest else morning
        super().__init__(max_rps=max_rps, clock_start=latest)  # the clock starts at the newest record
        self.api_token = api_token
        self.public_base_url = public_base_url.rstrip("/")
        # `order` on clients.json is undocumented: False answers in id order whatever is asked, as a server
        # that ignores it would (tests of the newest-first read).
        self.honours_client_order = True
        self.account_prefix = account_prefix
        self.clients: dict[int, dict] = {c["id"]: c for c in data.clients}
        self.invoices: dict[int, dict] = {i["id"]: i for i in data.invoices}
        self.products: dict[int, dict] = {p["id"]: p for p in data.products}
        self.users: dict[int, dict] = {u["id"]: u for u in fakturownia_users()}  # inferred endpoint [I]
        self.injected: list[dict] = []
        self.injected_clients: list[Any] = []
        self._list_answers: dict[str, list[Response]] = {"clients": [], "invoices": []}
        self.today: date = data.today or self.clock.date()
        self._reset_indexes()
        self._register()

    # -- test and demo controls ---------------------------------------------------------------
    def inject_invoice(self, raw: Any) -> None:
        """Serve `raw` verbatim (any JSON value; RawJson for literals Python cannot write), after the normal
        records, in every invoice list (and by id if it has one)."""
        with self.lock:
            self.injected.append(raw)

    def inject_client(self, raw: Any) -> None:
        """Serve `raw` verbatim (any JSON value; RawJson for literals Python cannot write), after the normal
        clients, in every client list without a filter."""
        with self.lock:
            self.injected_clients.append(raw)

    def answer_next_list(self, entity: str, body: bytes, *, times: int = 1,
                         content_type: str = "application/json; charset=utf-8") -> None:
        """Answer the next `times` lists of `entity` ("clients" or "invoices") with HTTP 200 and `body` as
        is: an object where an array belongs, a page in another encoding, whatever a broken proxy sends."""
        with self.lock:
            self._list_answers[entity].extend([Response(200, body, {"Content-Type": content_type})] * times)

    def pay_invoice(self, invoice_id: int, *, amount: Decimal | None = None, on: date | None = None) -> dict:
        """Record a payment (the rest due when `amount` is None); returns the invoice as the API serves it."""
        with self.lock:
            inv = self.invoices[invoice_id]
            gross, paid = Decimal(inv["price_gross"]), Decimal(inv["paid"] or "0")
            extra = gross - paid if amount is None else Decimal(str(amount))
            self._apply_paid(inv, paid + extra, on or self.today)
            self._touch(inv)
            return copy.deepcopy(self._present(inv, positions=True))

    def changed(self) -> None:
        """Call after editing `invoices`/`clients` directly, so cached list orders are rebuilt."""
        with self.lock:
            self._version += 1

    def record_counts(self) -> dict[str, int]:
        return {"clients": len(self.clients), "invoices": len(self.invoices), "products": len(self.products),
                "injected": len(self.injected), "injected_clients": len(self.injected_clients)}

    def authenticate(self, req: Request) -> bool:
        bearer = req.headers.get("authorization", "")
        token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else req.param("api_token")
        return token == self.api_token

    # -- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "today": self.today.isoformat(), "account_prefix": self.account_prefix,
                    "clients": list(self.clients.values()), "invoices": list(self.invoices.values()),
                    "products": list(self.products.values()), "users": list(self.users.values()),
                    "injected": self.injected,
                    "injected_clients": self.injected_clients, "next_ids": self._next}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.today = date.fromisoformat(state["today"])
            self.account_prefix = state.get("account_prefix", self.account_prefix)
            self.clients = {c["id"]: c for c in state["clients"]}
            self.invoices = {i["id"]: i for i in state["invoices"]}
            self.products = {p["id"]: p for p in state["products"]}
            # a state saved before users existed starts with the demo users
            self.users = {u["id"]: u for u in state.get("users", fakturownia_users())}
            self.injected = list(state.get("injected", []))
            self.injected_clients = list(state.get("injected_clients", []))
            self._reset_indexes()
            self._next.update(state.get("next_ids", {}))

    # -- internals ------------------------------------------------------------------------------
    def _reset_indexes(self) -> None:
        positions = (p["id"] for i in self.invoices.values() for p in i.get("positions") or ())
        self._next = {"client": max(self.clients, default=110_000_000) + 1,
                      "invoice": max(self.invoices, default=398_000_000) + 1,
                      "position": max(positions, default=771_000_000) + 1,
                      "product": max(self.products, default=5500) + 1}
        self._version = 0
        self._list_cache: dict[tuple, list[int]] = {}
        self._list_cache_version = -1
        self._token_index: tuple[int, dict[str, int]] = (-1, {})
        self._number_seq: dict[tuple[str, str], int] | None = None

    def _new_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind] - 1

    def _touch(self, record: dict) -> None:
        record["updated_at"] = rails_time(self.tick())
        self._version += 1

    def _base(self) -> str:
        return self.public_base_url or f"https://{self.account_prefix}.fakturownia.pl"

    def _present(self, inv: dict, *, positions: bool, listed: bool = False) -> dict:
        out = dict(inv)
        if self.public_base_url and out.get("token"):  # links must resolve against this simulator
            out["view_url"] = f"{self.public_base_url}/invoice/{out['token']}"
            out["payment_url"] = f"{self.public_base_url}/invoice/payment/{out['token']}"
        if listed and isinstance(out.get("id"), int) and out["id"] % 3 == 0:
            # Real list rows often carry `token` but no `view_url`: sometimes null, sometimes no key at all.
            if out["id"] % 2:
                out.pop("view_url", None)
            else:
                out["view_url"] = None
        if not positions:
            out.pop("positions", None)  # lists omit positions unless include_positions=true
        return out

    def _register(self) -> None:
        r = self.route
        r("GET", r"/invoices\.json", self._list_invoices)
        r("POST", r"/invoices\.json", self._create_invoice)
        r("POST", r"/invoices/cancel\.json", self._cancel_invoice)
        r("GET", r"/invoices/(\d+)\.json", self._get_invoice)
        r("PUT", r"/invoices/(\d+)\.json", self._update_invoice)
        r("PATCH", r"/invoices/(\d+)\.json", self._update_invoice)
        r("DELETE", r"/invoices/(\d+)\.json", self._delete_invoice)
        r("POST", r"/invoices/(\d+)/change_status\.json", self._change_status)
        r("GET", r"/clients\.json", self._list_clients)
        r("POST", r"/clients\.json", self._create_client)
        r("GET", r"/clients/(\d+)\.json", self._get_client)
        r("PUT", r"/clients/(\d+)\.json", self._update_client)
        r("PATCH", r"/clients/(\d+)\.json", self._update_client)
        r("DELETE", r"/clients/(\d+)\.json", self._delete_client)
        r("GET", r"/products\.json", self._list_products)
        r("GET", r"/products/(\d+)\.json", self._get_product)
        r("GET", r"/account\.json", self._account)
        r("GET", r"/users\.json", self._list_users)
        r("GET", r"/departments\.json", self._list_departments)
        r("GET", r"/invoice/(?:payment/)?([A-Za-z0-9]+)", self._preview, auth=False)

    # -- what people do in Fakturownia's own UI (tests and demos) ---------------------------------
    def user_add_client(self, **fields: Any) -> dict:
        with self.lock:
            return self._store_client(fields)

    def user_edit_client(self, client_id: int, **fields: Any) -> dict:
        with self.lock:
            client = self.clients[client_id]
            client.update(fields)
            _normalize_client(client)
            self._touch(client)
            return client

    def user_delete(self, kind: str, record_id: int) -> None:
        with self.lock:
            del (self.clients if kind == "client" else self.invoices)[record_id]
            self._version += 1

    # -- invoices: read -------------------------------------------------------------------------
    def _list_invoices(self, req: Request) -> list[dict] | Response:
        if self._list_answers["invoices"]:
            return self._list_answers["invoices"].pop(0)
        page, per_page = page_args(req)
        ids = self._select(req)
        with_positions = (req.arg("include_positions") or "").lower() in _TRUE
        start = (page - 1) * per_page
        out = [self._present(self.invoices[i], positions=with_positions, listed=True)
               for i in ids[start : start + per_page]]
        if sparse := req.arg("fields[invoice]"):  # a sparse fieldset [V]: only the named fields
            wanted = sparse.split(",")
            out = [{k: inv.get(k) for k in wanted} for inv in out]
        if len(out) < per_page:  # injected raw records follow the normal ones, unfiltered
            skip = max(0, start - len(ids))
            out.extend(self.injected[skip : skip + per_page - len(out)])
            return verbatim_response(out) if self.injected else out
        return out

    def _select(self, req: Request) -> list[int]:
        key = tuple(sorted((k, tuple(v)) for k, v in req.query.items()
                           if k not in ("page", "per_page", "api_token", "include_positions")))
        key += (self.today,)
        cache = len(self.invoices) >= _CACHE_FROM
        if cache and (self._list_cache_version != self._version or len(self._list_cache) > 32):
            self._list_cache, self._list_cache_version = {}, self._version
        if cache and key in self._list_cache:
            return self._list_cache[key]
        with paused_gc():
            rows = list(filter(_invoice_filter(req, self.today), self.invoices.values()))
            ids = [inv["id"] for inv in _ordered(rows, req.arg("order"))]
        if cache:
            self._list_cache[key] = ids
        return ids

    def _get_invoice(self, req: Request) -> dict:
        return self._present(self._invoice(req), positions=True)

    def _invoice(self, req: Request) -> dict:
        inv_id = int(req.params[0])
        inv = self.invoices.get(inv_id) or next(
            (i for i in self.injected if isinstance(i, dict) and i.get("id") == inv_id), None)
        if inv is None:
            raise HttpError(404, "Nie znaleziono dokumentu")
        return inv

    def _preview(self, req: Request) -> Response:
        version, index = self._token_index
        if version != self._version or len(index) != len(self.invoices):
            index = {inv["token"]: inv["id"] for inv in self.invoices.values() if inv.get("token")}
            self._token_index = (self._version, index)
        inv = self.invoices.get(index.get(req.params[0], -1))
        if inv is None:
            return html_response("<html><body><h1>404</h1><p>Nie znaleziono dokumentu</p></body></html>", 404)
        e = html.escape
        return html_response(
            f"<!DOCTYPE html><html><head><title>{e(inv['number'] or '')}</title></head><body>"
            f"<h1>Faktura {e(inv['number'] or '')}</h1><p>Nabywca: {e(inv.get('buyer_name') or '')}</p>"
            f"<p>Data wystawienia: {e(inv['issue_date'])}, termin płatności: {e(str(inv['payment_to']))}</p>"
            f"<p>Do zapłaty: {e(inv['price_gross'])} {e(inv['currency'])} (status: {e(inv['status'])})</p>"
            "</body></html>")

    # -- invoices: write ------------------------------------------------------------------------
    def _create_invoice(self, req: Request) -> Response:
        body = req.root("invoice")
        errors: dict[str, list[str]] = {}
        raw_positions = body.get("positions")
        if not isinstance(raw_positions, list) or not raw_positions:
            errors["positions"] = [BLANK]
        client = None
        if body.get("client_id") not in (None, "", -1, "-1"):
            client = self.clients.get(_to_int(body.get("client_id")))
            if client is None:
                errors["client_id"] = ["- nie istnieje"]
        elif not (body.get("buyer_name") or body.get("buyer_last_name")):
            errors["buyer_name"] = [BLANK]
        kind = body.get("kind") or "vat"
        if kind not in KINDS:
            errors["kind"] = [INVALID]
        if body.get("status") is not None and body["status"] not in STATUSES:
            errors["status"] = [INVALID]
        issue = _date_field(body, "issue_date", errors) or self.today
        oid = body.get("oid")
        if oid and str(body.get("oid_unique", "")).lower() in _TRUE and any(
                i.get("oid") == oid for i in self.invoices.values()):
            errors["oid"] = ["- jest już zajęte"]
        paid = _decimal_field(body, "paid", errors)
        dates = {k: _date_field(body, k, errors) for k in ("sell_date", "payment_to", "paid_date")}
        inv_id = self._next["invoice"]
        positions = self._positions(raw_positions, inv_id, errors) if "positions" not in errors else []
        if errors:
            raise HttpError(422, errors)

        client = client or self._buyer_client(body, match=_to_int(body.get("client_id"), 0) != -1)
        inv = invoice_template(client, body.get("currency") or "PLN", self._seller_name())
        inv.update({k: v for k, v in body.items() if k not in _READ_ONLY})
        inv["client_id"] = client["id"]
        self._new_id("invoice")
        token = token_for(f"{self.account_prefix}-invoice-{inv_id}")
        canonical = f"https://{self.account_prefix}.fakturownia.pl"  # stored like generated data; served rewritten
        number = body.get("number") or self._auto_number(kind, issue)
        term = body.get("payment_to_kind", 7 if dates["payment_to"] is None else "other_date")
        due = dates["payment_to"] or (issue + timedelta(days=_to_int(term)) if _to_int(term) >= 0 else None)
        inv.update({"id": inv_id, "kind": kind, "number": number, "income": _income(body.get("income", True)),
                    "status": body.get("status") or "issued", "issue_date": issue.isoformat(),
                    "sell_date": (dates["sell_date"] or issue).isoformat(), "transaction_date": issue.isoformat(),
                    "payment_to": due.isoformat() if due else None, "payment_to_kind": term,
                    "paid_date": dates["paid_date"] and dates["paid_date"].isoformat(),
                    "token": token, "view_url": f"{canonical}/invoice/{token}",
                    "payment_url": f"{canonical}/invoice/payment/{token}", "positions": positions})
        self._set_totals(inv)
        if inv["status"] == "paid" and paid is None:
            self._apply_paid(inv, Decimal(inv["price_gross"]), dates["paid_date"] or issue)
        elif paid is not None:
            inv["paid"] = decimal_str(paid)
        inv["created_at"] = inv["updated_at"] = rails_time(self.tick())
        self.invoices[inv_id] = inv
        self._version += 1
        return json_response(self._present(inv, positions=True), 201)

    def _update_invoice(self, req: Request) -> dict:
        inv = self.invoices.get(int(req.params[0]))
        if inv is None:
            raise HttpError(404, "Nie znaleziono dokumentu")
        body = req.root("invoice")
        errors: dict[str, list[str]] = {}
        if "status" in body and body["status"] not in STATUSES:
            errors["status"] = [INVALID]
        if "kind" in body and body["kind"] not in KINDS:
            errors["kind"] = [INVALID]
        dates = {k: _date_field(body, k, errors) for k in ("issue_date", "sell_date", "payment_to", "paid_date")}
        paid = _decimal_field(body, "paid", errors)
        if "client_id" in body and _to_int(body["client_id"]) not in self.clients:
            errors["client_id"] = ["- nie istnieje"]
        positions = None
        if "positions" in body:
            positions = self._edit_positions(inv, body["positions"], errors)
        if errors:
            raise HttpError(422, errors)
        inv.update({k: v for k, v in body.items() if k not in _READ_ONLY and k not in dates})
        inv.update({k: d.isoformat() for k, d in dates.items() if d is not None})
        if "income" in body:
            inv["income"] = _income(body["income"])
        if "client_id" in body:
            inv["client_id"] = _to_int(body["client_id"])
        if positions is not None:
            inv["positions"] = positions
            self._set_totals(inv)
        if body.get("status") == "paid" and paid is None:
            self._apply_paid(inv, Decimal(inv["price_gross"]), dates["paid_date"] or self.today)
        elif paid is not None:
            self._apply_paid(inv, paid, dates["paid_date"] or self.today, status=body.get("status"))
        self._touch(inv)
        return self._present(inv, positions=True)

    def _change_status(self, req: Request) -> dict:
        inv = self.invoices.get(int(req.params[0]))
        if inv is None:
            raise HttpError(404, "Nie znaleziono dokumentu")
        status = req.param("status")
        if status not in STATUSES:
            raise HttpError(422, {"status": [INVALID]})
        if status == "paid":
            self._apply_paid(inv, Decimal(inv["price_gross"]), self.today)
        else:
            inv["status"] = status
        self._touch(inv)
        return self._present(inv, positions=True)

    def _cancel_invoice(self, req: Request) -> dict:
        inv = self.invoices.get(_to_int(req.param("cancel_invoice_id")))
        if inv is None:
            raise HttpError(404, "Nie znaleziono dokumentu")
        inv["cancelled"], inv["cancel_reason"] = True, req.param("cancel_reason")
        self._touch(inv)
        return {"code": "success", "message": "Dokument anulowany"}

    def _delete_invoice(self, req: Request) -> dict:
        if self.invoices.pop(int(req.params[0]), None) is None:
            raise HttpError(404, "Nie znaleziono dokumentu")
        self._version += 1
        return {"code": "success", "message": "Dokument usunięty"}

    def _apply_paid(self, inv: dict, paid: Decimal, on: date, status: str | None = None) -> None:
        gross = Decimal(inv["price_gross"])
        full = paid >= gross if gross >= 0 else paid <= gross  # corrections carry negative totals
        inv["paid"] = decimal_str(paid)
        inv["status"] = status or ("paid" if full else "partial" if paid else inv["status"])
        inv["paid_date"] = on.isoformat() if paid else None

    def _set_totals(self, inv: dict) -> None:
        net = sum((Decimal(p["total_price_net"]) for p in inv["positions"]), Decimal(0))
        gross = sum((Decimal(p["total_price_gross"]) for p in inv["positions"]), Decimal(0))
        inv["price_net"], inv["price_tax"], inv["price_gross"] = (
            decimal_str(net), decimal_str(gross - net), decimal_str(gross))

    def _positions(self, raw: list, inv_id: int, errors: dict) -> list[dict]:
        out = []
        for item in raw:
            position = _position(item, errors)
            if position is None:
                break
            out.append({"id": self._new_id("position"), "invoice_id": inv_id, **position})
        return out

    def _edit_positions(self, inv: dict, raw: Any, errors: dict) -> list[dict] | None:
        # Rails nested attributes: {"id":..} edits, {"id":.., "_destroy":1} deletes, no id appends.
        if not isinstance(raw, list):
            errors["positions"] = [INVALID]
            return None
        current = {p["id"]: dict(p) for p in inv.get("positions") or ()}
        for item in raw:
            if not isinstance(item, dict):
                errors["positions"] = [INVALID]
                return None
            pid = _to_int(item.get("id"))
            if pid in current:
                if str(item.get("_destroy", "")).lower() in _TRUE:
                    del current[pid]
                    continue
                merged = {**current[pid], **item}
                # The price the caller sent wins; without one, the unit gross price times the quantity.
                for key in _PRICE_KEYS - (_PRICE_KEYS & item.keys() or {"price_gross"}):
                    merged.pop(key, None)
                position = _position(merged, errors)
                if position is None:
                    return None
                current[pid] = {"id": pid, "invoice_id": inv["id"], **position}
            else:
                position = _position(item, errors)
                if position is None:
                    return None
                new_id = self._new_id("position")
                current[new_id] = {"id": new_id, "invoice_id": inv["id"], **position}
        if not current:
            errors["positions"] = [BLANK]
            return None
        return list(current.values())

    def _auto_number(self, kind: str, issue: date) -> str:
        if self._number_seq is None:  # built once, lazily: scanning a million numbers per create is wasteful
            self._number_seq = {}
            for inv in self.invoices.values():
                m = re.fullmatch(r"([A-Z]+)/(\d{4}/\d{2})/(\d+)", str(inv.get("number") or ""))
                if m:
                    key = (m[1], m[2])
                    self._number_seq[key] = max(self._number_seq.get(key, 0), int(m[3]))
        prefix = NUMBER_PREFIX.get(kind, kind.upper())
        key = (prefix, f"{issue:%Y/%m}")
        self._number_seq[key] = self._number_seq.get(key, 0) + 1
        return f"{prefix}/{key[1]}/{self._number_seq[key]:03d}"

    def _seller_name(self) -> str:
        sample = next(iter(self.invoices.values()), None)
        return sample["seller_name"] if sample else f"{self.account_prefix.title()} Software Sp. z o.o."

    def _buyer_client(self, body: dict, *, match: bool) -> dict:
        """Match a client on the buyer fields (tax number first, then name + email), else create it."""
        tax_no, name, email = body.get("buyer_tax_no"), body.get("buyer_name"), body.get("buyer_email")
        for client in self.clients.values() if match else ():  # client_id -1 always creates
            if (tax_no and client.get("tax_no") == tax_no) or (
                    not tax_no and name and client.get("name") == name and client.get("email") == email):
                return client
        name = name or " ".join(filter(None, (body.get("buyer_first_name"), body.get("buyer_last_name"))))
        fields = {k[len("buyer_"):]: v for k, v in body.items() if k.startswith("buyer_") and k != "buyer_override"}
        return self._store_client({**fields, "name": name})

    # -- clients --------------------------------------------------------------------------------
    def _list_clients(self, req: Request) -> list[dict] | Response:
        if self._list_answers["clients"]:
            return self._list_answers["clients"].pop(0)
        page, per_page = page_args(req)
        order = req.arg("order") if self.honours_client_order else None  # `order` applies to clients [V]
        rows: list[Any] = self._ordered_clients(order)
        filtered = False
        if name := req.arg("name"):
            rows, filtered = [c for c in rows if name.lower() in str(c.get("name") or "").lower()], True
        for field in ("email", "tax_no", "external_id", "shortcut"):
            if (value := req.arg(field)) is not None:
                rows, filtered = [c for c in rows if c.get(field) is not None and str(c[field]) == value], True
        if filtered or not self.injected_clients:
            return paginate(rows, page, per_page)
        return verbatim_response(paginate(rows + self.injected_clients, page, per_page))

    def _ordered_clients(self, order: str | None) -> list[dict]:
        # Sorting every client for every page costs O(pages x clients log clients): at 100k clients a full read
        # took minutes. Large lists keep their order until the data changes (as invoice lists do).
        if len(self.clients) < _CACHE_FROM:
            return _ordered(list(self.clients.values()), order)
        key = (self._version, len(self.clients), order)
        cached = getattr(self, "_clients_order", None)
        if cached is None or cached[0] != key:
            with paused_gc():
                cached = (key, _ordered(list(self.clients.values()), order))
            self._clients_order = cached
        return cached[1]

    def _get_client(self, req: Request) -> dict:
        client = self.clients.get(int(req.params[0]))
        if client is None:
            raise HttpError(404, "Nie znaleziono klienta")
        return client

    def _create_client(self, req: Request) -> Response:
        body = req.root("client")
        if not str(body.get("name") or "").strip():
            raise HttpError(422, {"name": [BLANK]})
        return json_response(self._store_client(body), 201)

    def _store_client(self, body: Mapping[str, Any]) -> dict:
        client_id = self._new_id("client")
        now = rails_time(self.tick())
        client = {"id": client_id, "name": None, "tax_no": None, "email": None, "phone": None, "street": None,
                  "city": None, "post_code": None, "country": None, "external_id": None, "company": True,
                  "kind": "buyer", "created_at": now, "updated_at": now,
                  "token": token_for(f"{self.account_prefix}-client-{client_id}"), "balance": "0.0",
                  "deleted": False}
        client.update({k: v for k, v in body.items() if k not in _CLIENT_READ_ONLY})
        _normalize_client(client)
        self.clients[client_id] = client
        self._version += 1
        return client

    def _update_client(self, req: Request) -> dict:
        client = self._get_client(req)
        body = req.root("client")
        if "name" in body and not str(body.get("name") or "").strip():
            raise HttpError(422, {"name": [BLANK]})
        client.update({k: v for k, v in body.items() if k not in _CLIENT_READ_ONLY})
        _normalize_client(client)
        self._touch(client)
        return client

    def _delete_client(self, req: Request) -> dict:
        if self.clients.pop(int(req.params[0]), None) is None:
            raise HttpError(404, "Nie znaleziono klienta")
        self._version += 1
        return {"code": "success", "message": "Klient usunięty"}

    # -- products and account -------------------------------------------------------------------
    def _list_products(self, req: Request) -> list[dict]:
        page, per_page = page_args(req)
        rows = list(self.products.values())
        if date_from := req.arg("date_from"):
            rows = [p for p in rows if p["updated_at"][:10] >= date_from]
        return paginate(rows, page, per_page)

    def _get_product(self, req: Request) -> dict:
        product = self.products.get(int(req.params[0]))
        if product is None:
            raise HttpError(404, "Nie znaleziono produktu")
        return product

    def _account(self, req: Request) -> dict:
        return {"prefix": self.account_prefix, "url": self._base(), "name": self._seller_name(),
                "login": self.account_prefix, "email": f"admin@{self.account_prefix}.example"}

    def _list_departments(self, req: Request) -> list[dict]:
        page, per_page = page_args(req)
        return paginate([dict(d) for d in DEPARTMENTS], page, per_page)

    def _list_users(self, req: Request) -> list[dict]:
        # Not in VENDOR_APIS (inferred [I]): a bare array in id order, paged like every list.
        page, per_page = page_args(req)
        return paginate([self.users[i] for i in sorted(self.users)], page, per_page)


# -- pure helpers ---------------------------------------------------------------------------------


def _to_int(value: Any, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _decimal_field(body: Mapping[str, Any], field: str, errors: dict) -> Decimal | None:
    value = body.get(field)
    if value in (None, ""):
        return None
    try:
        result = Decimal(str(value).strip().replace(",", "."))
        if isinstance(value, bool) or not result.is_finite():
            raise InvalidOperation
        return result
    except InvalidOperation:
        errors[field] = ["- nie jest liczbą"]
        return None


def _income(value: Any) -> bool:
    return str(value).lower() not in ("0", "false", "no", "")


def _date_field(body: Mapping[str, Any], field: str, errors: dict) -> date | None:
    value = body.get(field)
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[field] = [INVALID]
        return None


def _position(item: Any, errors: dict) -> dict | None:
    """Amounts of one position from whichever price the caller gave (gross wins, as in the app)."""
    try:
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise ValueError("name")
        qty = Decimal(str(item.get("quantity", 1)))
        tax = item.get("tax", 23)
        rate = Decimal(0) if str(tax) in ("np", "zw", "disabled", "") else Decimal(str(tax))
        factor = 1 + rate / 100
        if item.get("total_price_gross") is not None:
            gross = Decimal(str(item["total_price_gross"]))
            net = gross / factor
        elif item.get("price_gross") is not None:
            gross = Decimal(str(item["price_gross"])) * qty
            net = gross / factor
        elif item.get("total_price_net") is not None:
            net = Decimal(str(item["total_price_net"]))
            gross = net * factor
        elif item.get("price_net") is not None:
            net = Decimal(str(item["price_net"])) * qty
            gross = net * factor
        else:
            raise ValueError("price")
        if not (qty.is_finite() and net.is_finite()) or qty == 0:
            raise ValueError("amount")
    except (ValueError, InvalidOperation, ArithmeticError) as exc:
        errors["positions"] = [BLANK if str(exc) == "name" else INVALID]
        return None
    net = net.quantize(Decimal("0.01"))
    gross = gross.quantize(Decimal("0.01"))
    tax_text = str(tax) if str(tax) in ("np", "zw", "disabled") else _plain(rate)
    return {"product_id": item.get("product_id"), "name": item["name"], "quantity": _plain(qty, one_decimal=True),
            "quantity_unit": item.get("quantity_unit") or "szt", "tax": tax_text,
            "price_net": decimal_str(net / qty), "price_gross": decimal_str(gross / qty),
            "total_price_net": decimal_str(net), "total_price_gross": decimal_str(gross)}


def _plain(value: Decimal, *, one_decimal: bool = False) -> str:
    if value == value.to_integral_value():
        return f"{int(value)}.0" if one_decimal else str(int(value))
    return format(value.normalize(), "f")


def _normalize_client(client: dict) -> None:
    if isinstance(client.get("phone"), str):  # Polish numbers are shown grouped: +48 600 100 200 [I]
        digits = re.sub(r"[\s().-]", "", client["phone"])
        m = re.fullmatch(r"(?:\+?48)?(\d{3})(\d{3})(\d{3})", digits)
        client["phone"] = f"+48 {m[1]} {m[2]} {m[3]}" if m else client["phone"].strip()
    if "company" in client and not isinstance(client["company"], bool):
        client["company"] = str(client["company"]).lower() in _TRUE
    if client.get("external_id") is not None:
        client["external_id"] = str(client["external_id"])


def _invoice_filter(req: Request, today: date) -> Callable[[dict], bool]:
    """One predicate for the request's filters, built once (lists may scan a million invoices)."""
    q = req.arg
    checks: list[Callable[[dict], bool]] = []
    income = _income(q("income") or "yes")
    checks.append(lambda inv: bool(inv.get("income", True)) == income)
    if (client_id := q("client_id")) is not None:
        wanted_client = _to_int(client_id)
        checks.append(lambda inv: inv.get("client_id") == wanted_client)
    if kinds := set(req.query.get("kinds[]") or ([q("kind")] if q("kind") else ())):
        checks.append(lambda inv: inv.get("kind") in kinds)
    if ids := q("invoice_ids"):
        wanted_ids = {_to_int(i) for i in ids.split(",")}
        checks.append(lambda inv: inv["id"] in wanted_ids)
    if number := q("number"):
        checks.append(lambda inv: inv.get("number") == number)
    window = _period(q("period") or "all", q("date_from"), q("date_to"), today)
    if window is not None:
        field = q("search_date_type") or "issue_date"
        field = field if field in ("issue_date", "paid_date", "transaction_date") else "issue_date"
        lo, hi = window
        checks.append(lambda inv: bool(value := inv.get(field)) and lo <= value <= hi)
    return lambda inv: all(check(inv) for check in checks)


def _period(period: str, date_from: str | None, date_to: str | None, today: date) -> tuple[str, str] | None:
    """Inclusive ISO date window of a `period` value; None means unfiltered."""
    first = today.replace(day=1)
    prev_last = first - timedelta(days=1)
    windows = {
        "this_month": (first, today),
        "last_month": (prev_last.replace(day=1), prev_last),
        "last_30_days": (today - timedelta(days=30), today),
        "last_12_months": (_months_back(today, 12), today),
        "this_year": (today.replace(month=1, day=1), today.replace(month=12, day=31)),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    }
    if period == "more":
        return (date_from or "0000-00-00", date_to or "9999-99-99")
    if period in windows:
        lo, hi = windows[period]
        return lo.isoformat(), hi.isoformat()
    return None


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, 1)


def _ordered(rows: list[dict], order: str | None) -> list[dict]:
    field, _, direction = (order or "id").partition(".")
    if field not in _ORDERABLE:
        field = "id"
    if field in ("updated_at", "created_at"):
        def key(inv: dict) -> tuple:
            return (_instant(inv.get(field)), inv["id"])
    elif field.startswith("price_"):
        def key(inv: dict) -> tuple:
            return (Decimal(inv.get(field) or "0"), inv["id"])
    else:
        def key(inv: dict) -> tuple:
            value = inv.get(field)
            return (value is not None, value if value is not None else 0, inv["id"])
    return sorted(rows, key=key, reverse=direction == "desc")


def _instant(value: Any) -> float:
    # A float, not the aware datetime: comparing datetimes with different offsets is ~50x slower.
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return float("-inf")

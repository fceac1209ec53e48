"""Zoho simulators over real HTTP: the accounts server (OAuth refresh) and the Zoho Invoice v3 API.

They share one token registry: the API asks the accounts server whether an access token is live.
"""

from __future__ import annotations

import copy
import html
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qs

from ._http_sim import (HttpError, Request, Response, Simulator, _TokenBucket, html_response, json_response,
                        page_args)
from .verbatim import verbatim_response
from .zoho_demo import (CUSTOMFIELD_ID, OPEN_STATUSES, ORG_TIME_ZONE, ZohoData, custom_field, custom_field_hash,
                        parse_zoho_time, zoho_time)

API = "/invoice/v3"
ORG_HEADER = "x-com-zoho-invoice-organizationid"
_NOT_AUTHORIZED = {"code": 57, "message": "You are not authorized to perform this operation"}
# Zoho codes per HTTP status for errors the router raises. 57 (401) and 44 (429) are documented;
# 5 "Invalid URL Passed" (404) and 2 (400) are inferred from Zoho Books.
_STATUS_CODES = {400: 2, 401: 57, 404: 5, 405: 5, 429: 44, 500: 1}
_DAILY_MESSAGE = ("You have exceeded the maximum number of API calls allowed per day for your organization "
                  "({limit}). Please try again tomorrow.")
_MINUTE_MESSAGE = ("You have exceeded the maximum number of API calls allowed per minute for your organization. "
                   "Please try again after some time.")
_REFRESH_DENIED = {"error": "Access Denied", "status": "failure", "error_description":
                   "You have made too many requests continuously. Please try again after some time."}
_CANONICAL_URL = "https://invoice.zoho.eu/SecurePayment?CInvoiceID="


# -- accounts server ------------------------------------------------------------------------------


class ZohoAccountsSim(Simulator):
    """`accounts.zoho.{dc}`: exchanges the refresh token for short-lived access tokens and remembers them."""

    name = "zoho_accounts"

    def __init__(self, *, client_id: str, client_secret: str, refresh_token: str,
                 api_domain: str = "https://www.zohoapis.eu", token_ttl: int = 3600, max_live_tokens: int = 30,
                 refresh_limit: tuple[int, float] | None = None, max_rps: float | None = None,
                 clock_start: datetime | None = None, now: Callable[[], float] = time.time):
        super().__init__(max_rps=max_rps, clock_start=clock_start)
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.api_domain = api_domain  # what token responses say the API host is
        self.token_ttl = token_ttl
        self.max_live_tokens = max_live_tokens  # Zoho keeps at most 30 live access tokens per refresh token
        # (count, seconds): more refreshes than that in the window get "Access Denied"; off by default.
        self.refresh_limit = refresh_limit
        self.revoked = False
        self.refresh_count = 0
        self._now = now
        self._tokens: dict[str, float] = {}  # access token -> expiry, in `now()` seconds; oldest first
        self._refreshes: deque[float] = deque()
        self.route("POST", r"/oauth/v2/token", self._token, auth=False)
        self.route("POST", r"/oauth/v2/token/revoke", self._revoke, auth=False)

    def error_body(self, status: int, message: Any) -> Any:
        return {"error": str(message)}

    # -- test controls and the registry the API consults -------------------------------------------
    def issue_access_token(self) -> str:
        """A new live access token (what a successful refresh hands out)."""
        with self.lock:
            token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            now = self._now()
            for old in [t for t, expiry in self._tokens.items() if expiry <= now]:
                del self._tokens[old]  # forget expired tokens so a long-running sandbox stays small
            self._tokens[token] = now + self.token_ttl
            while len(self._tokens) > self.max_live_tokens:  # the oldest live token is dropped
                del self._tokens[next(iter(self._tokens))]
            return token

    def token_status(self, token: str | None) -> Literal["valid", "expired", "unknown"]:
        """Whether an access token is live, was issued but has expired, or was never issued (or was revoked)."""
        with self.lock:
            expiry = self._tokens.get(token or "")
            if expiry is None:
                return "unknown"
            return "valid" if self._now() < expiry else "expired"

    def revoke_refresh_token(self) -> None:
        """The user revoked the app's access: refreshes fail with invalid_code and access tokens stop working."""
        with self.lock:
            self.revoked = True
            self._tokens.clear()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (the API answers 401 until the client refreshes)."""
        with self.lock:
            self._tokens = dict.fromkeys(self._tokens, -math.inf)

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            live = {t: e for t, e in self._tokens.items() if e > self._now()}
            return {**super().snapshot(), "revoked": self.revoked, "refresh_count": self.refresh_count,
                    "tokens": live}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.revoked = bool(state.get("revoked", False))
            self.refresh_count = int(state.get("refresh_count", 0))
            self._tokens = {str(t): float(e) for t, e in state.get("tokens", {}).items()}

    # -- routes -----------------------------------------------------------------------------------
    def _token(self, req: Request) -> Response:
        p = _form(req)
        if p.get("client_id") != self.client_id or p.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client"})  # errors come with HTTP 200 [I]
        if p.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"})  # [I]
        if self.revoked or p.get("refresh_token") != self.refresh_token:
            return json_response({"error": "invalid_code"})
        if self.refresh_limit is not None:
            count, seconds = self.refresh_limit
            now = self._now()
            while self._refreshes and self._refreshes[0] <= now - seconds:
                self._refreshes.popleft()
            if len(self._refreshes) >= count:
                return json_response(_REFRESH_DENIED, 400)
            self._refreshes.append(now)
        self.refresh_count += 1
        return json_response({"access_token": self.issue_access_token(), "expires_in": self.token_ttl,
                              "api_domain": self.api_domain, "token_type": "Bearer"})

    def _revoke(self, req: Request) -> dict:
        token = _form(req).get("token", "")
        if token == self.refresh_token:
            self.revoke_refresh_token()
        else:
            self._tokens.pop(token, None)
        return {"status": "success"}  # body shape [I]


def _form(req: Request) -> dict[str, str]:
    """OAuth parameters from the query string, a form body or a JSON object body (query wins)."""
    out: dict[str, str] = {}
    if isinstance(req.json, dict):
        out.update({k: str(v) for k, v in req.json.items()})
    elif req.body:
        try:
            out.update({k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()})
        except UnicodeDecodeError:
            pass
    out.update({k: v[0] for k, v in req.query.items() if v})
    return out


# -- Zoho Invoice API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """How one list endpoint filters, sorts and names things."""

    root: str
    report_name: str
    id_key: str
    default_sort: tuple[str, str]
    sortable: frozenset[str]
    statuses: frozenset[str]
    text_fields: tuple[str, ...]  # exact match, plus <field>_startswith / <field>_contains
    date_field: str | None
    hidden: tuple[str, ...] = ()  # detail-only keys left out of list rows
    singular: str = ""
    missing: str = ""


_CONTACTS = _Listing(
    root="contacts", report_name="Contacts", id_key="contact_id", default_sort=("contact_name", "A"),
    sortable=frozenset({"contact_name", "company_name", "email", "outstanding_receivable_amount", "created_time",
                        "last_modified_time"}),
    statuses=frozenset({"active", "inactive", "crm", "duplicate"}),
    text_fields=("contact_name", "company_name", "email", "phone"), date_field=None,
    hidden=("contact_persons",), singular="contact", missing="Contact does not exist.")
_INVOICES = _Listing(
    root="invoices", report_name="Invoices", id_key="invoice_id", default_sort=("created_time", "D"),
    sortable=frozenset({"customer_name", "invoice_number", "date", "due_date", "total", "balance", "created_time",
                        "last_modified_time"}),
    statuses=frozenset({"sent", "draft", "overdue", "paid", "void", "unpaid", "partially_paid", "viewed"}),
    text_fields=("customer_id", "customer_name", "invoice_number", "reference_number"), date_field="date",
    hidden=("line_items",), singular="invoice", missing="Invoice does not exist.")
_CREDITNOTES = _Listing(
    root="creditnotes", report_name="Credit Notes", id_key="creditnote_id", default_sort=("created_time", "D"),
    sortable=frozenset({"customer_name", "creditnote_number", "date", "total", "balance", "created_time",
                        "last_modified_time"}),
    statuses=frozenset({"draft", "open", "closed", "void"}),
    text_fields=("customer_id", "customer_name", "creditnote_number", "reference_number"), date_field="date",
    singular="creditnote", missing="Credit Note does not exist.")
_NUMERIC = frozenset({"total", "balance", "outstanding_receivable_amount"})


class ZohoInvoiceSim(Simulator):
    """One Zoho Invoice organisation under `/invoice/v3`; takes ownership of the `data` records it is given."""

    name = "zoho"
    rate_limit_message = _MINUTE_MESSAGE  # a 429 carries {"code": 44, "message": ...}

    def __init__(self, *, accounts: ZohoAccountsSim, organization_id: str = "20240001", data: ZohoData | None = None,
                 organization_name: str = "Sandbox Software GmbH", public_base_url: str = "",
                 daily_limit: int | None = None, per_minute_limit: float | None = None,
                 max_rps: float | None = None, monotonic: Callable[[], float] = time.monotonic):
        data = data or ZohoData(contacts=[], invoices=[], creditnotes=[])
        records = (*data.contacts, *data.invoices, *data.creditnotes)
        latest = max((parse_zoho_time(r["last_modified_time"]) for r in records), default=None)
        if data.today is not None:  # the clock starts at the newest record, and not before the data's morning
            morning = datetime.combine(data.today, day_time(6, 0), UTC)
            latest = max(latest, morning) if latest else morning
        super().__init__(max_rps=max_rps, clock_start=latest, monotonic=monotonic)
        self.accounts = accounts
        self.organization_id = str(organization_id)
        self.organization_name = organization_name
        self.public_base_url = public_base_url.rstrip("/")  # set by the Sandbox so invoice_url links resolve here
        self.contacts: dict[str, dict] = {c["contact_id"]: c for c in data.contacts}
        self.invoices: dict[str, dict] = {i["invoice_id"]: i for i in data.invoices}
        self.creditnotes: dict[str, dict] = {n["creditnote_id"]: n for n in data.creditnotes}
        # test controls: raw records served after the normal ones, and whole answers that replace a list
        self.injected: dict[str, list[Any]] = {"contacts": [], "invoices": [], "creditnotes": []}
        self._list_answers: dict[str, list[Response]] = {"contacts": [], "invoices": [], "creditnotes": []}
        self.today: date = data.today or self.clock.date()
        self.daily_limit = daily_limit
        self.api_calls = 0  # calls counted against `daily_limit` since the last reset
        self._monotonic = monotonic
        self.per_minute_limit = per_minute_limit
        self._register()

    # -- limits -----------------------------------------------------------------------------------
    @property
    def per_minute_limit(self) -> float | None:
        """Calls allowed per minute (a token bucket of that size refilling over 60 s); None: unlimited."""
        return self._per_minute

    @per_minute_limit.setter
    def per_minute_limit(self, value: float | None) -> None:
        with self.lock:
            self._per_minute = value
            self._minute_bucket = None
            if value:
                bucket = _TokenBucket(value / 60.0, self._monotonic)
                bucket.capacity = bucket.tokens = float(value)  # a full minute's worth may come in a burst
                self._minute_bucket = bucket

    def reset_daily_limit(self) -> None:
        """A new day: the daily call count starts again from zero."""
        with self.lock:
            self.api_calls = 0

    # -- test controls ----------------------------------------------------------------------------
    def pay_invoice(self, invoice_id: str, amount: float | Decimal | None = None, *, on: date | None = None) -> dict:
        """Record a payment (the whole balance when `amount` is None); returns the invoice as the API serves it."""
        with self.lock:
            inv = self.invoices[str(invoice_id)]
            if inv["status"] in ("void", "draft"):
                raise ValueError(f"cannot record a payment on a {inv['status']} invoice")
            balance = _cents(inv["balance"])
            pay = balance if amount is None else _cents(amount)
            if not 0 < pay <= balance:
                raise ValueError(f"payment must be > 0 and at most the balance {inv['balance']}")
            paid = _cents(inv["payment_made"]) + pay
            inv["payment_made"], inv["balance"] = paid / 100, (_cents(inv["total"]) - paid) / 100
            inv["status"] = "paid" if inv["balance"] <= 0 else "partially_paid"
            inv["last_payment_date"] = (on or self.today).isoformat()
            self._touch(inv)
            self._update_receivables(inv["customer_id"])
            return copy.deepcopy(self._present(inv, _INVOICES, full=True))

    def void_invoice(self, invoice_id: str) -> dict:
        """Mark an invoice void (only without payments, as in the app); returns it as served."""
        with self.lock:
            inv = self.invoices[str(invoice_id)]
            self._set_status(inv, "void")
            return copy.deepcopy(self._present(inv, _INVOICES, full=True))

    def set_contact_field(self, contact_id: str, api_name: str, value: str | None) -> dict:
        """Set, change or (with None) remove a contact's custom field; returns the contact as served."""
        with self.lock:
            contact = self.contacts[str(contact_id)]
            fields = contact.setdefault("custom_fields", [])
            current = next((f for f in fields if f["api_name"] == api_name), None)
            if value is None:
                fields[:] = [f for f in fields if f["api_name"] != api_name]
            elif current is not None:
                current["value"] = current["value_formatted"] = str(value)
            else:
                customfield_id, index = self._field_identity(api_name)
                fields.append(custom_field(api_name, str(value), index=index, customfield_id=customfield_id))
            contact["custom_field_hash"] = custom_field_hash(fields)
            self._touch(contact)
            return copy.deepcopy(self._present(contact, _CONTACTS, full=True))

    def inject(self, entity: str, raw: Any) -> None:
        """Serve `raw` verbatim (any JSON value; RawJson for literals Python cannot write) after the normal
        records of `entity` ("contacts", "invoices" or "creditnotes") in every list of it, unfiltered."""
        with self.lock:
            self.injected[entity].append(raw)

    def answer_next_list(self, entity: str, body: bytes, *, times: int = 1,
                         content_type: str = "application/json;charset=UTF-8") -> None:
        """Answer the next `times` lists of `entity` with HTTP 200 and `body` as is (a wrong root, a page in
        another encoding, whatever a broken proxy sends)."""
        with self.lock:
            self._list_answers[entity].extend([Response(200, body, {"Content-Type": content_type})] * times)

    def record_counts(self) -> dict[str, int]:
        injected = {f"injected_{k}": len(v) for k, v in self.injected.items() if v}
        return {"contacts": len(self.contacts), "invoices": len(self.invoices),
                "creditnotes": len(self.creditnotes), **injected}

    def authenticate(self, req: Request) -> bool:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "zoho-oauthtoken" and self.accounts.token_status(token.strip()) == "valid"

    def error_body(self, status: int, message: Any) -> Any:
        if isinstance(message, dict) and "code" in message:
            return message
        if status == 401:
            return dict(_NOT_AUTHORIZED)  # missing, unknown and expired tokens all look alike [I]
        if status == 404 and message == "Not found":
            message = "Invalid URL Passed"
        return {"code": _STATUS_CODES.get(status, 1), "message": str(message)}

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "today": self.today.isoformat(), "contacts": list(self.contacts.values()),
                    "invoices": list(self.invoices.values()), "creditnotes": list(self.creditnotes.values()),
                    "api_calls": self.api_calls, "injected": self.injected}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.today = date.fromisoformat(state["today"])
            self.contacts = {c["contact_id"]: c for c in state["contacts"]}
            self.invoices = {i["invoice_id"]: i for i in state["invoices"]}
            self.creditnotes = {n["creditnote_id"]: n for n in state["creditnotes"]}
            self.api_calls = int(state.get("api_calls", 0))
            self.injected = {k: list(state.get("injected", {}).get(k, [])) for k in self.injected}

    # -- routing ----------------------------------------------------------------------------------
    def _register(self) -> None:
        api = self._api
        self.route("GET", rf"{API}/organizations", api(self._organizations, org=False))
        self.route("GET", rf"{API}/organizations/(\d+)", api(self._organization, org=False))
        for listing, store in ((_CONTACTS, "contacts"), (_INVOICES, "invoices"), (_CREDITNOTES, "creditnotes")):
            self.route("GET", rf"{API}/{listing.root}", api(self._lister(listing, store)))
            self.route("GET", rf"{API}/{listing.root}/(\d+)", api(self._getter(listing, store)))
        self.route("POST", rf"{API}/invoices/(\d+)/status/(sent|void|draft)", api(self._status_route))
        self.route("GET", r"/SecurePayment", self._preview, auth=False)

    def _api(self, handler: Callable[[Request], Any], *, org: bool = True) -> Callable[[Request], Any]:
        """Wrap an API handler: organisation check, then the daily and per-minute limits, then the handler."""

        def run(req: Request) -> Any:
            if org:
                self._check_org(req)
            if self.daily_limit is not None and self.api_calls >= self.daily_limit:
                return json_response({"code": 45, "message": _DAILY_MESSAGE.format(limit=self.daily_limit)}, 429)
            if self._minute_bucket is not None and (wait := self._minute_bucket.take()):
                return json_response({"code": 44, "message": _MINUTE_MESSAGE}, 429,
                                     {"Retry-After": str(max(1, math.ceil(wait)))})
            self.api_calls += 1
            return handler(req)

        return run

    def _check_org(self, req: Request) -> None:
        org = req.headers.get(ORG_HEADER) or req.arg("organization_id")
        # Code 6041 and both messages are inferred (Zoho Books answers an unknown organisation like this).
        if not org:
            raise HttpError(400, {"code": 6041, "message": "Organization ID is required: send the "
                                  "X-com-zoho-invoice-organizationid header or the organization_id parameter."})
        if org.strip() != self.organization_id:
            raise _unknown_org(org)

    # -- organisations ------------------------------------------------------------------------------
    def _org_record(self) -> dict:
        return {"organization_id": self.organization_id, "name": self.organization_name,
                "contact_name": "Sandbox Admin", "email": "admin@sandbox.example", "is_default_org": True,
                "language_code": "en", "fiscal_year_start_month": 0, "account_created_date": "2023-01-09",
                "time_zone": ORG_TIME_ZONE,
                "is_org_active": True, "currency_id": "4600000000000097", "currency_code": "EUR",
                "currency_symbol": "€", "currency_format": "###,##0.00", "price_precision": 2}

    def _organizations(self, req: Request) -> dict:
        return {"code": 0, "message": "success", "organizations": [self._org_record()]}

    def _organization(self, req: Request) -> dict:
        if req.params[0] != self.organization_id:
            raise _unknown_org(req.params[0])
        return {"code": 0, "message": "success", "organization": self._org_record()}

    # -- lists and records --------------------------------------------------------------------------
    def _lister(self, listing: _Listing, store: str) -> Callable[[Request], dict]:
        def handler(req: Request) -> dict | Response:
            if self._list_answers[store]:
                return self._list_answers[store].pop(0)
            page, per_page = page_args(req, default=200, maximum=200)
            rows, applied = _select(req, listing, getattr(self, store).values())
            column, order = _sort_args(req, listing)
            rows.sort(key=_sort_key(column, listing.id_key), reverse=order == "D")
            start = (page - 1) * per_page
            out = [self._present(r, listing, full=False) for r in rows[start : start + per_page]]
            injected = self.injected[store]
            if len(out) < per_page:  # injected raw records follow the normal ones
                skip = max(0, start - len(rows))
                out.extend(injected[skip : skip + per_page - len(out)])
            more = len(rows) + len(injected) > start + per_page
            answer = {"code": 0, "message": "success", listing.root: out,
                      "page_context": {"page": page, "per_page": per_page, "has_more_page": more,
                                       "report_name": listing.report_name, "applied_filter": applied,
                                       "sort_column": column, "sort_order": order}}
            return verbatim_response(answer) if injected else answer

        return handler

    def _getter(self, listing: _Listing, store: str) -> Callable[[Request], dict]:
        def handler(req: Request) -> dict:
            record = getattr(self, store).get(req.params[0])
            if record is None:
                raise HttpError(404, {"code": 1002, "message": listing.missing})  # 1002 [O-Books]
            return {"code": 0, "message": "success", listing.singular: self._present(record, listing, full=True)}

        return handler

    def _present(self, record: dict, listing: _Listing, *, full: bool) -> dict:
        out = dict(record) if full else {k: v for k, v in record.items() if k not in listing.hidden}
        url = out.get("invoice_url")
        if self.public_base_url and url and "CInvoiceID=" in url:  # links must resolve against this simulator
            out["invoice_url"] = f"{self.public_base_url}/SecurePayment?CInvoiceID={url.split('CInvoiceID=')[-1]}"
        return out

    # -- writes -------------------------------------------------------------------------------------
    def _status_route(self, req: Request) -> dict:
        inv = self.invoices.get(req.params[0])
        if inv is None:
            raise HttpError(404, {"code": 1002, "message": _INVOICES.missing})
        self._set_status(inv, req.params[1])
        label = {"sent": "Sent", "void": "Void", "draft": "Draft"}[req.params[1]]
        return {"code": 0, "message": f"Invoice status has been changed to {label}."}

    def _set_status(self, inv: dict, target: str) -> None:
        """Mark sent / void / draft. Codes of the refusals are inferred."""
        if target == "void" and inv["payment_made"]:
            raise HttpError(400, {"code": 1025, "message": "Invoices with payments cannot be voided. "
                                                             "Delete the payments first."})
        if target == "sent":
            if inv["status"] != "draft":
                raise HttpError(400, {"code": 1024, "message": "Only draft invoices can be marked as sent."})
            target = "overdue" if inv["due_date"] < self.today.isoformat() else "sent"
        if target == "draft" and inv["status"] != "void":
            raise HttpError(400, {"code": 1024, "message": "Only void invoices can be converted to draft."})
        inv["status"] = target
        inv["is_emailed"] = inv["is_emailed"] or target == "sent"
        self._touch(inv)
        self._update_receivables(inv["customer_id"])

    def _touch(self, record: dict) -> None:
        record["last_modified_time"] = zoho_time(self.tick())

    def _update_receivables(self, customer_id: str) -> None:
        contact = self.contacts.get(customer_id)
        if contact is None:
            return
        due = sum(_cents(i["balance"]) for i in self.invoices.values()
                  if i["customer_id"] == customer_id and i["status"] in OPEN_STATUSES)
        contact["outstanding_receivable_amount"] = due / 100

    def _field_identity(self, api_name: str) -> tuple[str, int]:
        """customfield_id and index of a field: as other contacts carry it, else a new one."""
        ids, indexes = [int(CUSTOMFIELD_ID)], [0]
        for contact in self.contacts.values():
            for f in contact.get("custom_fields") or ():
                if f["api_name"] == api_name:
                    return f["customfield_id"], f.get("index", 1)
                ids.append(int(f["customfield_id"]))
                indexes.append(int(f.get("index") or 0))
        return str(max(ids) + 1), max(indexes) + 1

    def _preview(self, req: Request) -> Response:
        token = req.arg("CInvoiceID") or ""
        inv = next((i for i in self.invoices.values() if i.get("invoice_url", "").endswith("=" + token)), None)
        if not token or inv is None:
            return html_response("<html><body><h1>404</h1><p>This invoice is no longer available.</p></body></html>",
                                 404)
        e = html.escape
        return html_response(
            f"<!DOCTYPE html><html><head><title>{e(inv['invoice_number'])}</title></head><body>"
            f"<h1>Invoice {e(inv['invoice_number'])}</h1><p>{e(inv['customer_name'])}</p>"
            f"<p>Date {e(inv['date'])}, due {e(inv['due_date'])}</p>"
            f"<p>Total {inv['total']:.2f} {e(inv['currency_code'])}, balance due {inv['balance']:.2f} "
            f"(status: {e(inv['status'])})</p></body></html>")


# -- list helpers ---------------------------------------------------------------------------------


def _unknown_org(org: str) -> HttpError:
    message = f"This user is not associated with the CompanyID/CompanyName:{org}."
    return HttpError(400, {"code": 6041, "message": message})


def _bad(name: str) -> HttpError:
    return HttpError(400, {"code": 2, "message": f"Invalid value passed for {name}"})  # code 2 [I]


def _select(req: Request, listing: _Listing, records: Any) -> tuple[list[dict], str]:
    """Rows matching the request's filters, and the applied_filter to report."""
    q = req.arg
    checks: list[Callable[[dict], bool]] = []
    if since := q("last_modified_time"):
        try:
            cutoff = parse_zoho_time(since).timestamp()
        except ValueError:
            raise _bad("last_modified_time") from None
        checks.append(lambda r: _epoch(r["last_modified_time"]) >= cutoff)
    if listing.date_field:
        field = listing.date_field
        for name, test in (("date", lambda v, d: v == d), ("date_start", lambda v, d: v >= d),
                           ("date_end", lambda v, d: v <= d), ("date_after", lambda v, d: v > d),
                           ("date_before", lambda v, d: v < d)):
            if (value := q(name)) is not None:
                try:
                    wanted = date.fromisoformat(value).isoformat()
                except ValueError:
                    raise _bad(name) from None
                checks.append(lambda r, t=test, w=wanted: bool(r.get(field)) and t(r[field], w))
    status, applied = _status_arg(req, listing)
    if status == "unpaid":
        checks.append(lambda r: r.get("status") in OPEN_STATUSES)
    elif status is not None:
        checks.append(lambda r: r.get("status") == status)
    for name in listing.text_fields:
        if (value := q(name)) is not None:
            checks.append(lambda r, n=name, v=value: str(r.get(n, "")) == v)
        if (value := q(f"{name}_startswith")) is not None:
            checks.append(lambda r, n=name, v=value.lower(): str(r.get(n, "")).lower().startswith(v))
        if (value := q(f"{name}_contains")) is not None:
            checks.append(lambda r, n=name, v=value.lower(): v in str(r.get(n, "")).lower())
    if text := (q("search_text") or "").lower():
        checks.append(lambda r: any(text in str(r.get(n, "")).lower() for n in listing.text_fields))
    return [r for r in records if all(check(r) for check in checks)], applied


def _status_arg(req: Request, listing: _Listing) -> tuple[str | None, str]:
    """The status wanted (from `status` or `filter_by=Status.X`) and the applied_filter label."""
    if (filter_by := req.arg("filter_by")) is not None:
        kind, _, value = filter_by.partition(".")
        if kind.lower() != "status":
            raise _bad("filter_by")
        if value.lower() == "all":
            return None, filter_by
        status = next((s for s in listing.statuses if s.replace("_", "") == value.lower()), None)
        if status is None:
            raise _bad("filter_by")
        return status, filter_by
    if (status := req.arg("status")) is not None:
        if status not in listing.statuses:
            raise _bad("status")
        return status, "Status." + "".join(w.capitalize() for w in status.split("_")).replace("Overdue", "OverDue")
    return None, "Status.All"


def _sort_args(req: Request, listing: _Listing) -> tuple[str, str]:
    column = req.arg("sort_column") or listing.default_sort[0]
    if column not in listing.sortable:
        raise _bad("sort_column")
    default_order = listing.default_sort[1] if column == listing.default_sort[0] else "A"
    order = (req.arg("sort_order") or default_order).upper()
    if order not in ("A", "D"):
        raise _bad("sort_order")
    return column, order


def _sort_key(column: str, id_key: str) -> Callable[[dict], tuple]:
    if column.endswith("_time"):
        return lambda r: (_epoch(r.get(column) or ""), int(r[id_key]))
    if column in _NUMERIC:
        return lambda r: (float(r.get(column) or 0), int(r[id_key]))
    return lambda r: (str(r.get(column) or "").lower(), int(r[id_key]))


@lru_cache(maxsize=200_000)
def _epoch(text: str) -> float:
    # Seconds, not aware datetimes: timestamps carry different offsets and sorting floats is much cheaper.
    try:
        return parse_zoho_time(text).timestamp()
    except ValueError:
        return -math.inf


def _cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())

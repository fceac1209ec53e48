"""Billy API v2 simulator over real HTTP (VENDOR_APIS §3), quirks included: `X-Access-Token`, plural list roots with
`meta.paging`, singular write roots answered with plural roots plus related roots, embed and sideload, no
`updatedTime` anywhere, JSON-number amounts, 25 % VAT computed, `invoiceNo` and `approvedTime` given on approval,
balances moved only by payments, and errors as `errorCode`/`errorMessage`.

Facts marked [V]/[O] come from VENDOR_APIS §3; [I] marks what the simulator infers (the connector must not rely on it).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ._http_sim import HttpError, Request, Simulator
from .billy_demo import (
    CURRENCY,
    REVENUE_ACCOUNT_ID,
    SALES_TAX_RULESET_ID,
    TAX_RATE_ID,
    BillyData,
    as_decimal,
    billy_id,
    billy_time,
    due_date,
    invoice_totals,
    number,
    price_line,
)

HELP_URL = "https://billysbilling.com/api"
MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 1000, 100  # clients cap pageSize at 1000 "per the docs" [O]; the default [I]
SINGULAR = {"contacts": "contact", "contactPersons": "contactPerson", "products": "product",
            "productPrices": "productPrice", "invoices": "invoice", "invoiceLines": "invoiceLine"}
WRITABLE = "contacts|contactPersons|products|invoices"
# parent resource -> (child resource, the child's key to the parent, the parent's embed name) [O]
CHILDREN = {"contacts": ("contactPersons", "contactId", "contactPersons"),
            "products": ("productPrices", "productId", "prices"),
            "invoices": ("invoiceLines", "invoiceId", "lines")}
# include "<type>.<relation>" -> (related resource, key, has many: key on the child; else key on this record) [O]
RELATIONS = {("contact", "contactPersons"): ("contactPersons", "contactId", True),
             ("product", "prices"): ("productPrices", "productId", True),
             ("invoice", "lines"): ("invoiceLines", "invoiceId", True),
             ("invoice", "contact"): ("contacts", "contactId", False),
             ("invoiceLine", "product"): ("products", "productId", False),
             ("invoiceLine", "invoice"): ("invoices", "invoiceId", False),
             ("contactPerson", "contact"): ("contacts", "contactId", False),
             ("productPrice", "product"): ("products", "productId", False)}
_STATUS_CODES = {400: "INVALID_REQUEST_BODY", 401: "OAUTH_INVALID_ACCESS_TOKEN", 404: "ROUTE_NOT_FOUND",
                 422: "VALIDATION_ERROR", 429: "TOO_MANY_REQUESTS"}  # 404/422/429 codes [I], the rest [O]

CONTACT_FIELDS = ("type", "name", "countryId", "street", "cityId", "cityText", "stateText", "zipcodeId",
                  "zipcodeText", "contactNo", "phone", "fax", "currencyId", "registrationNo", "ean", "localeId",
                  "isCustomer", "isSupplier", "paymentTermsMode", "paymentTermsDays", "isArchived",
                  "isSalesTaxExempt")
CONTACT_DEFAULTS = {"type": "company", "name": "", "countryId": "", "street": None, "cityId": None, "cityText": None, "stateText": None,
                    "zipcodeId": None, "zipcodeText": None, "contactNo": None, "phone": None, "fax": None,
                    "currencyId": CURRENCY, "registrationNo": None, "ean": None, "localeId": "da_DK",
                    "isCustomer": True, "isSupplier": False, "paymentTermsMode": "net", "paymentTermsDays": 14,
                    "isArchived": False, "isSalesTaxExempt": False}  # [I]
PERSON_FIELDS = ("name", "email", "isPrimary")
PRODUCT_FIELDS = ("name", "description", "accountId", "productNo", "suppliersProductNo", "salesTaxRulesetId",
                  "isArchived", "isInInventory")
INVOICE_FIELDS = ("type", "contactId", "attContactPersonId", "entryDate", "paymentTermsMode", "paymentTermsDays",
                  "dueDate", "state", "sentState", "taxMode", "currencyId", "exchangeRate", "creditedInvoiceId",
                  "contactMessage", "lineDescription", "externalId", "orderNo")
_BOOLEANS = frozenset({"isCustomer", "isSupplier", "isArchived", "isSalesTaxExempt", "isPrimary", "isInInventory",
                       "isPaid"})
_TIMES = ("minApprovedTime", "maxApprovedTime")
_DATES = ("minEntryDate", "maxEntryDate", "minDueDate", "maxDueDate")
# list filters per resource: equality on these fields (booleans as "true"/"false") [O], besides q, dates, times
FILTERS = {"contacts": ("type", "isCustomer", "isSupplier", "isArchived", "registrationNo", "countryId"),
           "contactPersons": ("contactId", "email", "isPrimary"),
           "products": ("isArchived", "productNo"),
           "productPrices": ("productId", "currencyId"),
           "invoices": ("contactId", "state", "isPaid", "type", "invoiceNo", "externalId", "currencyId",
                        "creditedInvoiceId"),
           "invoiceLines": ("invoiceId", "productId")}
SORTS = {"contacts": ("name", "createdTime", "contactNo"), "products": ("name", "productNo", "createdTime"),
         "invoices": ("entryDate", "dueDate", "createdTime", "invoiceNo", "amount", "grossAmount", "balance",
                      "contact.name", "approvedTime", "orderNo")}  # [O]


def _error(status: int, code: str, message: str, **extra: Any) -> HttpError:
    return HttpError(status, {"errorCode": code, "errorMessage": message, **extra})


def _invalid(errors: Mapping[str, str]) -> HttpError:
    """422 naming each field, with a field-level `validationErrors` object [I]."""
    said = "; ".join(f"`{field}` {message}" for field, message in errors.items())
    return _error(422, "VALIDATION_ERROR", f"Validation failed: {said}", validationErrors=dict(errors))


def _bad_parameter(message: str) -> HttpError:
    return _error(400, "INVALID_PARAMETER", message)  # the code is inferred [I]


class BillySim(Simulator):
    """One in-memory Billy organisation behind `/v2/...`."""

    name = "billy"
    rate_limit_message = "Too many requests, please slow down"  # Billy documents no limit [I]

    def __init__(self, *, access_token: str, data: BillyData | None = None, max_rps: float | None = None,
                 clock_start: datetime | None = None):
        super().__init__(max_rps=max_rps, clock_start=clock_start)
        self.access_token = access_token
        data = data or BillyData()
        self.organization = dict(data.organization)
        self.store: dict[str, dict[str, dict]] = {r: {} for r in SINGULAR}
        self._seq = 0
        for resource, records in (("contacts", data.contacts), ("products", data.products),
                                  ("invoices", data.invoices)):
            for record in copy.deepcopy(records):
                self._put_loaded(resource, record)
        numbers = [int(i["invoiceNo"]) for i in self.store["invoices"].values() if str(i.get("invoiceNo")).isdigit()]
        self._next_no = max(numbers, default=0) + 1
        r, res = self.route, "|".join(SINGULAR)
        r("GET", r"/v2/organization", lambda req: {"meta": _meta(), "organization": dict(self.organization)})
        r("GET", rf"/v2/({res})", self._list)
        r("GET", rf"/v2/({res})/([^/]+)", self._get)
        r("POST", rf"/v2/({WRITABLE})", self._post)
        r("PUT", rf"/v2/({WRITABLE})/([^/]+)", self._put)
        r("DELETE", rf"/v2/({WRITABLE})/([^/]+)", self._delete)

    # -- hooks ------------------------------------------------------------------------------------------------------
    def authenticate(self, req: Request) -> bool:
        return req.headers.get("x-access-token") == self.access_token  # [V]

    def error_body(self, status: int, message: Any) -> Any:
        """`{"meta": {statusCode, success: false}, "errorMessage", "errorCode", "helpUrl"}` [O]."""
        extra: dict[str, Any] = {}
        if isinstance(message, dict) and "errorCode" in message:
            extra = {k: v for k, v in message.items() if k not in ("errorCode", "errorMessage")}
            code, text = message["errorCode"], message.get("errorMessage", "")
        elif isinstance(message, dict):  # field errors (fail_next "422")
            code, text, extra = "VALIDATION_ERROR", f"Validation failed: {message}", {"validationErrors": message}
        else:
            code = _STATUS_CODES.get(status, "INTERNAL_ERROR")
            text = "The access token is invalid or missing." if status == 401 else str(message)
        return {"meta": {"statusCode": status, "success": False}, "errorMessage": text, "errorCode": code,
                "helpUrl": HELP_URL, **extra}

    def record_counts(self) -> dict[str, int]:
        contacts, invoices = self.store["contacts"].values(), self.store["invoices"].values()
        return {"companies": sum(c["type"] == "company" for c in contacts),
                "persons": sum(c["type"] == "person" for c in contacts),
                "products": len(self.store["products"]),
                "invoices": sum(i["type"] == "invoice" for i in invoices),
                "credit_notes": sum(i["type"] == "creditNote" for i in invoices)}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "organization": self.organization, "seq": self._seq,
                    "next_invoice_no": self._next_no,
                    **{r: copy.deepcopy(list(records.values())) for r, records in self.store.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            super().restore(state)
            self.organization = dict(state["organization"])
            self.store = {r: {rec["id"]: dict(rec) for rec in state.get(r, [])} for r in SINGULAR}
            self._seq, self._next_no = state["seq"], state["next_invoice_no"]

    # -- what people do in Billy's own UI (tests and demos) ---------------------------------------------------------
    def user_add(self, resource: str, **fields: Any) -> dict:
        """Create as POST does (validation included: ValueError); `state="approved"` approves an invoice at once."""
        with self.lock:
            return self._full(resource, _as_user(lambda: self._add(_writable(resource), fields)))

    def user_edit(self, resource: str, record_id: str, **fields: Any) -> dict:
        """Change as PUT does; for a contact, `contactPersons` replace its persons (the UI edits them together),
        for a product `prices` replace its prices, for an invoice `lines` its lines and `state` moves it on."""
        with self.lock:
            resource = _writable(resource)
            persons = fields.pop("contactPersons", None) if resource == "contacts" else None
            record = _as_user(lambda: self._change(resource, self._record(resource, record_id), fields))
            if persons is not None:
                for old in self._children("contactPersons", "contactId", record_id):
                    del self.store["contactPersons"][old["id"]]
                _as_user(lambda: self._add_persons(record_id, persons))
            return self._full(resource, record)

    def user_delete(self, resource: str, record_id: str) -> None:
        """Delete with no questions asked (the UI's checks are not simulated), children included."""
        with self.lock:
            self._remove(resource, self._record(resource, record_id)["id"])

    def pay_invoice(self, invoice_id: str, amount: Any = None) -> dict:
        """Book a payment against an approved invoice: `balance` goes down by `amount` (all of it by default) and
        `isPaid` turns true at 0. Nothing on the invoice records when [O]."""
        with self.lock:
            invoice = self._record("invoices", invoice_id)
            if invoice["state"] != "approved":
                raise ValueError(f"invoice {invoice_id} is {invoice['state']}: only approved invoices are paid")
            paid = as_decimal(invoice["balance"] if amount is None else amount)
            if paid is None or paid <= 0:
                raise ValueError(f"not a payment amount: {amount!r}")
            self.tick()
            _set_balance(invoice, as_decimal(invoice["balance"]) - paid)
            return self._full("invoices", invoice)

    def records(self, resource: str) -> list[dict]:
        """Copies of every record of `resource`; contacts with `contactPersons`, products with `prices` and invoices
        with `lines` embedded, as a list read with embedding answers them."""
        with self.lock:
            return [self._full(resource, r) for r in self.store[resource].values()]

    # -- HTTP handlers ----------------------------------------------------------------------------------------------
    def _list(self, req: Request) -> dict:
        resource = req.params[0]
        page, size = _int_arg(req, "page", 1), _int_arg(req, "pageSize", DEFAULT_PAGE_SIZE)
        if size > MAX_PAGE_SIZE:  # [I]: a clear refusal; a silent cap would break every client's page loop
            raise _bad_parameter(f"pageSize must be at most {MAX_PAGE_SIZE}, got {size}")
        rows = self._sorted(resource, self._filtered(resource, req), req)
        chunk = rows[(page - 1) * size: page * size]
        records, side = self._render(resource, chunk, _includes(req))
        paging = {"page": page, "pageCount": max(1, math.ceil(len(rows) / size)), "pageSize": size,
                  "total": len(rows)}
        return {"meta": _meta(paging=paging), resource: records, **{k: v for k, v in side.items() if k != resource}}

    def _get(self, req: Request) -> dict:
        resource, record_id = req.params
        records, side = self._render(resource, [self._record(resource, record_id)], _includes(req))
        return {"meta": _meta(), SINGULAR[resource]: records[0], **side}

    def _post(self, req: Request) -> dict:
        resource = req.params[0]
        return self._answer(resource, self._add(resource, _root(req, resource)))

    def _put(self, req: Request) -> dict:
        resource, record_id = req.params
        record = self._record(resource, record_id)
        return self._answer(resource, self._change(resource, record, _root(req, resource)))

    def _delete(self, req: Request) -> dict:
        resource, record_id = req.params
        record = self._record(resource, record_id)
        if resource == "invoices" and record["state"] != "draft":  # approved ones are voided, not deleted [I]
            raise _invalid({"state": "only a draft can be deleted; void an approved invoice instead"})
        if resource == "contacts" and any(i["contactId"] == record_id for i in self.store["invoices"].values()):
            raise _invalid({"id": "the contact has invoices and cannot be deleted"})  # [I]
        return {"meta": {**_meta(), "deletedRecords": self._remove(resource, record_id)}}  # [O]

    def _answer(self, resource: str, record: dict) -> dict:
        """A write's answer: the plural root with the saved record, and its children's root [O]."""
        answer = {"meta": _meta(), resource: [copy.deepcopy(record)]}
        if resource in CHILDREN:
            child, key, _ = CHILDREN[resource]
            answer[child] = copy.deepcopy(self._children(child, key, record["id"]))
        return answer

    # -- reading ----------------------------------------------------------------------------------------------------
    def _record(self, resource: str, record_id: str) -> dict:
        record = self.store.get(resource, {}).get(record_id)
        if record is None:
            raise _error(404, "RECORD_NOT_FOUND",
                         f"No `{SINGULAR.get(resource, resource)}` record with id `{record_id}` was found.")  # [O]
        return record

    def _children(self, resource: str, key: str, parent_id: str) -> list[dict]:
        rows = [r for r in self.store[resource].values() if r.get(key) == parent_id]
        return sorted(rows, key=lambda r: r.get("priority") or 0) if resource == "invoiceLines" else rows

    def _full(self, resource: str, record: dict) -> dict:
        full = copy.deepcopy(record)
        if resource in CHILDREN:
            child, key, embed = CHILDREN[resource]
            full[embed] = copy.deepcopy(self._children(child, key, record["id"]))
        return full

    def _filtered(self, resource: str, req: Request) -> list[dict]:
        rows = list(self.store[resource].values())
        for field in FILTERS[resource]:
            value = req.arg(field)
            if value is None:
                continue
            if field in _BOOLEANS:
                wanted: Any = _boolean(field, value)
            elif field == "type":
                wanted = _invoice_type(value) if resource == "invoices" else value
            else:
                wanted = value
            rows = [r for r in rows if r.get(field) == wanted]
        if resource == "invoices":
            for name in _DATES:
                if (value := req.arg(name)) is not None:
                    bound, field = _date_arg(name, value), "entryDate" if "Entry" in name else "dueDate"
                    rows = [r for r in rows if r.get(field) and _within(date.fromisoformat(r[field]), bound, name)]
            for name in _TIMES:
                if (value := req.arg(name)) is not None:
                    bound = _time_arg(name, value)
                    rows = [r for r in rows if r.get("approvedTime")
                            and _within(datetime.fromisoformat(r["approvedTime"]), bound, name)]
        if (q := (req.arg("q") or "").strip().lower()) and resource in ("contacts", "products", "invoices"):
            searched = {"contacts": ("name", "registrationNo"), "products": ("name", "productNo"),
                        "invoices": ("invoiceNo", "lineDescription", "externalId")}[resource]
            rows = [r for r in rows if any(q in str(r.get(f) or "").lower() for f in searched)]  # [I]
        return rows

    def _sorted(self, resource: str, rows: list[dict], req: Request) -> list[dict]:
        prop, direction = req.arg("sortProperty"), (req.arg("sortDirection") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise _bad_parameter(f"sortDirection must be ASC or DESC, got {direction!r}")
        if prop is None:
            return rows  # creation order [I]
        if prop not in SORTS.get(resource, ()):
            raise _bad_parameter(f"cannot sort {resource} by {prop!r}")
        contacts = self.store["contacts"]

        def key(r: dict) -> tuple:
            value = (contacts.get(r.get("contactId")) or {}).get("name") if prop == "contact.name" else r.get(prop)
            if prop == "invoiceNo" and isinstance(value, str) and value.isdigit():
                value = int(value)
            return (value is None, value if value is not None else 0)

        return sorted(rows, key=key, reverse=direction == "DESC")

    def _render(self, resource: str, records: list[dict], includes: list[tuple[str, str, str]],
                depth: int = 0, index: dict | None = None) -> tuple[list[dict], dict[str, list[dict]]]:
        """Copies of `records` with the included relations embedded, and the sideloaded roots [O]."""
        side: dict[str, dict[str, dict]] = {}
        index = {} if index is None else index  # (child resource, key) -> {parent id: children}, built once
        out = []
        for record in records:
            item = copy.deepcopy(record)
            for kind, relation, mode in includes:
                if kind != SINGULAR[resource] or depth > 2:
                    continue
                target, key, many = RELATIONS[(kind, relation)]
                if many:
                    if (target, key) not in index:
                        groups: dict[str, list[dict]] = {}
                        for row in self.store[target].values():
                            groups.setdefault(row.get(key), []).append(row)
                        if target == "invoiceLines":
                            for rows in groups.values():
                                rows.sort(key=lambda r: r.get("priority") or 0)
                        index[(target, key)] = groups
                    related = index[(target, key)].get(record["id"], [])
                else:
                    related = [self.store[target][record[key]]] if record.get(key) in self.store[target] else []
                rendered, nested = self._render(target, related, includes, depth + 1, index)
                for root, rows in nested.items():
                    for row in rows:
                        side.setdefault(root, {}).setdefault(row["id"], row)
                if mode == "embed":
                    item[relation] = rendered if many else (rendered[0] if rendered else None)
                else:
                    for row in rendered:
                        side.setdefault(target, {}).setdefault(row["id"], row)
            out.append(item)
        return out, {root: list(rows.values()) for root, rows in side.items()}

    # -- writing ----------------------------------------------------------------------------------------------------
    def _new_id(self, resource: str) -> str:
        while True:
            self._seq += 1
            record_id = billy_id(f"billy:{self.organization['id']}:{resource}:{self._seq}")
            if record_id not in self.store[resource]:
                return record_id

    def _put_loaded(self, resource: str, record: dict) -> None:
        """A demo record with its children embedded, split into the stores."""
        if resource in CHILDREN:
            child, key, embed = CHILDREN[resource]
            for row in record.pop(embed, None) or []:
                self.store[child][row["id"]] = {**row, key: record["id"]}
        self.store[resource][record["id"]] = record

    def _remove(self, resource: str, record_id: str) -> dict[str, list[str]]:
        deleted = {resource: [record_id]}
        if resource in CHILDREN:
            child, key, _ = CHILDREN[resource]
            gone = [r["id"] for r in self._children(child, key, record_id)]
            for child_id in gone:
                del self.store[child][child_id]
            if gone:
                deleted[child] = gone
        del self.store[resource][record_id]
        return deleted

    def _check_organization(self, body: Mapping[str, Any]) -> None:
        if "organizationId" in body and body["organizationId"] != self.organization["id"]:
            raise _invalid({"organizationId": "is not the organisation of this access token"})  # [I]

    def _add(self, resource: str, body: Mapping[str, Any]) -> dict:
        self._check_organization(body)
        return {"contacts": self._add_contact, "contactPersons": self._add_person, "products": self._add_product,
                "invoices": self._add_invoice}[resource](body)

    def _change(self, resource: str, record: dict, body: Mapping[str, Any]) -> dict:
        self._check_organization(body)
        if resource == "contacts":
            record.update(_contact_fields(body, creating=False))  # persons are left alone [O]
        elif resource == "contactPersons":
            fields = _person_fields(body, "")
            if fields.get("isPrimary"):
                self._demote_others(record["contactId"], record["id"])
            record.update(fields)
        elif resource == "products":
            record.update(_product_fields(body, creating=False))
            if "prices" in body:  # the sent list replaces the prices; the others are deleted [I]
                prices = self._prices(record["id"], body["prices"])
                for old in self._children("productPrices", "productId", record["id"]):
                    del self.store["productPrices"][old["id"]]
                self._store_prices(prices)
        else:
            self._change_invoice(record, body)
        self.tick()
        return record

    # contacts and their persons
    def _add_contact(self, body: Mapping[str, Any]) -> dict:
        fields = _contact_fields(body, creating=True)
        persons = body.get("contactPersons") or []
        contact_id = self._new_id("contacts")
        self._check_persons(persons)
        contact = {"id": contact_id, "organizationId": self.organization["id"], **CONTACT_DEFAULTS, **fields,
                   "createdTime": billy_time(self.tick())}
        self.store["contacts"][contact_id] = contact
        self._add_persons(contact_id, persons)
        return contact

    def _check_persons(self, persons: Any) -> None:
        if not isinstance(persons, list) or not all(isinstance(p, Mapping) for p in persons):
            raise _invalid({"contactPersons": "must be a list of contact persons"})
        for n, person in enumerate(persons):
            _person_fields(person, f"contactPersons.{n}.")

    def _add_persons(self, contact_id: str, persons: list[Mapping[str, Any]]) -> None:
        self._check_persons(persons)
        for person in persons:
            self._add_person({**person, "contactId": contact_id})

    def _add_person(self, body: Mapping[str, Any]) -> dict:
        contact_id = body.get("contactId")
        if not isinstance(contact_id, str) or contact_id not in self.store["contacts"]:
            raise _invalid({"contactId": "does not refer to a contact"})
        fields = _person_fields(body, "")
        siblings = self._children("contactPersons", "contactId", contact_id)
        primary = bool(fields.get("isPrimary")) or not any(p["isPrimary"] for p in siblings)  # one primary [I]
        person = {"id": self._new_id("contactPersons"), "contactId": contact_id, "name": fields.get("name") or "",
                  "email": fields.get("email"), "isPrimary": primary}
        if primary:
            self._demote_others(contact_id, person["id"])
        self.store["contactPersons"][person["id"]] = person
        return person

    def _demote_others(self, contact_id: str, primary_id: str) -> None:
        for other in self._children("contactPersons", "contactId", contact_id):
            if other["id"] != primary_id:
                other["isPrimary"] = False

    # products and their prices
    def _add_product(self, body: Mapping[str, Any]) -> dict:
        fields = _product_fields(body, creating=True)
        product_id = self._new_id("products")
        prices = self._prices(product_id, body.get("prices") or [])
        product = {"id": product_id, "organizationId": self.organization["id"], "name": fields.pop("name"),
                   "description": None, "accountId": REVENUE_ACCOUNT_ID, "productNo": None, "suppliersProductNo": None,
                   "salesTaxRulesetId": SALES_TAX_RULESET_ID, "isArchived": False, "isInInventory": False,
                   **fields, "createdTime": billy_time(self.tick())}  # createdTime on products [I]
        self.store["products"][product_id] = product
        self._store_prices(prices)
        return product

    def _prices(self, product_id: str, prices: Any) -> list[dict]:
        if not isinstance(prices, list) or not all(isinstance(p, Mapping) for p in prices):
            raise _invalid({"prices": "must be a list of prices"})
        out = []
        for n, price in enumerate(prices):
            amount = as_decimal(price.get("unitPrice"))
            if amount is None:
                raise _invalid({f"prices.{n}.unitPrice": "is required and must be a number"})
            currency = str(price.get("currencyId") or self.organization["baseCurrencyId"]).strip().upper()
            out.append({"id": None, "productId": product_id, "unitPrice": number(amount), "currencyId": currency})
        return out

    def _store_prices(self, prices: list[dict]) -> None:
        for price in prices:
            price["id"] = self._new_id("productPrices")
            self.store["productPrices"][price["id"]] = price

    # invoices and credit notes
    def _add_invoice(self, body: Mapping[str, Any]) -> dict:
        fields = self._invoice_fields(body, None)
        if "lines" not in body:
            raise _invalid({"lines": "at least one line is required"})
        state = fields.pop("state", "draft")
        if state not in ("draft", "approved"):
            raise _invalid({"state": "a new invoice is a draft or approved"})
        contact = self.store["contacts"][fields["contactId"]]
        person = next((p for p in self._children("contactPersons", "contactId", contact["id"]) if p["isPrimary"]),
                      None)
        invoice_id = self._new_id("invoices")
        lines = self._lines(invoice_id, body["lines"], fields.get("taxMode", "excl"))
        now = billy_time(self.tick())
        invoice = {"id": invoice_id, "organizationId": self.organization["id"], "type": "invoice",
                   "createdTime": now, "approvedTime": None, "contactId": contact["id"],
                   "attContactPersonId": person["id"] if person else None, "entryDate": None,
                   "paymentTermsMode": "net", "paymentTermsDays": contact.get("paymentTermsDays") or 14,
                   "dueDate": None, "state": "draft", "sentState": "unsent", "invoiceNo": None, "taxMode": "excl",
                   "amount": 0, "tax": 0, "grossAmount": 0, "currencyId": self.organization["baseCurrencyId"],
                   "exchangeRate": 1, "balance": 0, "isPaid": False, "creditedInvoiceId": None,
                   "contactMessage": None, "lineDescription": None, "externalId": None, "orderNo": None}
        invoice.update(fields)
        self._store_lines(invoice_id, lines)
        self._settle_terms(invoice)
        self._totals(invoice)
        if state == "approved":
            self._approve(invoice)
        self.store["invoices"][invoice_id] = invoice
        return invoice

    def _change_invoice(self, invoice: dict, body: Mapping[str, Any]) -> None:
        if invoice["state"] == "voided":
            raise _invalid({"state": "a voided invoice cannot be changed"})  # [I]
        fields = self._invoice_fields(body, invoice)
        state = fields.pop("state", invoice["state"])
        lines = self._lines(invoice["id"], body["lines"], fields.get("taxMode", invoice["taxMode"])) \
            if "lines" in body else None
        moves = {("draft", "draft"), ("draft", "approved"), ("approved", "approved"), ("approved", "voided")}
        if (invoice["state"], state) not in moves:
            raise _invalid({"state": f"an invoice cannot go from {invoice['state']} to {state}"})  # [I]
        invoice.update(fields)
        if lines is not None:  # the sent lines replace the old ones [I]
            for old in self._children("invoiceLines", "invoiceId", invoice["id"]):
                del self.store["invoiceLines"][old["id"]]
            self._store_lines(invoice["id"], lines)
        self._settle_terms(invoice)
        self._totals(invoice)
        if (invoice["state"], state) == ("draft", "approved"):
            self._approve(invoice)
        elif state == "voided":
            invoice.update(state="voided", balance=0, isPaid=False)  # [I]

    def _invoice_fields(self, body: Mapping[str, Any], invoice: dict | None) -> dict:
        fields = {k: body[k] for k in INVOICE_FIELDS if k in body}
        errors: dict[str, str] = {}
        if (invoice is None or "contactId" in fields) and fields.get("contactId") not in self.store["contacts"]:
            errors["contactId"] = "is required" if not fields.get("contactId") else "does not refer to a contact"
        if (invoice is None or "entryDate" in fields) and not _is_date(fields.get("entryDate")):
            errors["entryDate"] = "is required (YYYY-MM-DD)" if not fields.get("entryDate") else "is not a date"
        if "type" in fields:
            fields["type"] = _invoice_type(fields["type"])
            if fields["type"] not in ("invoice", "creditNote"):
                errors["type"] = "must be invoice or creditNote"
        if "paymentTermsMode" in fields and fields["paymentTermsMode"] not in ("net", "netEndOfMonth", "date"):
            errors["paymentTermsMode"] = "must be net, netEndOfMonth or date"
        if "paymentTermsDays" in fields and (isinstance(fields["paymentTermsDays"], bool)
                                             or not isinstance(fields["paymentTermsDays"], int)):
            errors["paymentTermsDays"] = "must be a whole number of days"
        mode = fields.get("paymentTermsMode", invoice["paymentTermsMode"] if invoice else "net")
        due = fields.get("dueDate", invoice["dueDate"] if invoice else None)
        if mode == "date" and not _is_date(due):
            errors["dueDate"] = "is required (YYYY-MM-DD) with paymentTermsMode date"
        if "taxMode" in fields and fields["taxMode"] not in ("excl", "incl"):
            errors["taxMode"] = "must be excl or incl"
        if "state" in fields and fields["state"] not in ("draft", "approved", "voided"):
            errors["state"] = "must be draft, approved or voided"
        credited = fields.get("creditedInvoiceId")
        if credited is not None and credited not in self.store["invoices"]:
            errors["creditedInvoiceId"] = "does not refer to an invoice"
        if "currencyId" in fields:
            fields["currencyId"] = str(fields["currencyId"] or "").strip().upper() or self.organization["baseCurrencyId"]
        if errors:
            raise _invalid(errors)
        return fields

    def _lines(self, invoice_id: str, lines: Any, tax_mode: str) -> list[dict]:
        if not isinstance(lines, list) or not lines or not all(isinstance(line, Mapping) for line in lines):
            raise _invalid({"lines": "at least one line is required"})
        out, errors = [], {}
        for n, line in enumerate(lines):
            price, quantity = as_decimal(line.get("unitPrice")), as_decimal(line.get("quantity", 1))
            product = self.store["products"].get(line.get("productId")) if line.get("productId") else None
            if price is None:
                errors[f"lines.{n}.unitPrice"] = "is required and must be a number"
            if quantity is None and line.get("quantity") is not None:
                errors[f"lines.{n}.quantity"] = "must be a number"
            if line.get("productId") and product is None:
                errors[f"lines.{n}.productId"] = "does not refer to a product"
            if errors:
                continue
            description = line.get("description")
            out.append({"id": None, "invoiceId": invoice_id, "productId": product["id"] if product else None,
                        "description": description if description is not None else (product or {}).get("name", ""),
                        "quantity": number(quantity if quantity is not None else Decimal(1)),
                        "unitPrice": number(price), "taxRateId": TAX_RATE_ID,
                        "priority": line.get("priority") if isinstance(line.get("priority"), int) else n + 1})
        if errors:
            raise _invalid(errors)
        return [price_line(line, tax_mode) for line in out]

    def _store_lines(self, invoice_id: str, lines: list[dict]) -> None:
        for line in lines:
            line["id"] = self._new_id("invoiceLines")
            self.store["invoiceLines"][line["id"]] = {**line, "invoiceId": invoice_id}

    def _settle_terms(self, invoice: dict) -> None:
        if invoice["paymentTermsMode"] != "date":  # the due date follows the terms [O]
            entry = date.fromisoformat(invoice["entryDate"])
            invoice["dueDate"] = due_date(entry, invoice["paymentTermsMode"], invoice["paymentTermsDays"]).isoformat()

    def _totals(self, invoice: dict) -> None:
        """amount, tax and grossAmount from the lines; an approved invoice keeps what was paid on it."""
        lines = self._children("invoiceLines", "invoiceId", invoice["id"])
        lines = [price_line(line, invoice["taxMode"]) for line in lines]
        for line in lines:
            self.store["invoiceLines"][line["id"]] = line
        paid = as_decimal(invoice["grossAmount"]) - as_decimal(invoice["balance"])
        amount, tax = invoice_totals(lines)
        invoice.update(amount=number(amount), tax=number(tax), grossAmount=number(amount + tax))
        if invoice["state"] == "approved":
            _set_balance(invoice, amount + tax - paid)

    def _approve(self, invoice: dict) -> None:
        """Number, time and balance on approval [O]; a credit note settles what it can of the credited invoice [I]."""
        invoice.update(state="approved", invoiceNo=str(self._next_no), approvedTime=billy_time(self.tick()))
        self._next_no += 1
        gross = as_decimal(invoice["grossAmount"])
        credited = self.store["invoices"].get(invoice.get("creditedInvoiceId") or "")
        applied = Decimal(0)
        if invoice["type"] == "creditNote" and credited is not None and credited["state"] == "approved":
            applied = max(Decimal(0), min(gross, as_decimal(credited["balance"])))
            _set_balance(credited, as_decimal(credited["balance"]) - applied)
        _set_balance(invoice, gross - applied)


# -- helpers ---------------------------------------------------------------------------------------------------------

def _meta(**extra: Any) -> dict:
    return {"statusCode": 200, "success": True, "time": 0.012, **extra}  # [O]


def _set_balance(invoice: dict, balance: Decimal) -> None:
    invoice["balance"] = number(max(balance, Decimal(0)))
    invoice["isPaid"] = balance <= 0


def _root(req: Request, resource: str) -> dict:
    if not isinstance(req.json, dict) or not isinstance(req.json.get(SINGULAR[resource]), dict):
        raise _error(400, "INVALID_REQUEST_BODY", f"The request body must hold a `{SINGULAR[resource]}` object.")
    return req.json[SINGULAR[resource]]


def _writable(resource: str) -> str:
    if resource not in ("contacts", "contactPersons", "products", "invoices"):
        raise ValueError(f"unknown Billy resource {resource!r}")
    return resource


def _as_user(action: Callable[[], dict | None]) -> Any:
    """A user action's validation errors as ValueError (the UI would show them)."""
    try:
        return action()
    except HttpError as exc:
        message = exc.message if isinstance(exc.message, dict) else {"errorMessage": str(exc.message)}
        raise ValueError(f"{message.get('errorCode', 'ERROR')}: {message.get('errorMessage')}") from None


def _contact_fields(body: Mapping[str, Any], *, creating: bool) -> dict:
    fields = {k: body[k] for k in CONTACT_FIELDS if k in body}
    errors: dict[str, str] = {}
    if creating or "name" in fields:
        fields["name"] = str(fields.get("name") or "").strip()  # names are trimmed [I]
        if not fields["name"]:
            errors["name"] = "is required"
    if creating or "countryId" in fields:
        fields["countryId"] = str(fields.get("countryId") or "").strip().upper()  # [I]
        if not fields["countryId"]:
            errors["countryId"] = "is required"
        elif len(fields["countryId"]) != 2 or not fields["countryId"].isalpha():
            errors["countryId"] = "must be a two-letter country code"
    if "type" in fields and fields["type"] not in ("company", "person"):
        errors["type"] = "must be company or person"
    for key in _BOOLEANS & fields.keys():
        if not isinstance(fields[key], bool):
            errors[key] = "must be true or false"
    if errors:
        raise _invalid(errors)
    return fields


def _person_fields(body: Mapping[str, Any], prefix: str) -> dict:
    fields = {k: body[k] for k in PERSON_FIELDS if k in body}
    if isinstance(fields.get("name"), str):
        fields["name"] = fields["name"].strip()
    email = fields.get("email")
    if email is not None and (not isinstance(email, str) or (email.strip() and "@" not in email)):
        raise _invalid({f"{prefix}email": "is not an e-mail address"})
    if isinstance(email, str):
        fields["email"] = email.strip() or None
    if "isPrimary" in fields and not isinstance(fields["isPrimary"], bool):
        raise _invalid({f"{prefix}isPrimary": "must be true or false"})
    return fields


def _product_fields(body: Mapping[str, Any], *, creating: bool) -> dict:
    fields = {k: body[k] for k in PRODUCT_FIELDS if k in body}
    if creating or "name" in fields:
        fields["name"] = str(fields.get("name") or "").strip()
        if not fields["name"]:
            raise _invalid({"name": "is required"})
    return fields


def _invoice_type(value: Any) -> Any:
    """Credit notes are `creditNote`; `credit_note` (the Java client's spelling) is taken too [O]/[I]."""
    return "creditNote" if value in ("creditNote", "credit_note") else value


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _int_arg(req: Request, name: str, default: int) -> int:
    text = req.arg(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _bad_parameter(f"{name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise _bad_parameter(f"{name} must be at least 1, got {value}")
    return value


def _boolean(name: str, text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise _bad_parameter(f"{name} must be true or false, got {text!r}")


def _date_arg(name: str, text: str) -> date:
    if not _is_date(text):
        raise _bad_parameter(f"{name} must be a date (YYYY-MM-DD), got {text!r}")
    return date.fromisoformat(text)


def _time_arg(name: str, text: str) -> datetime:
    """`YYYY-MM-DDTHH:MM:SS` (UTC, no zone) [O]; a bare date means its midnight [I]."""
    try:
        if _is_date(text):
            return datetime.fromisoformat(text + "T00:00:00")
        if len(text) == 19 and text[10] == "T":
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    raise _bad_parameter(f"{name} must be a time (YYYY-MM-DDTHH:MM:SS), got {text!r}")


def _within(value: Any, bound: Any, name: str) -> bool:
    return value >= bound if name.startswith("min") else value <= bound


def _includes(req: Request) -> list[tuple[str, str, str]]:
    """`include=invoice.lines:embed,invoice.contact:sideload` [O]; without a mode, sideload [I]."""
    out = []
    for part in filter(None, (p.strip() for p in (req.arg("include") or "").split(","))):
        path, _, mode = part.partition(":")
        kind, _, relation = path.partition(".")
        mode = mode or "sideload"
        if (kind, relation) not in RELATIONS or mode not in ("embed", "sideload"):
            raise _bad_parameter(f"unknown include {part!r}")
        out.append((kind, relation, mode))
    return out

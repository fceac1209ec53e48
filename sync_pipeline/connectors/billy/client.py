"""Billy (billy.dk) API v2 client (VENDOR_APIS §3): `X-Access-Token`, lists paged by `meta.paging`, singular write
roots answered with plural roots, embed and sideload (`include=`), errors as `errorCode`/`errorMessage`; the reads a
source needs (with Billy's change detection, see `iter_invoice_pages`) and the writes of the two-way sync."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from sync_pipeline.connectors._http import ApiStatusError, AuthError, BadResponseError, HttpApi, Page, PageLoop

BASE_URL = "https://api.billysbilling.com/v2"
MAX_PAGE_SIZE = 1000  # the cap clients apply "per the docs" [O]
# plural list roots and their singular write roots [V]
ROOTS = {"contacts": "contact", "contactPersons": "contactPerson", "products": "product", "invoices": "invoice",
         "invoiceLines": "invoiceLine", "productPrices": "productPrice", "bankPayments": "bankPayment"}
PERSONS = "contact.contactPersons:embed"
PRICES = "product.prices:embed"
LINES = "invoice.lines:embed"
# (e) of iter_invoice_pages: invoices due this long before the cursor are read again, so that an invoice paid (or
# voided) within this time after its due date is seen although nothing on it carries a time [I]
PAID_LOOKBACK = timedelta(days=90)


class BillyClient(HttpApi):
    """One organisation's API; every method returns records as Billy sends them (amounts are JSON numbers)."""

    paid_lookback: timedelta | None = PAID_LOOKBACK  # (e) of iter_invoice_pages; None leaves that read out

    def __init__(self, *, system: str, access_token: str, base_url: str = BASE_URL, page_size: int = MAX_PAGE_SIZE,
                 **http_kwargs: Any) -> None:
        if not isinstance(access_token, str) or not access_token.strip():
            raise ValueError(f"{system}: access_token is empty")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"{system}: page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size!r}")
        headers = {**dict(http_kwargs.pop("headers", None) or {}), "X-Access-Token": access_token}
        secrets = (*http_kwargs.pop("secrets", ()), access_token)
        super().__init__(system=system, base_url=base_url, secrets=secrets, headers=headers, **http_kwargs)
        self.page_size = page_size
        self._pages = PageLoop(system=system, per_page=page_size)
        self._organization: dict | None = None

    @property
    def pages_requested(self) -> int:
        return self._pages.pages_requested

    def organization(self, *, refresh: bool = False) -> dict:
        """The token's organisation [O] (`id`, `name`, `baseCurrencyId`, ...): read once per client, as its id and
        currency go into every create; `refresh` reads it again."""
        if self._organization is None or refresh:
            self._organization = self._root(self.request_json("GET", "/organization"), "organization",
                                            "GET /organization")
        return self._organization

    def organization_id(self) -> str:
        """The organisation's id, which create payloads carry (`organizationId`) [O]; read once per client."""
        value = self.organization().get("id")
        if not isinstance(value, str) or not value:
            raise self._bad("GET /organization", "expected the organisation's `id`", self.organization())
        return value

    def check_connection(self) -> str:
        """One cheap authenticated read that writes nothing, GET /organization [O]: e.g. "organisation Nordlys Demo
        ApS (DKK)". A refused token raises AuthError (Billy's `errorCode` in the text, never the token)."""
        org = self.organization(refresh=True)
        name, currency = org.get("name"), org.get("baseCurrencyId")
        label = self.redact(str(name)).strip()[:60] if isinstance(name, str) else ""
        suffix = f" ({self.redact(currency)[:3]})" if isinstance(currency, str) and currency else ""
        return f"organisation {label}{suffix}" if label else f"organisation reachable, token accepted{suffix}"

    # -- source reads ----------------------------------------------------------------------------------------------

    def iter_contact_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Every contact, its contact persons embedded (`contactPersons`: e-mail lives there, not on the contact) [O].
        Billy has no updated-since filter and no change time on a contact [O]: `updated_since` is ignored and the
        contacts are read whole every time; the landing stores only the records whose content changed."""
        return self.iter_pages("contacts", include=[PERSONS])

    def iter_product_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Every product, its prices embedded (`prices`: [{id, productId, unitPrice, currencyId}]) [O]. Read whole
        every time like the contacts (no updated-since filter); `updated_since` is ignored."""
        return self.iter_pages("products", include=[PRICES])

    def iter_invoice_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Invoices and credit notes (all states), lines embedded (`lines`).

        With `updated_since` None: every invoice. Otherwise Billy's change detection. Invoices carry no
        `updatedTime` and Billy has no updated-since filter [O], so this is the union, deduplicated by id (the
        first copy read wins), of the lists that can hold a change since then:
        (a) approved since then: `minApprovedTime` (YYYY-MM-DDTHH:MM:SS, UTC) [O];
        (b) every approved invoice not paid: `state=approved&isPaid=false` [O]. A payment changes `balance` and
            `isPaid` and stamps no time on the invoice;
        (c) every draft: `state=draft` [O]. Drafts change freely and have no approval time;
        (d) created since then. There is `createdTime` but no filter on it, so `minEntryDate` = the date of
            `updated_since` minus one day stands in for it [I]. A draft backdated further is caught by (c) anyway;
        (e) due since `PAID_LOOKBACK` (90 days) before then: `minDueDate` [O], whatever the state. An invoice
            paid in full, or voided, leaves (b) without a trace: this catches those paid or voided within 90
            days of their due date.
        Invoices paid or voided later than that are seen only by a full read: the periodic key scan
        (`iter_invoice_keys`, every `key_scan_every`), which reads every invoice in full. Partial copies in the
        landing are never a risk: every list reads whole records."""
        if updated_since is None:
            return self.iter_pages("invoices", include=[LINES])
        since = updated_since if updated_since.tzinfo else updated_since.replace(tzinfo=UTC)
        since = since.astimezone(UTC)
        reads: list[dict[str, Any]] = [
            {"minApprovedTime": since.strftime("%Y-%m-%dT%H:%M:%S")},
            {"state": "approved", "isPaid": "false"},
            {"state": "draft"},
            {"minEntryDate": (since.date() - timedelta(days=1)).isoformat()},
        ]
        if self.paid_lookback:
            reads.append({"minDueDate": (since.date() - self.paid_lookback).isoformat()})
        return _deduplicated(self.iter_pages("invoices", include=[LINES], **filters) for filters in reads)

    def iter_invoice_keys(self) -> Iterator[list[dict]]:
        """Every invoice's id, for the key scan that shows deletions. Billy has no field selection [O]: this is a
        full read, each page holding whole invoices with their lines, the same records as a full
        `iter_invoice_pages()` (so a caller may land them too: that is what catches late payments, see there)."""
        return self.iter_pages("invoices", include=[LINES])

    def iter_invoice_pages_issued_between(self, *, date_from: date, date_to: date) -> Iterator[list[dict]]:
        """Invoices and credit notes whose `entryDate` is within [date_from, date_to] (`minEntryDate`/`maxEntryDate`
        [O]), lines embedded: one month of the history backfill."""
        start, end = _day(date_from), _day(date_to)
        if start > end:
            raise ValueError(f"date_from {start} is after date_to {end}")
        return self.iter_pages("invoices", include=[LINES], minEntryDate=start.isoformat(),
                               maxEntryDate=end.isoformat())

    def iter_pages(self, resource: str, *, include: Sequence[str] = (), **filters: Any) -> Iterator[list[dict]]:
        """Pages of a list (`contacts`, `invoices`, …) until `meta.paging.pageCount`; `include` such as
        `invoice.lines:embed` or `invoice.contact:sideload` (sideloaded roots are not part of the page)."""
        _check_resource(resource)
        params = {**{k: v for k, v in filters.items() if v is not None}, "pageSize": self.page_size}
        if include:
            params["include"] = ",".join(include)
        endpoint = self.endpoint_label("GET", f"/{resource}")

        def fetch(page: int) -> Page:
            data = self.request_json("GET", f"/{resource}", params={**params, "page": page})
            records = data.get(resource) if isinstance(data, dict) else None
            if not isinstance(records, list):
                raise self._bad(endpoint, f"expected a `{resource}` list", data)
            paging = ((data.get("meta") or {}).get("paging") or {}) if isinstance(data.get("meta"), dict) else {}
            count, total = paging.get("pageCount"), paging.get("total")
            more = page < count if isinstance(count, int) and not isinstance(count, bool) else None
            return Page(records, more=more, total=total if isinstance(total, int) else None)

        return self._pages.iterate(fetch, endpoint)

    def get(self, resource: str, record_id: str, *, include: Sequence[str] = ()) -> dict:
        _check_resource(resource)
        path = f"/{resource}/{_record_id(record_id)}"
        params = {"include": ",".join(include)} if include else None
        return self._root(self.request_json("GET", path, params=params), ROOTS[resource], f"GET /{resource}/…")

    def create(self, resource: str, record: Mapping[str, Any]) -> dict:
        """POST `{<singular>: record}`; Billy answers with the plural root: the first record of it is ours [O].
        Not repeated on a 5xx or a timeout (no idempotency: a repeat would create a duplicate)."""
        _check_resource(resource)
        data = self.request_json("POST", f"/{resource}", json={ROOTS[resource]: dict(record)})
        return self._first(data, resource, f"POST /{resource}")

    def update(self, resource: str, record_id: str, changes: Mapping[str, Any]) -> dict:
        _check_resource(resource)
        data = self.request_json("PUT", f"/{resource}/{_record_id(record_id)}", json={ROOTS[resource]: dict(changes)})
        return self._first(data, resource, f"PUT /{resource}/…")

    # -- writes of the two-way sync: each answers the record as Billy saved it, with what a list read embeds ---------

    def create_contact(self, record: Mapping[str, Any]) -> dict:
        """POST a contact, its `contactPersons` embedded in the body [O]; the answer's `contactPersons` root holds
        the saved persons [O], attached to the contact as a list read with `contact.contactPersons:embed` has them."""
        data = self._write("POST", "/contacts", "contacts", record)
        contact = self._first(data, "contacts", "POST /contacts")
        return self._attach(contact, data, "contactPersons", "contactPersons", "contactId", PERSONS)

    def update_contact(self, contact_id: str, changes: Mapping[str, Any]) -> dict:
        """PUT the contact's own fields. Billy's PUT on a contact leaves its persons alone [O], so `contactPersons`
        in `changes` (the wanted primary person first; [] clears the e-mail) is written to the primary person:
        PUT /contactPersons/{id} when the contact has one, else POST /contactPersons. Persons first, then the
        contact, so the answer (the contact with its persons attached) is the state after both."""
        changes = dict(changes)
        wanted = changes.pop("contactPersons", None)
        cid = _record_id(contact_id)
        if wanted is not None:
            self._write_primary_person(cid, wanted)
        if changes or wanted is None:
            data = self._write("PUT", f"/contacts/{cid}", "contacts", changes)
            contact = self._first(data, "contacts", "PUT /contacts/…")
            return self._attach(contact, data, "contactPersons", "contactPersons", "contactId", PERSONS)
        return self.get("contacts", cid, include=[PERSONS])

    def create_product(self, record: Mapping[str, Any]) -> dict:
        """POST a product, its `prices` [{unitPrice, currencyId}] embedded [O]; the answer's `productPrices` root
        [I] is attached as `prices`, as a list read with `product.prices:embed` has them."""
        data = self._write("POST", "/products", "products", record)
        product = self._first(data, "products", "POST /products")
        return self._attach(product, data, "productPrices", "prices", "productId", PRICES)

    def update_product(self, product_id: str, changes: Mapping[str, Any]) -> dict:
        """PUT a product. `prices` in `changes` replace the product's whole price list (the simulator drops the
        prices not sent and gives the sent ones new ids [I]); without `prices` they are left alone."""
        pid = _record_id(product_id)
        data = self._write("PUT", f"/products/{pid}", "products", changes)
        product = self._first(data, "products", "PUT /products/…")
        return self._attach(product, data, "productPrices", "prices", "productId", PRICES)

    def create_invoice(self, record: Mapping[str, Any], *, approve: bool = True) -> dict:
        """POST the invoice (or credit note: `type` "creditNote") as a draft with its `lines`, then approve it with
        PUT {"invoice": {"state": "approved"}} [O], which gives it its `invoiceNo` and `approvedTime`. Answers the
        approved invoice with its lines attached. A draft whose approval failed stays a draft with its
        `externalId`: `find_invoice_by_external_id` finds it, `approve_invoice` finishes it."""
        data = self._write("POST", "/invoices", "invoices", {**dict(record), "state": "draft"})
        draft = self._first(data, "invoices", "POST /invoices")
        if not approve:
            return self._attach(draft, data, "invoiceLines", "lines", "invoiceId", LINES)
        return self.approve_invoice(draft.get("id"))

    def approve_invoice(self, invoice_id: str) -> dict:
        """PUT {"invoice": {"state": "approved"}} [O]; the approved invoice with its lines."""
        return self.update_invoice(invoice_id, {"state": "approved"})

    def update_invoice(self, invoice_id: str, changes: Mapping[str, Any]) -> dict:
        """PUT an invoice; `lines` in `changes` replace its lines [I]. Answers it with its lines attached."""
        iid = _record_id(invoice_id)
        data = self._write("PUT", f"/invoices/{iid}", "invoices", changes)
        invoice = self._first(data, "invoices", "PUT /invoices/…")
        return self._attach(invoice, data, "invoiceLines", "lines", "invoiceId", LINES)

    def find_invoice_by_external_id(self, external_id: str) -> dict | None:
        """The invoice whose `externalId` is exactly `external_id` (filter `externalId` [O]), lines embedded; the
        oldest when there are several (a duplicate is a repeated create); None when there is none."""
        if not isinstance(external_id, str) or not external_id:
            raise ValueError(f"not an external id: {external_id!r}")
        for page in self.iter_pages("invoices", include=[LINES], externalId=external_id):
            for invoice in page:
                if isinstance(invoice, dict) and invoice.get("externalId") == external_id:
                    return invoice
        return None

    def _write_primary_person(self, contact_id: str, wanted: Any) -> None:
        if not isinstance(wanted, list) or not all(isinstance(p, Mapping) for p in wanted):
            raise ValueError(f"contactPersons must be a list of objects, got {wanted!r}")
        persons = [p for page in self.iter_pages("contactPersons", contactId=contact_id) for p in page
                   if isinstance(p, dict) and p.get("contactId") == contact_id]
        primary = next((p for p in persons if p.get("isPrimary")), persons[0] if persons else None)
        if not wanted:  # no e-mail any more: the person stays, without it
            if primary is not None and primary.get("email"):
                self._write("PUT", f"/contactPersons/{_record_id(primary['id'])}", "contactPersons", {"email": None})
            return
        person = next((p for p in wanted if p.get("isPrimary")), wanted[0])
        fields = {k: person[k] for k in ("name", "email", "phone") if k in person}
        if primary is None:
            self._write("POST", "/contactPersons", "contactPersons",
                        {"contactId": contact_id, "isPrimary": True, **fields})
        elif any(primary.get(k) != v for k, v in fields.items()):
            self._write("PUT", f"/contactPersons/{_record_id(primary['id'])}", "contactPersons", fields)

    def _write(self, method: str, path: str, resource: str, body: Mapping[str, Any]) -> Any:
        return self.request_json(method, path, json={ROOTS[resource]: dict(body)})

    def _attach(self, record: dict, data: Any, root: str, key: str, parent_key: str, include: str) -> dict:
        """`record` with its children from the answer's `root` under `key`, as the embed of a list read puts them.
        An answer without that root is completed by reading the record with `include`."""
        related = data.get(root) if isinstance(data, dict) else None
        if not isinstance(related, list):
            resource = next(r for r, single in ROOTS.items() if single == include.split(".", 1)[0])
            return self.get(resource, record.get("id"), include=[include])
        return {**record, key: [r for r in related if isinstance(r, dict) and r.get(parent_key) == record.get("id")]}

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        # Billy says what went wrong in `errorCode` and `errorMessage` [O]: say it in the error, not a raw excerpt.
        status = response.status_code
        if status < 400 or status in self.retry.retry_statuses:
            return None
        try:
            body = json.loads(response.content)
        except ValueError:
            return None
        if not isinstance(body, dict) or not (body.get("errorCode") or body.get("errorMessage")):
            return None
        said = self.redact(f"{body.get('errorCode') or 'error'}: {body.get('errorMessage') or ''}".strip(" :"))
        if status in (401, 403):
            return AuthError(f"{self.system}: {endpoint} failed with HTTP {status} ({said}; check the access token)",
                             system=self.system, endpoint=endpoint, status_code=status, body_excerpt=said[:300])
        return self._status_error(status, said, endpoint, 1, None)

    def _first(self, data: Any, resource: str, endpoint: str) -> dict:
        records = data.get(resource) if isinstance(data, dict) else None
        if not isinstance(records, list) or not records or not isinstance(records[0], dict):
            raise self._bad(endpoint, f"expected the saved record in `{resource}`", data)
        return records[0]

    def _root(self, data: Any, root: str, endpoint: str) -> dict:
        record = data.get(root) if isinstance(data, dict) else None
        if not isinstance(record, dict):
            raise self._bad(endpoint, f"expected a `{root}` object", data)
        return record

    def _bad(self, endpoint: str, problem: str, data: Any) -> BadResponseError:
        text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
        return BadResponseError(f"{self.system}: {endpoint} {problem}; got {text[:120]}", system=self.system,
                                endpoint=endpoint, status_code=200, body_excerpt=text[:300])


def _deduplicated(reads: Iterable[Iterator[list[dict]]]) -> Iterator[list[dict]]:
    """The pages of several reads, each record once (by id; the first copy wins); pages left empty are skipped."""
    seen: set[Any] = set()
    for pages in reads:
        for page in pages:
            fresh = []
            for record in page:
                key = record.get("id") if isinstance(record, dict) else None
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                fresh.append(record)
            if fresh:
                yield fresh


def _day(value: date) -> date:
    # datetime is a date subclass whose isoformat() would add a time the filter does not take
    return value.date() if isinstance(value, datetime) else value


def _check_resource(resource: str) -> None:
    if resource not in ROOTS:
        raise ValueError(f"unknown Billy resource {resource!r}; known: {', '.join(sorted(ROOTS))}")


def _record_id(value: Any) -> str:
    """Billy ids are opaque base64-ish strings [O]; anything else could alter the path."""
    text = str(value)
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError(f"not a Billy id: {value!r}")
    return text

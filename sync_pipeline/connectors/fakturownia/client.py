"""Fakturownia / InvoiceOcean client (one API on two domains): paged, changed-since reads and status changes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sync_pipeline.connectors._http import parse_timestamp
from sync_pipeline.connectors._token_param import TokenParamApi, check_account, record_id, same_id

INVOICE_STATUSES = frozenset({"issued", "sent", "paid", "partial", "rejected"})
_DOMAINS = {"fakturownia": "fakturownia.pl", "invoiceocean": "invoiceocean.com"}


def base_url_for(system_type: str, account: str) -> str:
    domain = _DOMAINS.get(system_type)
    if domain is None:
        raise ValueError(f"unknown system type {system_type!r}; expected one of {sorted(_DOMAINS)}")
    return f"https://{check_account(account)}.{domain}"


class FakturowniaClient(TokenParamApi):
    """Reads clients, invoices and products (records yielded exactly as received: amounts stay strings); writes
    clients (the two-way client sync) and invoice statuses."""

    def check_connection(self) -> str:
        """The connection status: one cheap authenticated read that writes nothing, GET /account.json [V] (the
        account's own record). Returns e.g. "account demo: reachable, token accepted"; raises the typed ApiError
        (AuthError for a rejected token, ApiConnectionError when the host cannot be reached, ...)."""
        data = self._get("/account.json")
        if not isinstance(data, dict):
            raise self._bad_body("/account.json", "expected a JSON object", data)
        prefix = data.get("prefix")
        # only the account name is taken from the answer (it may hold more, a token included)
        label = self.redact(str(prefix))[:60] if isinstance(prefix, (str, int)) and str(prefix).strip() else ""
        return f"account {label}: reachable, token accepted" if label else "reachable, token accepted"

    def iter_client_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self._iter_changed("/clients.json", updated_since)

    def iter_invoice_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self._iter_changed("/invoices.json", updated_since)

    def iter_invoice_keys(self) -> Iterator[list[dict]]:
        """Every invoice's id and nothing else (sparse fieldset `fields[invoice]` [V]): the nightly key scan that
        shows which invoices were deleted."""
        return self._iter_array_pages("/invoices.json", {"period": "all", "fields[invoice]": "id"})

    def iter_department_pages(self) -> Iterator[list[dict]]:
        """The seller's departments (companies) [V]: {id, name, shortcut, ...}."""
        return self._iter_array_pages("/departments.json", {})

    def get_client(self, client_id: int) -> dict:
        return self._get(f"/clients/{record_id(client_id)}.json")

    def find_client_by_external_id(self, external_id: str) -> dict | None:
        return self._find_in_list("/clients.json", {"external_id": external_id},  # a documented filter [V]
                                  lambda c: same_id(c.get("external_id"), external_id))

    def create_client(self, client: Mapping[str, Any]) -> dict:
        return self._save("POST", "/clients.json", "client", client)

    def update_client(self, client_id: int, client: Mapping[str, Any]) -> dict:
        return self._save("PUT", f"/clients/{record_id(client_id)}.json", "client", client)

    def iter_invoice_pages_issued_between(self, *, date_from: date, date_to: date) -> Iterator[list[dict]]:
        start, end = _day(date_from), _day(date_to)
        if start > end:
            raise ValueError(f"date_from {start} is after date_to {end}")
        params = {"period": "more", "date_from": start.isoformat(), "date_to": end.isoformat(),
                  "search_date_type": "issue_date"}
        return self._iter_array_pages("/invoices.json", params)

    def iter_product_pages(self, *, changed_since: date | None = None) -> Iterator[list[dict]]:
        params = {} if changed_since is None else {"date_from": _day(changed_since).isoformat()}
        return self._iter_array_pages("/products.json", params)

    def iter_changed_product_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        """Products changed since a time: `date_from` is a day [V], so the whole day of `updated_since` is read."""
        return self.iter_product_pages(changed_since=updated_since.date() if updated_since else None)

    def iter_user_pages(self) -> Iterator[list[dict]]:
        """The account's users, {id, login, email, first_name, last_name, role} as received. The endpoint is
        inferred [I] (VENDOR_APIS documents none): GET /users.json, paged like every list."""
        return self._iter_array_pages("/users.json", {})

    def change_invoice_status(self, *, invoice_id: int, status: str) -> Any:
        if status not in INVOICE_STATUSES:
            raise ValueError(f"unknown invoice status {status!r}; expected one of {sorted(INVOICE_STATUSES)}")
        # `status` goes in the query as documented; setting a status twice is harmless, so 5xx may be retried.
        return self._write("POST", f"/invoices/{record_id(invoice_id)}/change_status.json", {},
                           params={"status": status}, idempotent=True)

    def _iter_changed(self, path: str, updated_since: datetime | None) -> Iterator[list[dict]]:
        # No documented updated_since filter: newest-first order lets us stop at the first older record.
        pages = self._iter_array_pages(path, {"period": "all", "order": "updated_at.desc"})
        if updated_since is None:
            yield from pages
            return
        yield from self.changed_since_newest_first(pages, updated_since,
                                                   lambda item: parse_timestamp(item.get("updated_at")), path)


def _day(value: date) -> date:
    # datetime is a date subclass whose isoformat() would add a time the API does not accept.
    return value.date() if isinstance(value, datetime) else value

"""Billy (billy.dk) API v2 client (VENDOR_APIS §3): `X-Access-Token`, lists paged by `meta.paging`, singular write
roots answered with plural roots, embed and sideload (`include=`), errors as `errorCode`/`errorMessage`.

Issue 11 builds the connection on it; nothing registers it yet."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from sync_pipeline.connectors._http import ApiStatusError, AuthError, BadResponseError, HttpApi, Page, PageLoop

BASE_URL = "https://api.billysbilling.com/v2"
MAX_PAGE_SIZE = 1000  # the cap clients apply "per the docs" [O]
# plural list roots and their singular write roots [V]
ROOTS = {"contacts": "contact", "contactPersons": "contactPerson", "products": "product", "invoices": "invoice",
         "invoiceLines": "invoiceLine", "bankPayments": "bankPayment"}


class BillyClient(HttpApi):
    """One organisation's API; every method returns records as Billy sends them (amounts are JSON numbers)."""

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

    @property
    def pages_requested(self) -> int:
        return self._pages.pages_requested

    def organization(self) -> dict:
        """The token's organisation (its id goes into every create) [O]."""
        return self._root(self.request_json("GET", "/organization"), "organization", "GET /organization")

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


def _check_resource(resource: str) -> None:
    if resource not in ROOTS:
        raise ValueError(f"unknown Billy resource {resource!r}; known: {', '.join(sorted(ROOTS))}")


def _record_id(value: Any) -> str:
    """Billy ids are opaque base64-ish strings [O]; anything else could alter the path."""
    text = str(value)
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError(f"not a Billy id: {value!r}")
    return text

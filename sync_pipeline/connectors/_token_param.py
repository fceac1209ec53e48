"""Conventions Fakturownia and Sugester share (same vendor, same Rails API style): the token as a query or
body parameter, bare JSON arrays paged with `page`/`per_page`, account names as one host label."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sync_pipeline.connectors._http import (
    BadResponseError,
    HttpApi,
    Page,
    PageLoop,
    ValidationError,
    parse_field_errors,
)

MAX_PER_PAGE = 100
_ACCOUNT = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", re.I)


def check_account(account: str) -> str:
    """The account prefix as a single host label; rejects full hosts and URLs pasted by mistake."""
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        # the value is not echoed: it comes from the configuration, where a secret may sit by mistake
        raise ValueError("account must be a bare subdomain label such as acme (letters, digits and inner hyphens), "
                         "not a host name or URL")
    return account



def same_id(found: Any, wanted: Any) -> bool:
    """Ids come back as numbers or strings depending on how they were written: compare as strings."""
    return found is not None and str(found) == str(wanted)


def record_id(value: Any) -> int:
    """An id for a URL path; refuses anything that is not a plain integer so it cannot alter the path."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer id, got {value!r}")
    return value


class TokenParamApi(HttpApi):
    """Conventions Fakturownia and Sugester share (same vendor, same Rails API style).

    The token travels as `api_token` in the query on GET/DELETE and at the top level of the JSON body on
    POST/PUT; lists are bare JSON arrays paged with `page` (from 1) and `per_page` (max 100), ending on a short
    or empty page.
    """

    def __init__(self, *, system: str, base_url: str, api_token: str, per_page: int = MAX_PER_PAGE,
                 **http_kwargs: Any) -> None:
        if not isinstance(api_token, str) or not api_token.strip():
            raise ValueError(f"{system}: api_token is empty")
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"{system}: per_page must be between 1 and {MAX_PER_PAGE}, got {per_page!r}")
        secrets = (*http_kwargs.pop("secrets", ()), api_token)
        super().__init__(system=system, base_url=base_url, secrets=secrets, **http_kwargs)
        self._api_token = api_token
        self.per_page = per_page
        self._pages = PageLoop(system=system, per_page=per_page)

    @property
    def pages_requested(self) -> int:
        """List pages fetched so far by this client (re-reads and end checks included)."""
        return self._pages.pages_requested

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request_json("GET", path, params={**(params or {}), "api_token": self._api_token})

    def _write(self, method: str, path: str, body: Mapping[str, Any], *, params: Mapping[str, Any] | None = None,
               idempotent: bool | None = None) -> Any:
        data = self.request_json(method, path, params=params, json={"api_token": self._api_token, **body},
                                 idempotent=idempotent)
        # Some actions report failure with HTTP 200 and {"code"/"status": "error", "message": ...}.
        if isinstance(data, dict) and "id" not in data and "error" in (data.get("code"), data.get("status")):
            endpoint = self.endpoint_label(method, path)
            text = self.redact(json.dumps(data, ensure_ascii=False))
            raise ValidationError(
                f"{self.system}: {endpoint} returned an error body with HTTP 200: {text[:200]}",
                system=self.system, endpoint=endpoint, status_code=200, body_excerpt=text[:300],
                field_errors=parse_field_errors(text),
            )
        return data

    def _save(self, method: str, path: str, root: str, record: Mapping[str, Any]) -> dict:
        """Create (POST) or update (PUT) one record sent as `{root: record}`; returns the record as saved.
        POST keeps the HTTP layer's default (not retried on 5xx/timeouts: a repeat could create a second
        record); PUT is."""
        data = self._write(method, path, {root: dict(record)})
        if isinstance(data, dict) and set(data) == {root} and isinstance(data[root], dict):
            data = data[root]  # tolerate a Rails-style {"client": {...}} wrapper
        if not isinstance(data, dict):
            endpoint = self.endpoint_label(method, path)
            text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
            raise BadResponseError(f"{self.system}: {endpoint} expected the saved object; got {text[:120]}",
                                   system=self.system, endpoint=endpoint, body_excerpt=text[:300])
        return data

    def _find_in_list(self, path: str, params: Mapping[str, Any], matches: Callable[[dict], bool]) -> dict | None:
        """The first record of a filtered list that `matches`. Filters that are undocumented may be ignored by
        the server, so every page is checked exactly: stopping at page 1 would miss the record and the caller
        would create a duplicate."""
        for page in self._iter_array_pages(path, params):
            for record in page:
                if isinstance(record, dict) and matches(record):
                    return record
        return None

    def _iter_array_pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list[dict]]:
        # Bare arrays with no total and no next link: the shared loop confirms where the listing ends.
        def fetch(page: int) -> Page:
            data = self._get(path, {**params, "page": page, "per_page": self.per_page})
            if not isinstance(data, list):
                raise self._bad_body(path, "expected a JSON array", data)
            return Page(data)

        return self._pages.iterate(fetch, self.endpoint_label("GET", path))

    def _bad_body(self, path: str, problem: str, data: Any) -> BadResponseError:
        endpoint = self.endpoint_label("GET", path)
        text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
        return BadResponseError(f"{self.system}: {endpoint} {problem}; got {text[:120]}",
                                system=self.system, endpoint=endpoint, status_code=200, body_excerpt=text[:300])

"""Zoho Invoice API v3 client: OAuth2 refresh-token access and paged, changed-since reads of contacts, invoices and
credit notes (VENDOR_APIS §5)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timezone
from typing import Any

import httpx

from sync_pipeline.connectors._http import (
    ApiStatusError,
    AuthError,
    BadResponseError,
    HttpApi,
    NotFoundError,
    Page,
    PageLoop,
    RateLimitError,
    ValidationError,
    parse_retry_after,
    parse_timestamp,
)

logger = logging.getLogger(__name__)

ZOHO_DATA_CENTRES: dict[str, tuple[str, str]] = {
    "com": ("https://www.zohoapis.com/invoice/v3", "https://accounts.zoho.com"),
    "eu": ("https://www.zohoapis.eu/invoice/v3", "https://accounts.zoho.eu"),
    "in": ("https://www.zohoapis.in/invoice/v3", "https://accounts.zoho.in"),
    "com.au": ("https://www.zohoapis.com.au/invoice/v3", "https://accounts.zoho.com.au"),
    "jp": ("https://www.zohoapis.jp/invoice/v3", "https://accounts.zoho.jp"),
    "ca": ("https://www.zohoapis.ca/invoice/v3", "https://accounts.zohocloud.ca"),
    "com.cn": ("https://www.zohoapis.com.cn/invoice/v3", "https://accounts.zoho.com.cn"),
    "sa": ("https://www.zohoapis.sa/invoice/v3", "https://accounts.zoho.sa"),
}
MAX_PER_PAGE = 200
TOKEN_PATH = "/oauth/v2/token"
ORGANIZATION_HEADER = "X-com-zoho-invoice-organizationid"
REFRESH_MARGIN = 60.0  # seconds before expiry at which a cached access token is replaced
DEFAULT_TOKEN_LIFETIME = 3600.0  # documented lifetime, used when a token response omits expires_in
DAILY_LIMIT_CODE = 45
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"


def urls_for(dc: str) -> tuple[str, str]:
    """(api_url, accounts_url) of a Zoho data centre such as "com" or "eu"."""
    try:
        return ZOHO_DATA_CENTRES[dc]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Zoho data centre {dc!r}; expected one of {sorted(ZOHO_DATA_CENTRES)}") from None


class TokenRefreshError(AuthError):
    """The accounts server refused the refresh (revoked or invalid refresh token, wrong client); `error` is its code."""

    def __init__(self, message: str, *, system: str, endpoint: str, status_code: int, body_excerpt: str = "",
                 error: str = "") -> None:
        super().__init__(message, system=system, endpoint=endpoint, status_code=status_code, body_excerpt=body_excerpt)
        self.error = error


class DailyLimitError(RateLimitError):
    """Zoho code 45: the organization's daily API call limit is used up. Never retried: waiting means hours."""


def _require(system: str, **values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{system}: {name} is empty")


class ZohoOAuth(HttpApi):
    """Access tokens from a long-lived refresh token, cached until shortly before they expire (VENDOR_APIS §5.2)."""

    def __init__(self, *, system: str, accounts_url: str, client_id: str, client_secret: str, refresh_token: str,
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.time,
                 timeout: float | httpx.Timeout = 10.0, **http_kwargs: Any) -> None:
        _require(system, accounts_url=accounts_url, client_id=client_id, client_secret=client_secret,
                 refresh_token=refresh_token)
        secrets = (*http_kwargs.pop("secrets", ()), client_secret, refresh_token)
        super().__init__(system=system, base_url=accounts_url, secrets=secrets, timeout=timeout, transport=transport,
                         clock=clock, **http_kwargs)
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._lock = threading.Lock()  # one refresh at a time when a client is shared between threads
        self._token: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0  # successful refreshes made
        self.api_domain: str | None = None  # the API host Zoho says the token belongs to

    @property
    def secrets(self) -> tuple[str, str]:
        return self._client_secret, self._refresh_token

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._refresh()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        # 4xx from the token endpoint means the credentials were refused; retrying or reading it as an API-token
        # problem would mislead. 408/429/5xx keep the normal retry rules.
        status = response.status_code
        if 400 <= status < 500 and status not in self.retry.retry_statuses:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            error = body.get("error") if isinstance(body, dict) else None
            return self._refused(status, str(error) if error else f"HTTP {status}", response.text)
        return None

    def _refresh(self) -> None:
        params = {"refresh_token": self._refresh_token, "client_id": self._client_id,
                  "client_secret": self._client_secret, "grant_type": "refresh_token"}
        requested_at = self._clock()
        # Safe to repeat: a refresh only issues another short-lived token.
        data = self.request_json("POST", TOKEN_PATH, params=params, idempotent=True)
        token = data.get("access_token") if isinstance(data, dict) else None
        if isinstance(token, str) and token:
            self.add_secrets(token)  # before any message could quote the body
        if isinstance(data, dict) and data.get("error"):
            # Zoho reports refused refreshes with HTTP 200 and {"error": "invalid_code"}.
            raise self._refused(200, str(data["error"]), json.dumps(data))
        if not isinstance(token, str) or not token:
            endpoint = self.endpoint_label("POST", TOKEN_PATH)
            excerpt = self.redact(json.dumps(data, default=str))[:300]
            raise BadResponseError(f"{self.system}: {endpoint} returned no access_token ({excerpt[:120]})",
                                   system=self.system, endpoint=endpoint, status_code=200, body_excerpt=excerpt)
        lifetime = _positive_number(data.get("expires_in")) or DEFAULT_TOKEN_LIFETIME
        self._token = token
        self._expires_at = requested_at + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        self.api_domain = data.get("api_domain") if isinstance(data.get("api_domain"), str) else None
        self.refreshes += 1
        logger.info("%s: refreshed the Zoho access token (valid for %.0fs)", self.system, lifetime)

    def _refused(self, status: int, error: str, text: str) -> TokenRefreshError:
        error = self.redact(" ".join(error.split()))[:100]
        return TokenRefreshError(
            f"{self.system}: Zoho refused to refresh the access token ({error}); re-authorise the connection and "
            f"update its refresh token",
            system=self.system, endpoint=self.endpoint_label("POST", TOKEN_PATH), status_code=status,
            body_excerpt=self.redact(" ".join(text.split()))[:300], error=error,
        )


class ZohoTokenAuth(httpx.Auth):
    """Adds `Authorization: Zoho-oauthtoken <access token>` to every request. An access token can be revoked or
    expire early: on a 401 from the API the token is refreshed once and the request sent again."""

    def __init__(self, oauth: ZohoOAuth, on_token: Callable[[str], None] = lambda token: None) -> None:
        self.oauth = oauth
        self._on_token = on_token  # the API client redacts every token it was given

    def _sign(self, request: httpx.Request) -> None:
        token = self.oauth.access_token()
        self._on_token(token)
        request.headers["Authorization"] = f"Zoho-oauthtoken {token}"

    def auth_flow(self, request: httpx.Request):
        self._sign(request)
        response = yield request
        if response.status_code == 401:
            self.oauth.invalidate()
            self._sign(request)
            yield request


class ZohoInvoiceClient(HttpApi):
    """Reads contacts, invoices and credit notes; records are yielded exactly as received (amounts are numbers,
    ids numeric strings, empty dates "")."""

    def __init__(self, *, system: str, api_url: str, organization_id: str, oauth: ZohoOAuth,
                 per_page: int = MAX_PER_PAGE, **http_kwargs: Any) -> None:
        """`oauth` is the Zoho OAuth session of this system; its owner closes it (one session serves every client
        of a step, so a token is reused until it expires)."""
        _require(system, organization_id=organization_id)
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"{system}: per_page must be between 1 and {MAX_PER_PAGE}, got {per_page!r}")
        headers = {**dict(http_kwargs.pop("headers", None) or {}), ORGANIZATION_HEADER: organization_id}
        secrets = (*http_kwargs.pop("secrets", ()), *oauth.secrets)
        super().__init__(system=system, base_url=api_url, secrets=secrets, headers=headers,
                         auth=ZohoTokenAuth(oauth, on_token=self.add_secrets), **http_kwargs)
        self.api_url = api_url
        self.organization_id = organization_id
        self.per_page = per_page
        self._oauth = oauth
        self._owns_oauth = False
        self._pages = PageLoop(system=system, per_page=per_page)

    @classmethod
    def from_credentials(cls, *, system: str, api_url: str, accounts_url: str, organization_id: str,
                         client_id: str, client_secret: str, refresh_token: str, **http_kwargs: Any
                         ) -> ZohoInvoiceClient:
        """A client with an OAuth session of its own (closed with it) that shares its transport, retry policy
        and (fake) time: for one-off use and tests; the pipeline shares one session per system."""
        _require(system, organization_id=organization_id)
        shared = {k: http_kwargs[k] for k in ("transport", "sleep", "retry", "rng", "clock") if k in http_kwargs}
        oauth = ZohoOAuth(system=system, accounts_url=accounts_url, client_id=client_id, client_secret=client_secret,
                          refresh_token=refresh_token, **shared)
        client = cls(system=system, api_url=api_url, organization_id=organization_id, oauth=oauth, **http_kwargs)
        client._owns_oauth = True
        return client

    def close(self) -> None:
        super().close()
        if self._owns_oauth:
            self._oauth.close()

    @property
    def pages_requested(self) -> int:
        """List pages fetched so far by this client (re-reads included)."""
        return self._pages.pages_requested

    @property
    def token_refreshes(self) -> int:
        return self._oauth.refreshes

    # --- reads ----------------------------------------------------------------------------------------------------

    def check_connection(self) -> str:
        """The connection status: an access token (refreshed when none is cached) and GET /organizations [V], one
        cheap read that writes nothing and names the configured organisation. A token without the settings scope
        (ZohoInvoice.settings.READ) may be refused the organisations although it reads what the sync reads: then
        one contact (GET /contacts, per_page=1) proves it instead. Returns e.g. "organization Acme (20240001):
        reachable, token accepted"; raises the typed ApiError (TokenRefreshError for refused OAuth credentials,
        AuthError, NotFoundError for an organization_id this token does not see, ...)."""
        try:
            data = self._get("/organizations", {})
        except AuthError as exc:
            if not isinstance(exc, TokenRefreshError):
                self._unwrap("/contacts", "contacts", self._get("/contacts", {"page": 1, "per_page": 1}))
                return (f"organization {self.organization_id}: reachable, token accepted (contacts readable; the "
                        "token may not read the organisation itself)")
            raise
        organizations, _ = self._unwrap("/organizations", "organizations", data)
        ids = [str(o.get("organization_id")) for o in organizations if isinstance(o, dict)]
        org = next((o for o in organizations if isinstance(o, dict)
                    and str(o.get("organization_id")) == self.organization_id), None)
        if org is None:
            endpoint = self.endpoint_label("GET", "/organizations")
            raise NotFoundError(
                f"{self.system}: organization_id {self.organization_id} is not an organization of this token (it "
                f"has {', '.join(ids[:10]) or 'none'}); check organization_id and the data centre",
                system=self.system, endpoint=endpoint, status_code=200)
        name = org.get("name")
        named = f"{self.redact(name)[:80]} ({self.organization_id})" if isinstance(name, str) and name.strip() \
            else self.organization_id
        return f"organization {named}: reachable, token accepted"

    def iter_client_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        # A last_modified_time filter on contacts is not documented: sort newest first and stop at an older record.
        pages = self._iter_pages("/contacts", "contacts", {"sort_column": "last_modified_time", "sort_order": "D"})
        if updated_since is None:
            yield from pages
            return
        yield from self.changed_since_newest_first(
            pages, _utc(updated_since), lambda item: parse_timestamp(item.get("last_modified_time")), "/contacts")

    def iter_invoice_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self._iter_changed("/invoices", "invoices", updated_since)

    def iter_invoice_pages_issued_between(self, *, date_from: date, date_to: date) -> Iterator[list[dict]]:
        start, end = _day(date_from), _day(date_to)
        if start > end:
            raise ValueError(f"date_from {start} is after date_to {end}")
        # created_time never changes, so edits made while paging do not reshuffle the pages.
        params = {"date_start": start.isoformat(), "date_end": end.isoformat(), "sort_column": "created_time",
                  "sort_order": "A"}
        return self._iter_pages("/invoices", "invoices", params)

    def iter_creditnote_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self._iter_changed("/creditnotes", "creditnotes", updated_since)

    # --- plumbing -------------------------------------------------------------------------------------------------

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        code, message = _zoho_error(response.content)
        if code == DAILY_LIMIT_CODE:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return self._daily_limit(endpoint, response.status_code, message, retry_after)
        return None  # 44 (per-minute) and 1070 (concurrency) are retried like any 429

    def _daily_limit(self, endpoint: str, status: int, message: str, retry_after: float | None) -> DailyLimitError:
        detail = f" (Zoho: {self.redact(message)[:120]})" if message else ""
        return DailyLimitError(
            f"{self.system}: {endpoint} refused with HTTP {status}: the organization's daily API call limit is used "
            f"up (code {DAILY_LIMIT_CODE}){detail}; the next run resumes where this one stopped",
            system=self.system, endpoint=endpoint, status_code=status, body_excerpt=self.redact(message)[:300],
            retry_after=retry_after,
        )

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        try:
            return self.request_json("GET", path, params=params)
        except AuthError as exc:
            if not _is_api_401(exc):
                raise
            error = exc
        # ZohoTokenAuth already refreshed the token once and sent the request again.
        raise AuthError(
            f"{self.system}: {error.endpoint} failed with HTTP 401 again after refreshing the access token (Zoho "
            f"rejected a fresh token{self._domain_hint()}; check the connection's scopes, organization and data "
            f"centre)",
            system=self.system, endpoint=error.endpoint, status_code=401, body_excerpt=error.body_excerpt,
        )

    def _domain_hint(self) -> str:
        domain = self._oauth.api_domain
        host = urllib.parse.urlsplit(self.api_url).hostname
        if domain and host and urllib.parse.urlsplit(domain).hostname not in (None, host):
            return f"; the token is for {domain} but requests go to {host}"
        return ""

    def _iter_changed(self, path: str, root: str, updated_since: datetime | None) -> Iterator[list[dict]]:
        params = {"sort_column": "last_modified_time", "sort_order": "A"}
        if updated_since is not None:
            params["last_modified_time"] = _utc(updated_since).strftime(_TIME_FORMAT)
        return self._iter_pages(path, root, params)

    def _iter_pages(self, path: str, root: str, params: Mapping[str, Any]) -> Iterator[list[dict]]:
        def fetch(page: int) -> Page:
            data = self._get(path, {**params, "page": page, "per_page": self.per_page})
            records, more = self._unwrap(path, root, data)
            return Page(records, more=more)

        return self._pages.iterate(fetch, self.endpoint_label("GET", path))

    def _unwrap(self, path: str, root: str, data: Any) -> tuple[list, bool]:
        endpoint = self.endpoint_label("GET", path)
        if not isinstance(data, dict):
            raise self._bad_body(path, "expected a JSON object", data)
        code = _as_int(data.get("code", 0))
        if code != 0:
            message = data.get("message") if isinstance(data.get("message"), str) else ""
            if code == DAILY_LIMIT_CODE:
                raise self._daily_limit(endpoint, 200, message, None)
            text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
            detail = self.redact(message)[:200] if message else text[:200]
            raise ValidationError(f"{self.system}: {endpoint} returned Zoho error code {data.get('code')!r}: {detail}",
                                  system=self.system, endpoint=endpoint, status_code=200, body_excerpt=text[:300])
        records = data.get(root)
        if not isinstance(records, list):
            raise self._bad_body(path, f"has no {root!r} list", {k: v for k, v in data.items() if k != root})
        context = data.get("page_context")
        more = isinstance(context, dict) and context.get("has_more_page") in (True, "true")
        return records, more

    def _bad_body(self, path: str, problem: str, data: Any) -> BadResponseError:
        endpoint = self.endpoint_label("GET", path)
        text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
        return BadResponseError(f"{self.system}: {endpoint} {problem}; got {text[:120]}",
                                system=self.system, endpoint=endpoint, status_code=200, body_excerpt=text[:300])


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _day(value: date) -> date:
    # datetime is a date subclass whose isoformat() would add a time the API does not accept.
    return value.date() if isinstance(value, datetime) else value


def _is_api_401(exc: AuthError) -> bool:
    return exc.status_code == 401 and not isinstance(exc, TokenRefreshError)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _positive_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number == number and number != float("inf") else None


def _zoho_error(content: bytes) -> tuple[int | None, str]:
    """(code, message) of a Zoho error body {"code": N, "message": "…"}; (None, "") when it is not one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    message = body.get("message")
    return _as_int(body.get("code")), message if isinstance(message, str) else ""

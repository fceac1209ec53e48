"""Shared HTTP layer for the vendor clients: timeouts, retries honouring Retry-After, typed errors, secret redaction."""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import math
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

logger = logging.getLogger("sync_pipeline.http")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
EXCERPT_CHARS = 300
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# A non-idempotent request answered with these was refused, not processed, so repeating it cannot duplicate a record.
_REFUSED_STATUSES = frozenset({408, 429})


# --- error tree -------------------------------------------------------------------------------------------------


def _rebuild(cls: type, state: dict) -> ApiError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


class ApiError(Exception):
    """Base of every client error; `str()` is a redacted message naming the system and the endpoint."""

    # host[:port] of the server, on connection and timeout errors: which server could not be reached (for
    # clients that talk to two, such as Zoho's accounts and API servers); never a path or a query
    host: str | None = None

    def __init__(self, message: str, *, system: str, endpoint: str) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.endpoint = endpoint  # "GET /invoices.json": method and path only, never the query string

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        # Keyword-only constructors break default exception pickling, which multi-process executors rely on.
        return (_rebuild, (type(self), dict(self.__dict__)))


class ApiConnectionError(ApiError):
    """The connection failed or broke before a response arrived."""


class ApiTimeoutError(ApiError):
    """Connecting, writing or reading timed out."""


class BadResponseError(ApiError):
    """A 2xx response whose body is not the JSON we expect (an HTML page, truncated JSON, wrong root type)."""

    def __init__(self, message: str, *, system: str, endpoint: str, status_code: int | None = None,
                 body_excerpt: str = "") -> None:
        super().__init__(message, system=system, endpoint=endpoint)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class ApiStatusError(ApiError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, system: str, endpoint: str, status_code: int, body_excerpt: str = "") -> None:
        super().__init__(message, system=system, endpoint=endpoint)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class AuthError(ApiStatusError):
    """401/403: the token is wrong, expired or lacks permissions."""


class NotFoundError(ApiStatusError):
    """404."""


class ValidationError(ApiStatusError):
    """422/400 (or an error body on 200); `field_errors` maps field -> messages when the body lists them."""

    def __init__(self, message: str, *, system: str, endpoint: str, status_code: int, body_excerpt: str = "",
                 field_errors: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message, system=system, endpoint=endpoint, status_code=status_code, body_excerpt=body_excerpt)
        self.field_errors: dict[str, list[str]] = dict(field_errors or {})


class RateLimitError(ApiStatusError):
    """429 still returned after the retries; `retry_after` is the server's last hint in seconds, if any."""

    def __init__(self, message: str, *, system: str, endpoint: str, status_code: int = 429, body_excerpt: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, system=system, endpoint=endpoint, status_code=status_code, body_excerpt=body_excerpt)
        self.retry_after = retry_after


class ServerError(ApiStatusError):
    """5xx."""


# --- retry policy -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; attempts include the first one.

    Delays use full jitter (uniform in [0, min(max_delay, base_delay * 2**(attempt-1))]). A Retry-After hint is a
    floor and is NOT capped at max_delay: waking up earlier than the server asked only earns another 429. The
    total_budget bounds it instead: when the next sleep would end past the budget, retrying stops and the error
    (e.g. RateLimitError.retry_after) tells the caller when to come back.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_budget: float = 120.0
    retry_statuses: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.base_delay, self.max_delay, self.total_budget) < 0:
            raise ValueError("delays and budget must be >= 0")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(max(attempt - 1, 0), 60))
        wait = rng.uniform(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now; accepts delta-seconds or an HTTP-date; None when absent or invalid."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


# --- redaction --------------------------------------------------------------------------------------------------

# Values of credential-like query parameters; used on httpx's own request log lines, which print the full URL.
_SENSITIVE_QUERY = re.compile(
    r"([?&](?:api_token|access_token|refresh_token|token|api_key|apikey|key|secret|client_secret|password|sessionName"
    r"|code)=)[^&\s\"'#>]*", re.I
)


class _HttpxUrlRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SENSITIVE_QUERY.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _guard_httpx_logger() -> None:
    # httpx logs "HTTP Request: GET https://…?api_token=…" at INFO; anyone raising log levels would leak tokens.
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HttpxUrlRedactor) for f in httpx_logger.filters):
        httpx_logger.addFilter(_HttpxUrlRedactor())


def _secret_pattern(secrets: Sequence[str]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for secret in secrets:
        if secret:
            json_text = jsonlib.dumps(secret)[1:-1]
            variants |= {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                         urllib.parse.quote(secret), json_text, json_text.replace("/", "\\/"),
                         jsonlib.dumps(secret, ensure_ascii=False)[1:-1]}
    if not variants:
        return None
    # Longest first so an encoded form is replaced whole; IGNORECASE also catches lower-case %2f escapes.
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)), re.I)


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def json_unescape(text: str) -> str:
    """`\\/` and `\\uXXXX` decoded: JSON may escape any character, so a secret can hide behind escapes
    that a pattern for its plain and usual encoded forms does not match."""
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text.replace("\\/", "/"))


def redact_with(pattern: re.Pattern[str] | None, text: str) -> str:
    """`text` with every match of `pattern` replaced by ***, also where JSON escapes hid a match (the
    text is then returned with those escapes decoded)."""
    if not text or pattern is None:
        return text
    out = pattern.sub("***", text)
    if "\\" in out:
        decoded = json_unescape(out)
        if decoded != out and pattern.search(decoded):
            out = pattern.sub("***", decoded)
    return out


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- client -----------------------------------------------------------------------------------------------------


@dataclass
class _Failure:
    """One failed attempt; the error is built only when we give up, so it can say how many attempts were made."""

    build: Callable[[int], ApiError]
    retryable: bool
    reason: str
    retry_after: float | None = None


class HttpApi:
    """One httpx.Client per vendor connection, returning parsed JSON or raising an ApiError subclass."""

    def __init__(
        self,
        *,
        system: str,
        base_url: str,
        secrets: Sequence[str] = (),
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.system = system
        self.retry = retry
        self._secrets = [s for s in secrets if isinstance(s, str) and s]
        self._secret_re = _secret_pattern(self._secrets)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._order_ignored: set[str] = set()  # endpoints whose newest-first order proved false (said once)
        _guard_httpx_logger()
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            auth=auth,
            headers={"Accept": "application/json", "User-Agent": "sync-pipeline/0.1", **dict(headers or {})},
        )

    def redact(self, text: str) -> str:
        """`text` with every configured secret (raw, URL- or JSON-encoded, or behind JSON escapes) replaced by ***.
        Redact again whatever is decoded from a redacted text: decoding can reveal an escaped secret."""
        return redact_with(self._secret_re, text)

    def add_secrets(self, *secrets: str) -> None:
        """Redact these too from now on (secrets learnt at run time, such as freshly issued access tokens)."""
        fresh = [s for s in secrets if isinstance(s, str) and s and s not in self._secrets]
        if fresh:
            self._secrets.extend(fresh)
            self._secret_re = _secret_pattern(self._secrets)

    def changed_since_newest_first(self, pages: Iterable[list], since: datetime,
                                   stamp: Callable[[Any], datetime | None], endpoint: str) -> Iterator[list]:
        """`newest_first_since` over this client's pages of `endpoint`; says once per endpoint (a warning on the
        `sync_pipeline.http` logger) when the server ignored the order and the whole listing had to be read."""
        def unsorted() -> None:
            if endpoint not in self._order_ignored:
                self._order_ignored.add(endpoint)
                logger.warning("%s: %s: the server ignored the newest-first order; reading the whole listing so "
                               "that no changed record is missed", self.system, endpoint,
                               extra={"http_system": self.system, "http_endpoint": endpoint})
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        return newest_first_since(pages, since, stamp, on_unsorted=unsorted)

    def request_headers(self) -> Mapping[str, str]:
        """Vendor hook: headers computed for every attempt (e.g. a short-lived access token); none by default."""
        return {}

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        """Vendor hook for a non-2xx response: an error to raise at once, without retrying, or None for the default
        status mapping and retry rules. Build messages from `self.redact(response.text)`, never the raw text."""
        return None

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def endpoint_label(method: str, path: str) -> str:
        return f"{method.upper()} {path.split('?', 1)[0]}"

    def request_json(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                     idempotent: bool | None = None) -> Any:
        """Send one request with retries; return the parsed JSON body, or None for an empty 2xx body."""
        method = method.upper()
        endpoint = self.endpoint_label(method, path)
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        query = {k: v for k, v in (params or {}).items() if v is not None}
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            result = self._attempt(method, path, query, json, endpoint, idempotent)
            if not isinstance(result, _Failure):
                return result[0]
            # Raised outside any `except` block, so no httpx exception (whose text holds the URL) is chained.
            if not result.retryable or attempt >= self.retry.max_attempts:
                raise result.build(attempt)
            delay = self.retry.delay(attempt, result.retry_after, self._rng)
            if self._clock() - started + delay > self.retry.total_budget:
                raise result.build(attempt)
            logger.warning(
                "%s: %s attempt %d/%d failed (%s); retrying in %.2fs",
                self.system, endpoint, attempt, self.retry.max_attempts, result.reason, delay,
                extra={"http_system": self.system, "http_endpoint": endpoint, "http_attempt": attempt,
                       "http_reason": result.reason, "http_delay": delay},
            )
            self._sleep(delay)

    def _attempt(self, method: str, path: str, query: dict, body: Any, endpoint: str,
                 idempotent: bool) -> tuple[Any] | _Failure:
        headers = self.request_headers() or None
        try:
            response = self._client.request(method, path, params=query or None, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            # Connect/pool timeouts happen before the request is sent, so even a POST may repeat them.
            sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            return self._transport_failure(ApiTimeoutError, "timed out", exc, endpoint, idempotent or not sent)
        except httpx.ConnectError as exc:
            return self._transport_failure(ApiConnectionError, "could not connect", exc, endpoint, True)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return self._transport_failure(ApiConnectionError, "connection broke", exc, endpoint, idempotent)
        except httpx.DecodingError as exc:
            return self._transport_failure(BadResponseError, "undecodable response", exc, endpoint, idempotent)
        except httpx.HTTPError as exc:
            # Proxy, protocol-use or URL problems: configuration errors that retrying will not fix.
            return self._transport_failure(ApiConnectionError, "request failed", exc, endpoint, False)
        status = response.status_code
        if 200 <= status < 300:
            return self._parse_body(response, endpoint, idempotent)
        vendor_error = self.error_for_response(response, endpoint)
        if vendor_error is not None:
            return _Failure(build=lambda attempts: vendor_error, retryable=False, reason=f"HTTP {status}")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        retryable = status in self.retry.retry_statuses and (idempotent or status in _REFUSED_STATUSES)
        text = self.redact(response.text)
        return _Failure(
            build=lambda attempts: self._status_error(status, text, endpoint, attempts, retry_after),
            retryable=retryable, reason=f"HTTP {status}", retry_after=retry_after,
        )

    def _transport_failure(self, cls: type[ApiError], what: str, exc: Exception, endpoint: str,
                           retryable: bool) -> _Failure:
        # httpx texts may embed the URL; keep the exception type and a redacted, query-free detail only.
        detail = _excerpt(self.redact(re.sub(r"\?\S*", "?…", str(exc))), 200)
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        url = self._client.base_url
        host = f"{url.host}:{url.port}" if url.port else url.host

        def build(attempts: int) -> ApiError:
            error = cls(f"{self.system}: {endpoint} {what}{_after(attempts)} ({reason})", system=self.system,
                        endpoint=endpoint)
            error.host = host
            return error

        return _Failure(build=build, retryable=retryable, reason=reason)

    def _parse_body(self, response: httpx.Response, endpoint: str, idempotent: bool) -> tuple[Any] | _Failure:
        content = response.content
        if not content.strip():
            return (None,)
        try:
            # Parse regardless of Content-Type: some endpoints label JSON as text/html or omit the header.
            return (parse_json(content),)
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except ValueError:
            problem = "is not valid JSON"
        status = response.status_code
        kind = response.headers.get("Content-Type", "no content type")
        excerpt = _excerpt(self.redact(response.text))
        return _Failure(
            build=lambda attempts: BadResponseError(
                f"{self.system}: {endpoint} returned HTTP {status} with a body that {problem}"
                f"{_after(attempts)} ({kind}; starts with {excerpt[:80]!r})",
                system=self.system, endpoint=endpoint, status_code=status, body_excerpt=excerpt,
            ),
            retryable=idempotent, reason=f"HTTP {status} with non-JSON body",
        )

    def _status_error(self, status: int, text: str, endpoint: str, attempts: int,
                      retry_after: float | None) -> ApiStatusError:
        excerpt = _excerpt(text)
        common = {"system": self.system, "endpoint": endpoint, "status_code": status, "body_excerpt": excerpt}
        head = f"{self.system}: {endpoint} failed with HTTP {status}{_after(attempts)}"
        tail = f": {excerpt[:120]}" if excerpt else ""
        if status in (401, 403):
            return AuthError(f"{head} (authentication rejected; check the API token)", **common)
        if status == 404:
            return NotFoundError(f"{head} (not found){tail}", **common)
        if status in (400, 422):
            # decoding the body undoes escapes such as \\/ that may have hidden a secret from the first pass
            fields = {self.redact(k): [self.redact(m) for m in v] for k, v in parse_field_errors(text).items()}
            summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items())
            detail = f" (validation failed: {_excerpt(summary, 200)})" if summary else f" (request rejected){tail}"
            return ValidationError(head + detail, field_errors=fields, **common)
        if status == 429:
            hint = f"; server asks to retry after {retry_after:.0f}s" if retry_after is not None else ""
            return RateLimitError(f"{head} (rate limited{hint})", retry_after=retry_after, **common)
        if status >= 500:
            return ServerError(f"{head} (server error){tail}", **common)
        return ApiStatusError(f"{head} (unexpected status){tail}", **common)


_MAX_NUMBER_CHARS = 64
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _int_or_text(text: str) -> int | str:
    # Python refuses integers over 4,300 digits with a ValueError that would fail the whole page; a number
    # that long is no amount or id anyway: keep its text, and staging quarantines the record.
    return int(text) if len(text) <= _MAX_NUMBER_CHARS else text


def _float_or_text(text: str) -> float | str:
    value = float(text) if len(text) <= _MAX_NUMBER_CHARS else math.inf
    return value if math.isfinite(value) else text  # 1e999 would become inf, which is not JSON


def _clean_text(value: Any) -> Any:
    """Lone UTF-16 surrogates (from `\\ud800` escapes) cannot be stored as UTF-8: U+FFFD stands in for them,
    which staging reports as invalid characters."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean_text(v) for v in value]
    if isinstance(value, dict):
        return {_clean_text(k): _clean_text(v) for k, v in value.items()}
    return value


def parse_json(content: bytes | str) -> Any:
    """A response body as JSON that one bad record cannot make unreadable or unstorable: numbers too long or
    not finite (`1e999`, `NaN`) stay text, lone surrogates become U+FFFD.

    Integers are read by the C scanner (a Python call per integer cost as much as the rest of the parse); an
    integer too long for Python (over 4,300 digits) makes it give up, and the careful path keeps its text."""
    try:
        data = jsonlib.loads(content, parse_float=_float_or_text, parse_constant=str)
    except UnicodeDecodeError:
        raise
    except ValueError:
        return _parse_json_carefully(content)
    raw = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    if b"\\ud" in raw or b"\\uD" in raw:  # only escapes can produce lone surrogates
        data = _clean_text(data)
    return data


def _parse_json_carefully(content: bytes | str) -> Any:
    data = jsonlib.loads(content, parse_int=_int_or_text, parse_float=_float_or_text, parse_constant=str)
    raw = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    if b"\\ud" in raw or b"\\uD" in raw:  # only escapes can produce lone surrogates
        data = _clean_text(data)
    return data


def parse_field_errors(text: str) -> dict[str, list[str]]:
    """Field errors from a Rails-style body {"code":"error","message":{field:[...]}} (or "errors"); {} otherwise."""
    try:
        data = jsonlib.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    fields = data.get("message") if isinstance(data.get("message"), dict) else data.get("errors")
    if not isinstance(fields, dict):
        return {}
    return {str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)] for k, v in fields.items()}


def _after(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


@dataclass(frozen=True)
class Page:
    """One answer of a listing: its records, and what the server says of the rest (when it says)."""

    records: list
    more: bool | None = None   # the server says more pages follow (None: it does not say; bare arrays)
    total: int | None = None   # records in the whole listing, where the server gives it


class InconsistentListingError(BadResponseError):
    """The pages of one listing contradict each other even when read again: the listing was not read to its
    end, so the extraction keeps what it got but does not move its cursor."""


REREADS = 2  # a page that contradicts its listing is read again this many times before we give up


class PageLoop:
    """The one page loop of every client: pages from 1 until the end of the listing is confirmed.

    A listing's end is believed only when it is consistent. A page that contradicts the listing is read
    again (a glitch goes away) up to `rereads` times, then InconsistentListingError:
    - an empty or short page while the server says (now, or on the page before) that more pages follow;
    - without `more` (bare arrays), a short or empty page whose next page is not empty. That end check
      costs one request per listing read to its end, and is made only when the caller asks for more: a
      changed-since read that stops early never pays for it;
    - with `total`, records that do not add up to it.
    An empty page is read once more before it is believed, except an empty first page of a listing whose
    server says nothing more (`more` False): a cursor read finding nothing loses nothing. A page equal to
    the previous one means the server ignores `page`: an error, not an endless loop.
    `pages_requested` counts every request.
    """

    def __init__(self, *, system: str, per_page: int, rereads: int = REREADS):
        self.system, self.per_page, self.rereads = system, per_page, rereads
        self.pages_requested = 0

    def iterate(self, fetch: Callable[[int], Page], endpoint: str) -> Iterator[list]:
        def read(n: int) -> Page:  # a page that cannot be read says which one it was
            self.pages_requested += 1
            try:
                return fetch(n)
            except (BadResponseError, ServerError, ApiConnectionError, ApiTimeoutError) as exc:
                exc.message = f"{exc.message} (page {n} of the listing)"
                exc.args = (exc.message,)
                raise

        n, previous, promised, seen, tries = 1, None, False, 0, 0
        while True:
            page = read(n)
            size = len(page.records)
            if page.records and page.records == previous:
                raise self._inconsistent(endpoint, f"page {n} repeats page {n - 1} (is `page` ignored?)", n,
                                         page.records)
            if (page.more or promised) and size < self.per_page and not (promised and page.more is False and size):
                problem = (f"page {n} holds {size} of {self.per_page} records although the server says more "
                           "pages follow")
                if tries < self.rereads:
                    tries += 1
                    continue
                raise self._inconsistent(endpoint, f"{problem}, also when read again", n, page.records)
            if not page.records and tries == 0 and (n > 1 or page.more is None):
                tries += 1  # an empty page is believed when it says so twice
                continue
            if page.records:
                seen += len(page.records)
                yield page.records
            if page.more or (page.more is None and size >= self.per_page):
                previous, promised, n, tries = page.records, bool(page.more), n + 1, 0
                continue
            if page.more is None and (page.records or n > 1):
                probe = read(n + 1)  # the caller wants more: is this short or empty page really the end?
                if probe.records:
                    if tries < self.rereads:
                        tries += 1  # read page n again; records it yields twice are landed once
                        continue
                    raise self._inconsistent(endpoint, f"page {n} holds {size} of {self.per_page} records but page "
                                                       f"{n + 1} is not empty, also when read again", n, page.records)
            if page.total is not None and page.total != seen:
                raise self._inconsistent(endpoint, f"the listing says it holds {page.total} records but its pages "
                                                   f"held {seen}", n, [])
            return

    def _inconsistent(self, endpoint: str, problem: str, n: int, sample: list) -> InconsistentListingError:
        excerpt = _excerpt(jsonlib.dumps(sample[:1], ensure_ascii=False, default=str), 120) if sample else ""
        return InconsistentListingError(
            f"{self.system}: {endpoint} listing is inconsistent: {problem}; kept what was read before page {n}, "
            "the cursor stays and the next run reads again", system=self.system, endpoint=endpoint,
            status_code=200, body_excerpt=excerpt)


def newest_first_since(pages: Iterable[list], since: datetime, stamp: Callable[[Any], datetime | None],
                       on_unsorted: Callable[[], None] | None = None) -> Iterator[list]:
    """For lists sorted newest first with no changed-since filter: yield the records changed at or after
    `since` and stop after the first page that holds an older one. A record without a usable time is
    kept: never drop data.

    Stopping early is safe only if the server really sorted the list: once a record is newer than the one
    before it, the order is not to be trusted and the whole listing is read (the older records are still
    left out); `on_unsorted` is called when that is found."""
    previous: datetime | None = None
    sorted_newest_first = True
    for page in pages:
        kept, older_seen = [], False
        for item in page:
            when = stamp(item) if isinstance(item, dict) else None
            if when is not None:
                if previous is not None and when > previous and sorted_newest_first:
                    sorted_newest_first = False
                    if on_unsorted is not None:
                        on_unsorted()
                previous = when
            if when is not None and when < since:
                older_seen = True
            else:
                kept.append(item)
        if kept:
            yield kept
        if older_seen and sorted_newest_first:
            return


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (`+02:00` or Zoho's `+0200`) as an aware UTC datetime, naive ones taken as
    UTC; None when missing or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)

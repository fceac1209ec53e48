"""Tests for the shared HTTP layer: retries, Retry-After, budget, error mapping and secret redaction."""

from __future__ import annotations

import logging
import pickle
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from sync_pipeline.connectors._http import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthError,
    BadResponseError,
    HttpApi,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ValidationError,
    parse_retry_after,
)

TOKEN = "k3J9sPq0XyZ/acme"


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class MaxJitter(random.Random):
    """Always picks the top of the jitter range, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Server:
    """Plays scripted replies (responses, or exceptions to raise) and records the requests; the last reply repeats."""

    def __init__(self, *replies) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make_api(server: Server, time_: FakeTime | None = None, **kwargs) -> HttpApi:
    time_ = time_ or FakeTime()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, total_budget=60.0))
    return HttpApi(system="fakturownia", base_url="https://acme.fakturownia.pl", secrets=[TOKEN],
                   transport=server.transport, sleep=time_.sleep, clock=time_.clock, rng=MaxJitter(), **kwargs)


def leaks(exc: BaseException, secret: str = TOKEN) -> list[str]:
    """Every text of the exception and its cause/context chain that still shows the secret (raw or URL-encoded)."""
    forms = {secret, secret.replace("/", "%2F"), secret.replace("/", "%2f")}
    found, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts = [str(exc), repr(exc), *(str(v) for v in vars(exc).values())]
        found += [t for t in texts if any(f in t for f in forms)]
        exc = exc.__cause__ or exc.__context__
    return found


def get(api: HttpApi, **kwargs):
    return api.request_json("GET", "/invoices.json", params={"api_token": TOKEN, "page": 1}, **kwargs)


# --- retries --------------------------------------------------------------------------------------------------


def test_429_with_retry_after_sleeps_at_least_that_long_then_succeeds():
    time_ = FakeTime()
    server = Server(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[{"id": 1}]))
    assert get(make_api(server, time_)) == [{"id": 1}]
    assert len(server.requests) == 2
    assert time_.sleeps == [pytest.approx(7.0)]


def test_503_twice_then_200_succeeds_with_growing_backoff():
    time_ = FakeTime()
    server = Server(httpx.Response(503), httpx.Response(503), httpx.Response(200, json={"ok": True}))
    assert get(make_api(server, time_)) == {"ok": True}
    assert len(server.requests) == 3
    assert time_.sleeps == [1.0, 2.0]


def test_gives_up_after_max_attempts_with_server_error():
    time_ = FakeTime()
    server = Server(httpx.Response(500, text="boom"))
    with pytest.raises(ServerError) as info:
        get(make_api(server, time_))
    assert len(server.requests) == 4
    assert info.value.status_code == 500
    assert "after 4 attempts" in str(info.value)


def test_total_budget_stops_retries_before_oversleeping():
    time_ = FakeTime()
    server = Server(httpx.Response(503))
    policy = RetryPolicy(max_attempts=10, base_delay=2.0, max_delay=100.0, total_budget=5.0)
    with pytest.raises(ServerError):
        get(make_api(server, time_, retry=policy))
    # 2s fits the budget; the next 4s would end at 6s > 5s, so it stops after the second attempt.
    assert time_.sleeps == [2.0]
    assert len(server.requests) == 2


def test_retry_after_longer_than_budget_raises_rate_limit_error_with_hint():
    time_ = FakeTime()
    server = Server(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as info:
        get(make_api(server, time_))
    assert info.value.retry_after == 3600
    assert time_.sleeps == []
    assert len(server.requests) == 1


def test_post_is_not_retried_on_500():
    server = Server(httpx.Response(500), httpx.Response(201, json={"id": 1}))
    with pytest.raises(ServerError):
        make_api(server).request_json("POST", "/invoices.json", json={"api_token": TOKEN})
    assert len(server.requests) == 1


def test_post_is_not_retried_on_read_timeout_or_bad_body():
    server = Server(httpx.ReadTimeout("slow"), httpx.Response(201, json={"id": 1}))
    with pytest.raises(ApiTimeoutError):
        make_api(server).request_json("POST", "/invoices.json", json={})
    server = Server(httpx.Response(200, text="<html>"), httpx.Response(201, json={"id": 1}))
    with pytest.raises(BadResponseError):
        make_api(server).request_json("POST", "/invoices.json", json={})
    assert len(server.requests) == 1


def test_post_is_retried_on_429_and_on_connect_error():
    server = Server(httpx.Response(429), httpx.ConnectError("refused"), httpx.Response(201, json={"id": 9}))
    assert make_api(server).request_json("POST", "/invoices.json", json={}) == {"id": 9}
    assert len(server.requests) == 3


def test_post_marked_idempotent_is_retried_on_500():
    server = Server(httpx.Response(500), httpx.Response(200, json={"id": 9}))
    assert make_api(server).request_json("POST", "/x.json", json={}, idempotent=True) == {"id": 9}


def test_404_and_401_are_not_retried():
    for status, cls in [(404, NotFoundError), (401, AuthError), (403, AuthError)]:
        server = Server(httpx.Response(status), httpx.Response(200, json=[]))
        with pytest.raises(cls):
            get(make_api(server))
        assert len(server.requests) == 1


# --- bodies ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["<!DOCTYPE html><html><body>Maintenance</body></html>", '[{"id": 1, "na'])
def test_unparseable_200_body_is_retried_then_bad_response_error(body):
    time_ = FakeTime()
    server = Server(httpx.Response(200, text=body, headers={"Content-Type": "text/html"}))
    with pytest.raises(BadResponseError) as info:
        get(make_api(server, time_))
    assert len(server.requests) == 4
    message = str(info.value)
    assert message.startswith("fakturownia: GET /invoices.json ")
    assert info.value.system == "fakturownia" and info.value.endpoint == "GET /invoices.json"


def test_html_then_json_recovers():
    server = Server(httpx.Response(200, text="<html>oops</html>"), httpx.Response(200, json=[1]))
    assert get(make_api(server)) == [1]


def test_empty_2xx_body_is_none_and_json_with_wrong_content_type_parses():
    assert get(make_api(Server(httpx.Response(204)))) is None
    assert get(make_api(Server(httpx.Response(200, text="  ")))) is None
    wrong_type = httpx.Response(200, content=b'{"a": "1.0"}', headers={"Content-Type": "text/html"})
    assert get(make_api(Server(wrong_type))) == {"a": "1.0"}
    no_type = httpx.Response(200, content=b"[]")
    assert "content-type" not in no_type.headers
    assert get(make_api(Server(no_type))) == []


# --- error mapping --------------------------------------------------------------------------------------------


def test_422_maps_to_validation_error_with_field_errors():
    body = {"code": "error", "message": {"buyer_tax_no": ["- nie może być puste"], "oid": "taken"}}
    server = Server(httpx.Response(422, json=body))
    with pytest.raises(ValidationError) as info:
        make_api(server).request_json("POST", "/invoices.json", json={})
    assert info.value.status_code == 422
    assert info.value.field_errors == {"buyer_tax_no": ["- nie może być puste"], "oid": ["taken"]}
    assert "buyer_tax_no" in str(info.value) and "POST /invoices.json" in str(info.value)


def test_400_maps_to_validation_error_without_fields():
    with pytest.raises(ValidationError) as info:
        get(make_api(Server(httpx.Response(400, text="bad request"))))
    assert info.value.field_errors == {}
    assert info.value.status_code == 400


def test_429_exhausted_raises_rate_limit_error():
    time_ = FakeTime()
    server = Server(httpx.Response(429, headers={"Retry-After": "2"}))
    with pytest.raises(RateLimitError) as info:
        get(make_api(server, time_))
    assert len(server.requests) == 4
    assert info.value.retry_after == 2
    assert all(s >= 2 for s in time_.sleeps)


def test_connection_error_is_retried_then_api_connection_error(caplog):
    caplog.set_level(logging.DEBUG)
    server = Server(httpx.ConnectError(f"failed for https://acme.fakturownia.pl/invoices.json?api_token={TOKEN}"))
    with pytest.raises(ApiConnectionError) as info:
        get(make_api(server))
    assert len(server.requests) == 4
    assert "fakturownia: GET /invoices.json" in str(info.value)
    assert leaks(info.value) == []
    assert info.value.__cause__ is None and info.value.__context__ is None
    retries = [r for r in caplog.records if r.name == "sync_pipeline.http"]
    assert len(retries) == 3 and all(r.levelno == logging.WARNING for r in retries)
    assert all(TOKEN not in r.getMessage() and "%2F" not in r.getMessage() for r in caplog.records)


def test_401_names_system_and_endpoint_and_never_shows_the_token(caplog):
    caplog.set_level(logging.DEBUG)  # also lets httpx's own "HTTP Request: GET …?api_token=…" line through
    echo = {"code": "error", "message": f"Invalid token {TOKEN}", "url": f"/invoices.json?api_token={TOKEN}"}
    server = Server(httpx.Response(503), httpx.Response(401, json=echo))
    with pytest.raises(AuthError) as info:
        get(make_api(server))
    exc = info.value
    assert str(exc) == ("fakturownia: GET /invoices.json failed with HTTP 401 after 2 attempts "
                        "(authentication rejected; check the API token)")
    assert exc.endpoint == "GET /invoices.json" and exc.status_code == 401
    assert "***" in exc.body_excerpt
    assert leaks(exc) == []
    assert exc.__cause__ is None and exc.__context__ is None
    assert caplog.records, "expected retry and httpx log records"
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and "k3J9sPq0XyZ%2Facme" not in record.getMessage()
    assert "api_token" in str(server.requests[0].url)  # the token was really sent in the URL


def test_errors_pickle_with_their_attributes():
    error = RateLimitError("x: GET /a failed", system="x", endpoint="GET /a", body_excerpt="b", retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.endpoint, copy.retry_after) == (RateLimitError, str(error), "GET /a", 3.0)
    assert isinstance(copy, ApiError)


# --- pieces ---------------------------------------------------------------------------------------------------


def test_redact_replaces_raw_and_encoded_secret():
    api = make_api(Server(httpx.Response(200)))
    text = f"a {TOKEN} b k3J9sPq0XyZ%2Facme c k3J9sPq0XyZ%2facme"
    assert api.redact(text) == "a *** b *** c ***"
    assert HttpApi(system="s", base_url="http://x").redact("no secrets") == "no secrets"


def test_query_string_never_reaches_endpoint_and_none_params_are_dropped():
    server = Server(httpx.Response(404))
    with pytest.raises(NotFoundError) as info:
        make_api(server).request_json("GET", "/clients/1.json", params={"api_token": TOKEN, "x": None})
    assert info.value.endpoint == "GET /clients/1.json"
    assert "x=" not in str(server.requests[0].url)


def test_parse_retry_after_seconds_and_http_date():
    now = datetime(2025, 6, 12, 10, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_policy_delay_is_full_jitter_capped_with_retry_after_as_floor():
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    rng = random.Random(1)
    for attempt in range(1, 20):
        assert 0.0 <= policy.delay(attempt, None, rng) <= min(30.0, 0.5 * 2 ** (attempt - 1))
    assert policy.delay(10, None, MaxJitter()) == 30.0
    assert policy.delay(1, 7.0, rng) >= 7.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --- the shared page loop ------------------------------------------------------------------------------------

from sync_pipeline.connectors._http import InconsistentListingError, Page, PageLoop  # noqa: E402


class Listing:
    """Pages of a listing served by number; `glitches` maps a page number to the answers it gives first."""

    def __init__(self, pages: list[list], *, more: bool = False, total: int | None = None,
                 glitches: dict[int, list[list]] | None = None):
        self.pages, self.more, self.total = pages, more, total
        self.glitches = {k: list(v) for k, v in (glitches or {}).items()}
        self.asked: list[int] = []

    def __call__(self, n: int) -> Page:
        self.asked.append(n)
        if self.glitches.get(n):
            records = self.glitches[n].pop(0)
        else:
            records = self.pages[n - 1] if n <= len(self.pages) else []
        more = (n < len(self.pages)) if self.more else None
        return Page(records, more=more, total=self.total)


def _read(listing, per_page=2, rereads=2):
    loop = PageLoop(system="vendor", per_page=per_page, rereads=rereads)
    return [r for page in loop.iterate(listing, "GET /things") for r in page], loop


def test_a_listing_ends_on_a_short_page_confirmed_by_an_empty_next_page():
    listing = Listing([[1, 2], [3, 4], [5]])
    records, loop = _read(listing)
    assert records == [1, 2, 3, 4, 5] and listing.asked == [1, 2, 3, 4] and loop.pages_requested == 4


def test_an_empty_page_in_the_middle_once_is_read_again_and_nothing_is_lost():
    # issue 7, defect 3: `[]` for page 2 once used to end the listing there, silently
    listing = Listing([[1, 2], [3, 4], [5]], glitches={2: [[]]})
    records, _ = _read(listing)
    assert records == [1, 2, 3, 4, 5]
    assert listing.asked[:3] == [1, 2, 2]  # an empty page after a full one is read again before it is believed


def test_an_empty_page_that_stays_empty_while_later_pages_are_not_is_an_error():
    listing = Listing([[1, 2], [3, 4], [5]], glitches={2: [[], [], []]})
    with pytest.raises(InconsistentListingError, match="page 2 holds 0 of 2 records but page 3 is not empty"):
        _read(listing)


def test_a_short_page_before_the_end_is_read_again_then_an_error():
    glitch = Listing([[1, 2], [3, 4], [5]], glitches={1: [[1]]})
    records, _ = _read(glitch)
    assert sorted(set(records)) == [1, 2, 3, 4, 5]  # page 1 yielded twice: landing keeps one copy
    persistent = Listing([[1, 2], [3, 4], [5]], glitches={1: [[1], [1], [1]]})
    with pytest.raises(InconsistentListingError) as info:
        _read(persistent)
    assert "page 1 holds 1 of 2 records but page 2 is not empty" in str(info.value)
    assert info.value.system == "vendor" and info.value.endpoint == "GET /things"


def test_an_empty_or_short_page_while_the_server_promises_more_is_read_again_then_an_error():
    once = Listing([[1, 2], [3, 4], [5]], more=True, glitches={2: [[]]})
    assert _read(once)[0] == [1, 2, 3, 4, 5]
    always = Listing([[1, 2], [3, 4], [5]], more=True, glitches={2: [[3], [3], [3]]})
    with pytest.raises(InconsistentListingError, match="server says more pages follow"):
        _read(always)


def test_a_total_that_the_pages_do_not_add_up_to_is_an_error():
    assert _read(Listing([[1, 2], [3]], total=3))[0] == [1, 2, 3]
    with pytest.raises(InconsistentListingError, match="holds 4 records but its pages held 3"):
        _read(Listing([[1, 2], [3]], total=4))


def test_a_page_repeating_the_previous_one_is_an_error_not_an_endless_loop():
    with pytest.raises(InconsistentListingError, match="repeats page 1"):
        _read(Listing([[1, 2], [1, 2], [1, 2]]))


def test_an_empty_first_page_is_read_once_more_before_the_listing_is_believed_empty():
    listing = Listing([])
    assert _read(listing)[0] == [] and listing.asked == [1, 1]
    glitch = Listing([[1, 2], [3]], glitches={1: [[]]})
    assert _read(glitch)[0] == [1, 2, 3]

"""Tests for the Zoho Invoice client on httpx.MockTransport: OAuth refresh, headers, paging, changed-since, limits."""

from __future__ import annotations

import logging
import pickle
import urllib.parse
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from sync_pipeline.connectors._http import (
    ApiError,
    AuthError,
    BadResponseError,
    HttpApi,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from sync_pipeline.connectors.zoho_invoice.client import (
    ZOHO_DATA_CENTRES,
    DailyLimitError,
    TokenRefreshError,
    ZohoInvoiceClient,
    ZohoOAuth,
    urls_for,
)
from sync_pipeline_tests.test_http import FakeTime, MaxJitter

API = "https://www.zohoapis.eu/invoice/v3"
ACCOUNTS = "https://accounts.zoho.eu"
ORG = "20071234"
CLIENT_ID = "1000.CLIENTID42"
SECRET = "c5e3r/t+9f8e7d6c5b4a"
REFRESH = "1000.r3fr35h/t0k3n.9a8b"


def forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


def leaked(text: str, secrets) -> list[str]:
    return [s for secret in secrets for s in forms(secret) if s in text]


class ZohoFake:
    """The accounts server and the API in one transport handler.

    Tokens are issued as access-1, access-2, …; the API answers 401 to any token not currently valid, and otherwise
    plays `replies` (responses, or handlers taking the request; the last one repeats).
    """

    def __init__(self, *replies, token_reply: httpx.Response | None = None, expires_in: int = 3600) -> None:
        self.replies = list(replies)
        self.token_reply = token_reply
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "accounts.zoho.eu":
            self.token_requests.append(request)
            if self.token_reply is not None:
                return self.token_reply
            token = f"1000.access-{len(self.issued) + 1}.f00d"
            self.issued.append(token)
            self.valid.add(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in,
                                             "api_domain": "https://www.zohoapis.eu", "token_type": "Bearer"})
        self.api_requests.append(request)
        token = request.headers.get("Authorization", "").removeprefix("Zoho-oauthtoken ")
        if token not in self.valid:
            return httpx.Response(401, json={"code": 57, "message": "You are not authorized to perform this operation"})
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply

    def revoke_all(self) -> None:
        self.valid.clear()

    def params(self, index: int = 0) -> dict[str, str]:
        return dict(self.api_requests[index].url.params)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def listing(root: str, *pages: list[dict]):
    """A handler serving `page=N` of `pages` with has_more_page while later pages exist."""

    def handle(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        records = pages[page - 1] if page <= len(pages) else []
        return httpx.Response(200, json={
            "code": 0, "message": "success", root: records,
            "page_context": {"page": page, "per_page": 200, "has_more_page": page < len(pages),
                             "sort_column": "last_modified_time", "sort_order": "A"},
        })

    return handle


def make_client(fake: ZohoFake, time_: FakeTime | None = None, **kwargs) -> ZohoInvoiceClient:
    time_ = time_ or FakeTime()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, total_budget=60.0))
    # The fakes serve one or a few records per page: a full page, as a real listing that has more must.
    kwargs.setdefault("per_page", 1)
    return ZohoInvoiceClient.from_credentials(system="zoho", api_url=API, accounts_url=ACCOUNTS, organization_id=ORG,
                             client_id=CLIENT_ID, client_secret=SECRET, refresh_token=REFRESH,
                             transport=fake.transport, sleep=time_.sleep, clock=time_.clock, rng=MaxJitter(), **kwargs)


def invoice(id_: str, modified: str = "2025-06-12T10:14:03+0200") -> dict:
    return {"invoice_id": id_, "customer_id": "4512000000210044", "status": "sent", "total": 1250.0,
            "balance": 450.0, "last_payment_date": "", "last_modified_time": modified}


def contact(id_: str, modified: str | None) -> dict:
    record = {"contact_id": id_, "contact_name": f"Customer {id_}", "outstanding_receivable_amount": 0}
    if modified is not None:
        record["last_modified_time"] = modified
    return record


def ids(pages: list[list[dict]], key: str = "invoice_id") -> list[list[str]]:
    return [[r[key] for r in page] for page in pages]


# --- data centres -----------------------------------------------------------------------------------------------


def test_urls_for_data_centres():
    assert urls_for("com") == ("https://www.zohoapis.com/invoice/v3", "https://accounts.zoho.com")
    assert urls_for("eu") == ("https://www.zohoapis.eu/invoice/v3", "https://accounts.zoho.eu")
    assert urls_for("ca") == ("https://www.zohoapis.ca/invoice/v3", "https://accounts.zohocloud.ca")
    assert set(ZOHO_DATA_CENTRES) == {"com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"}
    assert all(api.endswith("/invoice/v3") for api, _ in ZOHO_DATA_CENTRES.values())
    with pytest.raises(ValueError, match="com.au"):
        urls_for("de")


def test_client_is_an_http_api_and_checks_its_settings():
    fake = ZohoFake(listing("invoices", []))
    assert isinstance(make_client(fake), HttpApi)
    for per_page in (0, 201):
        with pytest.raises(ValueError):
            make_client(fake, per_page=per_page)
    with pytest.raises(ValueError):
        ZohoInvoiceClient.from_credentials(system="zoho", api_url=API, accounts_url=ACCOUNTS, organization_id="", client_id=CLIENT_ID,
                          client_secret=SECRET, refresh_token=REFRESH)
    assert fake.token_requests == []  # nothing is fetched before the first read


# --- OAuth ------------------------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused_with_org_and_auth_headers():
    fake = ZohoFake(listing("invoices", [invoice("1")], [invoice("2")], [invoice("3")]))
    client = make_client(fake)
    assert ids(list(client.iter_invoice_pages())) == [["1"], ["2"], ["3"]]
    assert len(fake.token_requests) == 1 and client.token_refreshes == 1
    token_request = fake.token_requests[0]
    assert token_request.method == "POST" and token_request.url.path == "/oauth/v2/token"
    assert dict(token_request.url.params) == {"refresh_token": REFRESH, "client_id": CLIENT_ID,
                                              "client_secret": SECRET, "grant_type": "refresh_token"}
    assert len(fake.api_requests) == 3
    for request in fake.api_requests:
        assert request.headers["Authorization"] == "Zoho-oauthtoken 1000.access-1.f00d"
        assert request.headers["X-com-zoho-invoice-organizationid"] == ORG
        assert request.url.path.startswith("/invoice/v3/")


def test_token_is_refreshed_when_the_clock_nears_expiry():
    fake = ZohoFake(listing("invoices", [invoice("1")]))
    time_ = FakeTime()
    client = make_client(fake, time_)
    list(client.iter_invoice_pages())
    time_.now += 3600 - 61  # still more than 60 s left: reuse
    list(client.iter_invoice_pages())
    assert client.token_refreshes == 1
    time_.now += 2  # within the last minute: refresh first
    list(client.iter_invoice_pages())
    assert client.token_refreshes == 2 and len(fake.token_requests) == 2
    assert [r.headers["Authorization"][-13:] for r in fake.api_requests] == [
        "access-1.f00d", "access-1.f00d", "access-2.f00d"]


def test_oauth_used_directly_caches_until_expiry_and_invalidate_forces_a_refresh():
    fake = ZohoFake(expires_in=600)
    time_ = FakeTime()
    oauth = ZohoOAuth(system="zoho", accounts_url=ACCOUNTS, client_id=CLIENT_ID, client_secret=SECRET,
                      refresh_token=REFRESH, transport=fake.transport, clock=time_.clock)
    assert oauth.access_token() == oauth.access_token() == "1000.access-1.f00d"
    time_.now += 541
    assert oauth.access_token() == "1000.access-2.f00d"
    oauth.invalidate()
    assert oauth.access_token() == "1000.access-3.f00d"
    assert oauth.refreshes == 3


def test_401_mid_run_refreshes_once_and_the_request_succeeds():
    fake = ZohoFake(listing("invoices", [invoice("1")], [invoice("2")]))
    client = make_client(fake)
    pages = client.iter_invoice_pages()
    assert ids([next(pages)]) == [["1"]]
    fake.revoke_all()  # the token is revoked (or expired early) between two pages
    assert ids(list(pages)) == [["2"]]
    assert client.token_refreshes == 2 and len(fake.token_requests) == 2
    assert [r.url.params["page"] for r in fake.api_requests] == ["1", "2", "2"]
    assert fake.api_requests[-1].headers["Authorization"] == "Zoho-oauthtoken 1000.access-2.f00d"


def test_second_401_raises_auth_error_without_looping():
    time_ = FakeTime()
    fake = ZohoFake(httpx.Response(401, json={"code": 57, "message": "You are not authorized"}))
    client = make_client(fake, time_)
    with pytest.raises(AuthError) as info:
        list(client.iter_invoice_pages())
    assert not isinstance(info.value, TokenRefreshError)
    assert info.value.status_code == 401 and info.value.endpoint == "GET /invoices"
    assert str(info.value).startswith("zoho: GET /invoices failed with HTTP 401 again after refreshing")
    assert len(fake.api_requests) == 2 and len(fake.token_requests) == 2
    assert time_.sleeps == []
    assert info.value.__context__ is None


def test_403_is_not_answered_with_a_refresh():
    fake = ZohoFake(httpx.Response(403, json={"code": 57, "message": "wrong organization"}))
    with pytest.raises(AuthError) as info:
        list(make_client(fake).iter_invoice_pages())
    assert info.value.status_code == 403
    assert len(fake.api_requests) == 1 and len(fake.token_requests) == 1


@pytest.mark.parametrize("reply, status", [
    (httpx.Response(200, json={"error": "invalid_code"}), 200),
    (httpx.Response(400, json={"error": "invalid_client"}), 400),
])
def test_refused_refresh_raises_token_refresh_error_without_secrets(reply, status, caplog):
    caplog.set_level(logging.DEBUG)
    fake = ZohoFake(listing("invoices", []), token_reply=reply)
    client = make_client(fake)
    with pytest.raises(TokenRefreshError) as info:
        list(client.iter_invoice_pages())
    exc = info.value
    error = reply.json()["error"]
    assert isinstance(exc, AuthError) and exc.status_code == status and exc.error == error
    assert str(exc) == (f"zoho: Zoho refused to refresh the access token ({error}); re-authorise the connection "
                        f"and update its refresh token")
    assert exc.endpoint == "POST /oauth/v2/token"
    texts = [str(exc), repr(exc), *(str(v) for v in vars(exc).values())]
    assert leaked(" ".join(texts), [SECRET, REFRESH]) == []
    assert len(fake.token_requests) == 1 and fake.api_requests == []  # refused: not retried, no API call made
    assert leaked(caplog.text, [SECRET, REFRESH]) == []
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is TokenRefreshError and copy.error == error


def test_token_endpoint_5xx_is_retried():
    time_ = FakeTime()
    fake = ZohoFake(listing("invoices", [invoice("1")]))
    answers = iter([httpx.Response(503)])
    real = fake.__call__

    def handler(request):
        if request.url.host == "accounts.zoho.eu":
            answer = next(answers, None)
            if answer is not None:
                fake.token_requests.append(request)
                return answer
        return real(request)

    client = ZohoInvoiceClient.from_credentials(system="zoho", api_url=API, accounts_url=ACCOUNTS, organization_id=ORG,
                               client_id=CLIENT_ID, client_secret=SECRET, refresh_token=REFRESH,
                               transport=httpx.MockTransport(handler), sleep=time_.sleep, clock=time_.clock,
                               rng=MaxJitter(), retry=RetryPolicy(max_attempts=3, base_delay=1.0))
    assert ids(list(client.iter_invoice_pages())) == [["1"]]
    assert len(fake.token_requests) == 2 and len(time_.sleeps) == 1


# --- paging and filters -----------------------------------------------------------------------------------------


def test_paging_follows_has_more_page_and_returns_records_as_received():
    page1 = [invoice("4512000000381021"), invoice("4512000000381022")]
    page2 = [invoice("4512000000381023")]
    fake = ZohoFake(listing("invoices", page1, page2, [invoice("never")]))

    def two_pages(request):  # page 2 says has_more_page=false although the fake would serve a third page
        response = listing("invoices", page1, page2, [invoice("never")])(request)
        body = response.json()
        body["page_context"]["has_more_page"] = request.url.params["page"] == "1"
        return httpx.Response(200, json=body)

    fake.replies = [two_pages]
    client = make_client(fake, per_page=2)
    pages = list(client.iter_invoice_pages())
    assert pages == [page1, page2]
    assert pages[0][0]["total"] == 1250.0 and pages[0][0]["last_payment_date"] == ""
    assert client.pages_requested == 2 and len(fake.api_requests) == 2
    assert [fake.params(i)["page"] for i in range(2)] == ["1", "2"]
    assert fake.params()["per_page"] == "2"


def test_paging_stops_when_page_context_is_missing_or_page_is_repeated():
    body = {"code": 0, "message": "success", "invoices": [invoice("1")]}
    client = make_client(ZohoFake(httpx.Response(200, json=body)))
    assert ids(list(client.iter_invoice_pages())) == [["1"]]

    stuck = {**body, "page_context": {"page": 1, "has_more_page": True}}
    with pytest.raises(BadResponseError, match="repeats page 1"):
        list(make_client(ZohoFake(httpx.Response(200, json=stuck))).iter_invoice_pages())


def test_invoices_changed_since_send_last_modified_time_and_ascending_sort():
    fake = ZohoFake(listing("invoices", [invoice("1")]))
    client = make_client(fake, per_page=200)
    since = datetime(2025, 6, 1, 2, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))
    list(client.iter_invoice_pages(updated_since=since))
    assert fake.params() == {"last_modified_time": "2025-06-01T00:00:00+0000", "sort_column": "last_modified_time",
                             "sort_order": "A", "page": "1", "per_page": "200"}
    list(client.iter_invoice_pages())
    assert "last_modified_time" not in fake.params(1) and fake.params(1)["sort_order"] == "A"
    list(client.iter_invoice_pages(updated_since=datetime(2025, 6, 1, 7, 30)))  # naive: taken as UTC
    assert fake.params(2)["last_modified_time"] == "2025-06-01T07:30:00+0000"


def test_creditnotes_use_their_own_path_and_root():
    note = {"creditnote_id": "9001", "total": 100.0, "last_modified_time": "2025-06-03T08:00:00+0000"}
    fake = ZohoFake(listing("creditnotes", [note]))
    client = make_client(fake)
    assert list(client.iter_creditnote_pages(updated_since=datetime(2025, 6, 1, tzinfo=timezone.utc))) == [[note]]
    assert fake.api_requests[0].url.path == "/invoice/v3/creditnotes"
    assert fake.params()["last_modified_time"] == "2025-06-01T00:00:00+0000"


def test_invoices_issued_between_send_date_start_and_date_end():
    fake = ZohoFake(listing("invoices", [invoice("1")]))
    client = make_client(fake)
    list(client.iter_invoice_pages_issued_between(date_from=date(2025, 6, 1), date_to=datetime(2025, 6, 30, 12)))
    params = fake.params()
    assert (params["date_start"], params["date_end"]) == ("2025-06-01", "2025-06-30")
    assert "last_modified_time" not in params
    with pytest.raises(ValueError):
        client.iter_invoice_pages_issued_between(date_from=date(2025, 7, 1), date_to=date(2025, 6, 1))


def test_contacts_sorted_newest_first_stop_after_the_page_with_an_older_record():
    since = datetime(2025, 6, 1, tzinfo=timezone.utc)
    pages = [
        [contact("1", "2025-06-20T10:00:00+0200"), contact("2", "2025-06-10T10:00:00+0200")],
        [contact("5", "2025-06-01T00:00:00+0000"), contact("4", None), contact("3", "2025-06-01T01:00:00+0200")],
        [contact("6", "2025-05-01T00:00:00+0000")],
    ]
    fake = ZohoFake(listing("contacts", *pages))
    client = make_client(fake)
    got = list(client.iter_client_pages(updated_since=since))
    # contact 3 is 2025-05-31T23:00Z (older); 4 has no time (kept); 5 is exactly `since` (kept)
    assert ids(got, "contact_id") == [["1", "2"], ["5", "4"]]
    assert len(fake.api_requests) == 2 and client.pages_requested == 2
    params = fake.params()
    assert (params["sort_column"], params["sort_order"]) == ("last_modified_time", "D")
    assert fake.api_requests[0].url.path == "/invoice/v3/contacts"
    assert ids(list(client.iter_client_pages()), "contact_id") == [["1", "2"], ["5", "4", "3"], ["6"]]


# --- rate limits and errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [44, 1070])
def test_429_per_minute_or_concurrency_waits_for_retry_after_then_succeeds(code):
    time_ = FakeTime()
    fake = ZohoFake(httpx.Response(429, headers={"Retry-After": "2"}, json={"code": code, "message": "Too many"}),
                    listing("invoices", [invoice("1")]))
    client = make_client(fake, time_, retry=RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.5))
    assert ids(list(client.iter_invoice_pages())) == [["1"]]
    assert len(fake.api_requests) == 2
    assert len(time_.sleeps) == 1 and time_.sleeps[0] >= 2


def test_429_code_45_daily_limit_raises_at_once():
    time_ = FakeTime()
    body = {"code": 45, "message": "You have exceeded the maximum call rate limit of 1000 per day."}
    fake = ZohoFake(httpx.Response(429, headers={"Retry-After": "3600"}, json=body))
    with pytest.raises(DailyLimitError) as info:
        list(make_client(fake, time_).iter_invoice_pages())
    exc = info.value
    assert isinstance(exc, RateLimitError) and exc.status_code == 429 and exc.retry_after == 3600
    assert len(fake.api_requests) == 1 and time_.sleeps == []
    assert str(exc).startswith("zoho: GET /invoices")
    assert "daily API call limit is used up" in str(exc) and "next run resumes" in str(exc)


def test_429_without_a_body_code_is_retried_then_rate_limit_error():
    time_ = FakeTime()
    fake = ZohoFake(httpx.Response(429, json={"code": 44, "message": "Too many requests"}))
    with pytest.raises(RateLimitError) as info:
        list(make_client(fake, time_).iter_invoice_pages())
    assert not isinstance(info.value, DailyLimitError)
    assert len(fake.api_requests) == 4 and len(time_.sleeps) == 3


def test_error_body_with_non_zero_code_names_system_and_endpoint():
    fake = ZohoFake(httpx.Response(200, json={"code": 1002, "message": "Invoice does not exist."}))
    with pytest.raises(ApiError) as info:
        list(make_client(fake).iter_invoice_pages())
    assert isinstance(info.value, ValidationError)
    assert str(info.value) == "zoho: GET /invoices returned Zoho error code 1002: Invoice does not exist."
    assert info.value.endpoint == "GET /invoices" and info.value.system == "zoho"


def test_body_without_the_root_list_is_a_bad_response():
    fake = ZohoFake(httpx.Response(200, json={"code": 0, "message": "success", "contacts": []}))
    with pytest.raises(BadResponseError, match="zoho: GET /invoices has no 'invoices' list"):
        list(make_client(fake).iter_invoice_pages())


def test_4xx_error_body_maps_through_the_shared_error_tree():
    fake = ZohoFake(httpx.Response(400, json={"code": 2, "message": "Invalid value passed for last_modified_time"}))
    with pytest.raises(ValidationError) as info:
        list(make_client(fake).iter_invoice_pages())
    assert info.value.status_code == 400 and "Invalid value passed" in str(info.value)
    fake = ZohoFake(httpx.Response(500, json={"code": 9, "message": "oops"}))
    with pytest.raises(ServerError):
        list(make_client(fake).iter_invoice_pages())
    assert len(fake.api_requests) == 4


def test_no_secret_in_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)  # lets httpx's "HTTP Request: POST …?refresh_token=…" lines through
    time_ = FakeTime()
    fake = ZohoFake(listing("invoices", [invoice("1")], [invoice("2")]))
    client = make_client(fake, time_)
    pages = client.iter_invoice_pages()
    next(pages)
    fake.revoke_all()
    fake.replies = [httpx.Response(503), listing("invoices", [invoice("1")], [invoice("2")])]
    list(pages)
    issued = list(fake.issued)

    def echo(request):  # a server quoting the credentials back in its error body
        text = f"bad token {request.headers['Authorization']} for {SECRET} / {REFRESH}"
        return httpx.Response(400, json={"code": 1, "message": text})

    fake.replies = [echo]
    with pytest.raises(ValidationError) as info:
        list(client.iter_invoice_pages())
    assert len(issued) == 2 and client.token_refreshes == 2
    names = {r.name for r in caplog.records}
    assert {"httpx", "sync_pipeline.http"} <= names
    secrets = [SECRET, REFRESH, *fake.issued]
    assert leaked(caplog.text, secrets) == []
    assert all(leaked(r.getMessage(), secrets) == [] for r in caplog.records)
    exc = info.value
    assert leaked(" ".join([str(exc), repr(exc), *(str(v) for v in vars(exc).values())]), secrets) == []
    assert "***" in exc.body_excerpt
    assert fake.token_requests[0].url.params["client_secret"] == SECRET  # the secret really went over the wire

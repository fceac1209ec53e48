"""Tests for the CustomerSuccessBox client on httpx.MockTransport: Bearer auth, JSON pushes, error mapping, retries."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from sync_pipeline.connectors._http import AuthError, HttpApi, RetryPolicy, ServerError, ValidationError
from sync_pipeline.connectors.customersuccessbox.client import CustomerSuccessBoxClient
from sync_pipeline_tests.test_http import FakeTime, MaxJitter, Server

BASE = "https://acme.customersuccessbox.com"
KEY = "csb-k3y/9f8e+7d6c"
ACCOUNT = {"account_id": "tenant-8841", "name": "Nordlys ApS", "status": "active", "mrr": 1250.0,
           "custom_region": "EMEA"}


def make_client(server: Server, time_: FakeTime | None = None, **kwargs) -> CustomerSuccessBoxClient:
    time_ = time_ or FakeTime()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, total_budget=60.0))
    return CustomerSuccessBoxClient(system="csb", base_url=BASE, api_key=KEY, transport=server.transport,
                                    sleep=time_.sleep, clock=time_.clock, rng=MaxJitter(), **kwargs)


def shows_key(exc: BaseException) -> bool:
    texts = [str(exc), repr(exc), *(str(v) for v in vars(exc).values())]
    return any(form in t for t in texts for form in (KEY, "csb-k3y%2F9f8e%2B7d6c"))


def test_push_account_posts_json_with_bearer_key_and_5s_timeout():
    server = Server(httpx.Response(200, json={"status": "success"}))
    client = make_client(server)
    assert isinstance(client, HttpApi)
    assert client.push_account(ACCOUNT) == {"status": "success"}
    (request,) = server.requests
    assert request.method == "POST" and str(request.url) == f"{BASE}/api/v1_1/account"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == ACCOUNT
    assert request.extensions["timeout"]["read"] == 5.0


def test_push_invoice_posts_to_the_invoice_endpoint():
    server = Server(httpx.Response(200, json={"status": "success"}))
    invoice = {"invoice_id": "INV-000214", "account_id": "tenant-8841", "amount": 1250.0, "currency": "EUR"}
    make_client(server).push_invoice(invoice)
    assert server.requests[0].url.path == "/api/v1_1/invoice"
    assert json.loads(server.requests[0].content) == invoice


def test_empty_2xx_body_returns_none():
    assert make_client(Server(httpx.Response(200))).push_account(ACCOUNT) is None


@pytest.mark.parametrize("record", [{"name": "No id"}, {"account_id": None}, {"account_id": "  "}])
def test_missing_account_id_raises_before_any_request(record):
    server = Server(httpx.Response(200, json={"status": "success"}))
    with pytest.raises(ValueError, match="account_id"):
        make_client(server).push_account(record)
    assert server.requests == []


@pytest.mark.parametrize("record, missing", [
    ({"account_id": "tenant-8841", "amount": 1.0}, "invoice_id"),
    ({"invoice_id": "INV-1", "amount": 1.0}, "account_id"),
])
def test_invoice_needs_invoice_id_and_account_id(record, missing):
    server = Server(httpx.Response(200, json={"status": "success"}))
    with pytest.raises(ValueError, match=missing):
        make_client(server).push_invoice(record)
    assert server.requests == []


def test_401_is_an_auth_error_asking_to_check_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    server = Server(httpx.Response(401, json={"message": f"Invalid bearer {KEY}"}))
    with pytest.raises(AuthError) as info:
        make_client(server).push_account(ACCOUNT)
    exc = info.value
    assert str(exc) == "csb: POST /api/v1_1/account failed with HTTP 401 (authentication rejected; check the API key)"
    assert exc.status_code == 401 and len(server.requests) == 1
    assert not shows_key(exc) and "***" in exc.body_excerpt
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_422_is_a_validation_error_with_the_body_message():
    server = Server(httpx.Response(422, json={"message": "account_id is missing"}))
    with pytest.raises(ValidationError) as info:
        make_client(server).push_invoice({"invoice_id": "INV-1", "account_id": "tenant-8841"})
    exc = info.value
    assert str(exc) == "csb: POST /api/v1_1/invoice was rejected with HTTP 422: account_id is missing"
    assert exc.status_code == 422 and len(server.requests) == 1


def test_422_with_field_errors_lists_them():
    server = Server(httpx.Response(422, json={"errors": {"account_id": ["can't be blank"]}}))
    with pytest.raises(ValidationError) as info:
        make_client(server).push_account(ACCOUNT)
    assert info.value.field_errors == {"account_id": ["can't be blank"]}
    assert "account_id: can't be blank" in str(info.value)


def test_503_is_retried_because_pushes_are_upserts():
    time_ = FakeTime()
    server = Server(httpx.Response(503), httpx.Response(503), httpx.Response(200, json={"status": "success"}))
    assert make_client(server, time_).push_account(ACCOUNT) == {"status": "success"}
    assert len(server.requests) == 3 and len(time_.sleeps) == 2
    assert all(json.loads(r.content) == ACCOUNT for r in server.requests)


def test_read_timeout_after_sending_is_retried_too():
    time_ = FakeTime()
    server = Server(httpx.ReadTimeout("timed out"), httpx.Response(200, json={"status": "success"}))
    assert make_client(server, time_).push_invoice({"invoice_id": "INV-1", "account_id": "t"}) == {
        "status": "success"}
    assert len(server.requests) == 2


def test_persistent_503_gives_up_with_server_error():
    server = Server(httpx.Response(503))
    with pytest.raises(ServerError) as info:
        make_client(server).push_account(ACCOUNT)
    assert len(server.requests) == 4 and "after 4 attempts" in str(info.value)


def test_empty_api_key_is_rejected():
    with pytest.raises(ValueError):
        CustomerSuccessBoxClient(system="csb", base_url=BASE, api_key="")


@pytest.mark.parametrize("escape", [lambda t: t.replace("/", "\\/"), lambda t: t.replace("/", "\\u002f")])
@pytest.mark.parametrize("body", [lambda key: {"message": f"rejected request with key {key}"},
                                  lambda key: {"message": {"api_key": [f"{key} is not valid"]}}])
def test_an_error_body_echoing_the_key_behind_json_escapes_leaks_nothing(escape, body):
    # issue 7, defect 6: JSON may escape "/" as "\/"; decoding after redaction revealed the key
    text = escape(json.dumps(body(KEY)))
    assert KEY not in text
    server = Server(httpx.Response(422, content=text.encode(), headers={"Content-Type": "application/json"}))
    with pytest.raises(ValidationError) as info:
        make_client(server).push_account(ACCOUNT)
    assert not shows_key(info.value)
    assert "***" in str(info.value)

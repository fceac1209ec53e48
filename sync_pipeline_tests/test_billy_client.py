"""The Billy client on httpx.MockTransport (VENDOR_APIS §3): the access token header, paging by meta.paging,
singular write roots answered with plural roots, include, and errorCode/errorMessage in the errors."""

from __future__ import annotations

import json

import httpx
import pytest

from sync_pipeline.connectors._http import AuthError, NotFoundError, RetryPolicy, ServerError, ValidationError
from sync_pipeline.connectors.billy.client import BillyClient
from sync_pipeline_tests.test_http import FakeTime, MaxJitter, Server

TOKEN = "b1lly-t0ken+secret/42"
META = {"statusCode": 200, "success": True, "time": 0.02}


def make_client(server: Server, **kwargs) -> BillyClient:
    time_ = FakeTime()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=5.0, total_budget=60.0))
    return BillyClient(system="billy", access_token=TOKEN, transport=server.transport, sleep=time_.sleep,
                       clock=time_.clock, rng=MaxJitter(), **kwargs)


def page(n: int, count: int, records: list, size: int = 2) -> httpx.Response:
    paging = {"page": n, "pageCount": count, "pageSize": size, "total": 2 * count - 1}
    return httpx.Response(200, json={"meta": {**META, "paging": paging}, "contacts": records,
                                     "cities": [{"id": "c1"}]})  # an unrequested related root, ignored


def test_lists_are_read_to_page_count_with_the_token_header_and_include():
    server = Server(page(1, 2, [{"id": "a"}, {"id": "b"}]), page(2, 2, [{"id": "c"}]))
    client = make_client(server, page_size=2)
    pages = list(client.iter_pages("contacts", include=["contact.contactPersons:embed"], isCustomer="true"))
    assert pages == [[{"id": "a"}, {"id": "b"}], [{"id": "c"}]]
    assert [r.url.params["page"] for r in server.requests] == ["1", "2"]  # no third request: pageCount says 2
    first = server.requests[0]
    assert first.url.path == "/v2/contacts" and first.headers["X-Access-Token"] == TOKEN
    assert first.url.params["pageSize"] == "2" and first.url.params["isCustomer"] == "true"
    assert first.url.params["include"] == "contact.contactPersons:embed"
    assert TOKEN not in str(first.url)  # a header, never the URL


def test_a_create_sends_the_singular_root_and_returns_the_record_of_the_plural_answer():
    created = {"id": "Zk1oP3vYTn6sQ8dR4uW7xA", "name": "Nordlys ApS", "type": "company"}
    server = Server(httpx.Response(200, json={"meta": META, "contacts": [created], "contactPersons": [{"id": "p"}]}))
    client = make_client(server)
    assert client.create("contacts", {"name": "Nordlys ApS", "type": "company"}) == created
    (request,) = server.requests
    assert request.method == "POST" and json.loads(request.content) == {"contact": {"name": "Nordlys ApS",
                                                                                    "type": "company"}}


def test_a_create_is_not_repeated_after_a_server_error_but_an_update_is():
    server = Server(httpx.Response(500, json={"meta": {"statusCode": 500, "success": False},
                                             "errorCode": "INTERNAL_ERROR", "errorMessage": "boom"}))
    with pytest.raises(ServerError):
        make_client(server).create("invoices", {"contactId": "x"})
    assert len(server.requests) == 1  # a repeat could create a second invoice
    server = Server(httpx.Response(500, json={"errorCode": "INTERNAL_ERROR"}),
                    httpx.Response(200, json={"meta": META, "invoices": [{"id": "q7", "state": "approved"}]}))
    assert make_client(server).update("invoices", "q7", {"state": "approved"}) == {"id": "q7", "state": "approved"}
    assert len(server.requests) == 2


@pytest.mark.parametrize("status, code, error", [
    (404, "RECORD_NOT_FOUND", NotFoundError),
    (400, "INVALID_REQUEST_BODY", ValidationError),
    (401, "OAUTH_INVALID_ACCESS_TOKEN", AuthError),
])
def test_errors_carry_billys_code_and_message_and_never_the_token(status, code, error):
    body = {"meta": {"statusCode": status, "success": False}, "errorCode": code,
            "errorMessage": f"No `contact` record with id `x` was found (token {TOKEN}).",
            "helpUrl": "https://billysbilling.com/api"}
    server = Server(httpx.Response(status, json=body))
    with pytest.raises(error) as exc:
        make_client(server).get("contacts", "x")
    text = str(exc.value)
    assert code in text and "HTTP " + str(status) in text and "GET /contacts/x" in text
    if status != 401:
        assert "No `contact` record" in text
    assert TOKEN not in text and TOKEN not in repr(vars(exc.value))
    assert len(server.requests) == 1


def test_get_reads_the_singular_root_and_ids_cannot_alter_the_path():
    invoice = {"id": "q7Pz2LkVRiKc0wq1mN3aBg", "type": "invoice", "lines": [{"id": "b2"}]}
    server = Server(httpx.Response(200, json={"meta": META, "invoice": invoice}))
    client = make_client(server)
    assert client.get("invoices", invoice["id"], include=["invoice.lines:embed"]) == invoice
    assert server.requests[0].url.params["include"] == "invoice.lines:embed"
    with pytest.raises(ValueError, match="not a Billy id"):
        client.get("invoices", "../contacts")
    with pytest.raises(ValueError, match="unknown Billy resource"):
        client.get("users", "x")
    with pytest.raises(ValueError, match="page_size"):
        BillyClient(system="billy", access_token=TOKEN, page_size=1001)

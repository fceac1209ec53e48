"""The Billy client on httpx.MockTransport (VENDOR_APIS §3): the access token header, paging by meta.paging,
singular write roots answered with plural roots, include, errorCode/errorMessage in the errors, the union of change
lists that stands in for a changed-since filter, and the writes that carry persons and lines."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

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


def invoices_page(records: list[dict]) -> httpx.Response:
    paging = {"page": 1, "pageCount": 1, "pageSize": 1000, "total": len(records)}
    return httpx.Response(200, json={"meta": {**META, "paging": paging}, "invoices": records})


def test_changed_invoices_are_the_union_of_the_change_lists_each_invoice_once():
    since = datetime(2026, 11, 20, 7, 30, 5, tzinfo=timezone(timedelta(hours=1)))  # 06:30:05 UTC
    a, b, c, d, e, f = ({"id": x, "state": "approved"} for x in "ABCDEF")
    lists = {  # what each change list answers; B, A and C come twice
        ("minApprovedTime", "2026-11-20T06:30:05"): [a, b],
        ("isPaid", "false"): [b | {"balance": 1}, c],
        ("state", "draft"): [d],
        ("minEntryDate", "2026-11-19"): [a, e],
        ("minDueDate", "2026-08-22"): [c, f],  # 90 days before the cursor's date
    }
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        params = request.url.params
        return invoices_page(next(v for (k, want), v in lists.items() if params.get(k) == want))

    client = BillyClient(system="billy", access_token=TOKEN, transport=httpx.MockTransport(answer))
    pages = list(client.iter_invoice_pages(updated_since=since))
    assert pages == [[a, b], [c], [d], [e], [f]]  # the first copy of B wins; pages left empty are skipped
    assert [dict(r.url.params) for r in requests] == [
        {"minApprovedTime": "2026-11-20T06:30:05", "pageSize": "1000", "include": "invoice.lines:embed", "page": "1"},
        {"state": "approved", "isPaid": "false", "pageSize": "1000", "include": "invoice.lines:embed", "page": "1"},
        {"state": "draft", "pageSize": "1000", "include": "invoice.lines:embed", "page": "1"},
        {"minEntryDate": "2026-11-19", "pageSize": "1000", "include": "invoice.lines:embed", "page": "1"},
        {"minDueDate": "2026-08-22", "pageSize": "1000", "include": "invoice.lines:embed", "page": "1"},
    ]
    requests.clear()
    lists[("include", "invoice.lines:embed")] = [a]
    assert list(client.iter_invoice_pages()) == [[a]]  # no cursor: every invoice, one list
    assert [set(r.url.params) for r in requests] == [{"pageSize", "include", "page"}]


def test_a_contact_is_created_with_its_persons_and_answered_with_the_saved_ones():
    contact = {"id": "Zk1oP3vYTn6sQ8dR4uW7xA", "name": "Nordlys ApS", "type": "company"}
    ours = {"id": "p1", "contactId": contact["id"], "name": "Mette Lund", "email": "mette@nordlys.dk",
            "isPrimary": True}
    someone_elses = {"id": "p2", "contactId": "other", "name": "X", "email": None, "isPrimary": True}
    server = Server(httpx.Response(200, json={"meta": META, "contacts": [contact],
                                              "contactPersons": [someone_elses, ours]}))
    body = {"name": "Nordlys ApS", "type": "company", "countryId": "DK",
            "contactPersons": [{"name": "Mette Lund", "email": "mette@nordlys.dk", "isPrimary": True}]}
    assert make_client(server).create_contact(body) == {**contact, "contactPersons": [ours]}
    (request,) = server.requests
    assert request.method == "POST" and json.loads(request.content) == {"contact": body}


def test_a_contact_update_writes_its_primary_person_first_then_the_contact():
    cid = "Zk1oP3vYTn6sQ8dR4uW7xA"
    old = {"id": "p1", "contactId": cid, "name": "Mette Lund", "email": "mette@nordlys.dk", "isPrimary": True}
    new = old | {"email": "mette.lund@nordlys.dk"}
    persons = {"meta": {**META, "paging": {"page": 1, "pageCount": 1, "pageSize": 1000, "total": 1}},
               "contactPersons": [old]}
    server = Server(httpx.Response(200, json=persons),
                    httpx.Response(200, json={"meta": META, "contactPersons": [new]}),
                    httpx.Response(200, json={"meta": META, "contacts": [{"id": cid, "cityText": "Odense C"}],
                                              "contactPersons": [new]}))
    saved = make_client(server).update_contact(cid, {"cityText": "Odense C", "contactPersons": [
        {"name": "Mette Lund", "email": "mette.lund@nordlys.dk", "isPrimary": True}]})
    assert saved == {"id": cid, "cityText": "Odense C", "contactPersons": [new]}
    assert [(r.method, r.url.path) for r in server.requests] == [
        ("GET", "/v2/contactPersons"), ("PUT", "/v2/contactPersons/p1"), ("PUT", f"/v2/contacts/{cid}")]
    assert server.requests[0].url.params["contactId"] == cid
    assert json.loads(server.requests[1].content) == {"contactPerson": {"name": "Mette Lund",
                                                                        "email": "mette.lund@nordlys.dk"}}
    assert json.loads(server.requests[2].content) == {"contact": {"cityText": "Odense C"}}  # no persons: Billy ignores


def test_an_invoice_is_created_as_a_draft_then_approved_and_answered_with_its_lines():
    line = {"id": "l1", "invoiceId": "q7", "quantity": 4, "unitPrice": 1000}
    draft = {"id": "q7", "state": "draft", "invoiceNo": None}
    approved = {"id": "q7", "state": "approved", "invoiceNo": "1042", "approvedTime": "2026-11-20T06:00:02"}
    server = Server(httpx.Response(200, json={"meta": META, "invoices": [draft], "invoiceLines": [line]}),
                    httpx.Response(200, json={"meta": META, "invoices": [approved], "invoiceLines": [line]}))
    record = {"contactId": "c1", "entryDate": "2026-11-20", "externalId": "simply:16x9", "state": "approved",
              "lines": [{"quantity": 4, "unitPrice": 1000}]}
    assert make_client(server).create_invoice(record) == {**approved, "lines": [line]}
    post, put = server.requests
    assert json.loads(post.content) == {"invoice": {**record, "state": "draft"}}
    assert (put.method, put.url.path, json.loads(put.content)) == (
        "PUT", "/v2/invoices/q7", {"invoice": {"state": "approved"}})


def test_the_organisation_is_read_once_and_check_connection_reads_it_again():
    org = {"id": "hT4mXr8sQ0uJ1yF5bW2c9A", "name": "Nordlys Demo ApS", "baseCurrencyId": "DKK"}
    server = Server(httpx.Response(200, json={"meta": META, "organization": org}))
    client = make_client(server)
    assert client.organization_id() == client.organization_id() == org["id"]
    assert len(server.requests) == 1
    assert client.check_connection() == "organisation Nordlys Demo ApS (DKK)"
    assert len(server.requests) == 2

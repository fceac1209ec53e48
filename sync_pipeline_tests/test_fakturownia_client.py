"""Tests for the Fakturownia/InvoiceOcean client on httpx.MockTransport: paging, changed-since, token placement."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone

import httpx
import pytest

from sync_pipeline.connectors._http import BadResponseError, HttpApi, ServerError, ValidationError
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient, base_url_for
from sync_pipeline_tests.test_http import TOKEN, FakeTime, MaxJitter

BASE = "https://acme.fakturownia.pl"


class PagedServer:
    """Serves a fixed list of pages for `page=N` (an empty array past the end) and records every request."""

    def __init__(self, *pages: list, reply: httpx.Response | None = None) -> None:
        self.pages = pages
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.reply is not None:
            return self.reply
        page = int(request.url.params.get("page", "1"))
        return httpx.Response(200, json=self.pages[page - 1] if page <= len(self.pages) else [])

    def params(self, index: int = 0) -> dict[str, str]:
        return dict(self.requests[index].url.params)


def make_client(server, per_page: int = 3, **kwargs) -> FakturowniaClient:
    time_ = FakeTime()
    return FakturowniaClient(system="fakturownia", base_url=BASE, api_token=TOKEN, per_page=per_page,
                             transport=httpx.MockTransport(server), sleep=time_.sleep, clock=time_.clock,
                             rng=MaxJitter(), **kwargs)


def invoice(id_: int, updated_at: str | None = "2025-06-12T10:00:00.000+02:00") -> dict:
    record = {"id": id_, "price_gross": "1230.0", "paid": "0.0"}
    if updated_at is not None:
        record["updated_at"] = updated_at
    return record


def test_base_url_for_both_domains_and_rejects_others():
    assert base_url_for("fakturownia", "acme") == "https://acme.fakturownia.pl"
    assert base_url_for("invoiceocean", "acme") == "https://acme.invoiceocean.com"
    with pytest.raises(ValueError):
        base_url_for("billy", "acme")
    with pytest.raises(ValueError):
        base_url_for("fakturownia", "acme.fakturownia.pl")


@pytest.mark.parametrize("per_page", [0, 101, 500])
def test_per_page_outside_1_to_100_is_rejected(per_page):
    with pytest.raises(ValueError):
        make_client(PagedServer(), per_page=per_page)


def test_client_is_an_http_api_and_needs_a_token():
    assert isinstance(make_client(PagedServer()), HttpApi)
    with pytest.raises(ValueError):
        FakturowniaClient(system="fakturownia", base_url=BASE, api_token="")


def test_paging_ends_on_a_short_page_confirmed_by_an_empty_next_page():
    server = PagedServer([invoice(1), invoice(2), invoice(3)], [invoice(4), invoice(5), invoice(6)], [invoice(7)])
    client = make_client(server)
    pages = list(client.iter_invoice_pages())
    assert [[r["id"] for r in p] for p in pages] == [[1, 2, 3], [4, 5, 6], [7]]
    # bare arrays say nothing of the rest: one more request checks that the short page was the end
    assert len(server.requests) == 4 and client.pages_requested == 4
    assert [server.params(i)["page"] for i in range(4)] == ["1", "2", "3", "4"]
    assert server.params() == {"period": "all", "order": "updated_at.desc", "page": "1", "per_page": "3",
                               "api_token": TOKEN}
    assert server.requests[0].url.path == "/invoices.json"
    assert server.requests[0].headers["Accept"] == "application/json"


def test_paging_stops_on_empty_page_read_twice_without_yielding_it():
    server = PagedServer([invoice(1), invoice(2), invoice(3)], [])
    pages = list(make_client(server).iter_client_pages())
    assert len(pages) == 1
    # an empty page after a full one is believed only if it stays empty and the page after it is empty too
    assert [server.params(i)["page"] for i in range(len(server.requests))] == ["1", "2", "2", "3"]
    assert server.requests[0].url.path == "/clients.json"


def test_records_are_yielded_exactly_as_received():
    raw = {"id": 5, "price_gross": "339.99", "paid": "0.0", "positions": [{"tax": "23"}], "updated_at": None}
    [[record]] = list(make_client(PagedServer([raw])).iter_invoice_pages())
    assert record == raw and isinstance(record["price_gross"], str)


def test_changed_since_yields_only_newer_and_stops_after_page_with_older_item():
    since = datetime(2025, 6, 12, 8, 30, tzinfo=timezone.utc)
    server = PagedServer(
        [invoice(1, "2025-06-13T09:00:00.000+02:00"), invoice(2, None), invoice(3, "2025-06-12T10:31:00.000+02:00")],
        # 10:14+02:00 is 08:14 UTC: older, although the wall-clock digits look later than 08:30.
        [invoice(4, "2025-06-12T08:30:00Z"), invoice(5, "2025-06-12T10:14:05.000+02:00"), invoice(6, "garbage")],
        [invoice(7, "2025-06-01T00:00:00.000+02:00")] * 3,
    )
    client = make_client(server)
    pages = list(client.iter_invoice_pages(updated_since=since))
    assert [[r["id"] for r in p] for p in pages] == [[1, 2, 3], [4, 6]]
    assert len(server.requests) == 2 and client.pages_requested == 2
    assert server.params()["order"] == "updated_at.desc" and server.params()["period"] == "all"


def test_changed_since_stops_on_short_page_and_skips_all_old_first_page():
    since = datetime(2025, 6, 12, tzinfo=timezone.utc)
    server = PagedServer([invoice(1, "2025-06-13T00:00:00+00:00")])
    assert [len(p) for p in make_client(server).iter_client_pages(updated_since=since)] == [1]
    assert len(server.requests) == 2  # the short page, and the empty page after it that confirms the end
    old = PagedServer([invoice(1, "2025-01-01T00:00:00+00:00")] * 3, [invoice(2)] * 3)
    assert list(make_client(old).iter_client_pages(updated_since=since)) == []
    assert len(old.requests) == 1


def test_without_updated_since_all_pages_are_read():
    old = "2020-01-01T00:00:00+00:00"
    server = PagedServer([invoice(1, old)] * 3, [invoice(2, old)] * 3, [invoice(3, old)])
    assert sum(len(p) for p in make_client(server).iter_client_pages()) == 7
    assert len(server.requests) == 4


def test_issued_between_query():
    server = PagedServer([invoice(1)])
    list(make_client(server).iter_invoice_pages_issued_between(date_from=date(2025, 1, 1),
                                                                date_to=datetime(2025, 1, 31, 23, 59)))
    params = server.params()
    assert params["period"] == "more" and params["search_date_type"] == "issue_date"
    assert (params["date_from"], params["date_to"]) == ("2025-01-01", "2025-01-31")
    with pytest.raises(ValueError):
        list(make_client(server).iter_invoice_pages_issued_between(date_from=date(2025, 2, 1),
                                                                    date_to=date(2025, 1, 1)))


def test_products_changed_since_uses_date_from():
    server = PagedServer([{"id": 1, "price_net": "10.0"}])
    list(make_client(server).iter_product_pages(changed_since=date(2025, 6, 1)))
    list(make_client(server).iter_product_pages())
    assert server.requests[0].url.path == "/products.json"
    assert server.params(0)["date_from"] == "2025-06-01"
    assert "date_from" not in server.params(2)  # requests 0 and 1 are the first listing and its end check


def test_list_response_that_is_not_an_array_is_bad_response():
    server = PagedServer(reply=httpx.Response(200, json={"code": "error", "message": "nope"}))
    with pytest.raises(BadResponseError) as info:
        list(make_client(server).iter_invoice_pages())
    assert info.value.endpoint == "GET /invoices.json"
    assert "fakturownia" in str(info.value) and "array" in str(info.value)
    assert len(server.requests) == 1


def test_server_ignoring_page_does_not_loop_forever():
    server = PagedServer(reply=httpx.Response(200, json=[invoice(1), invoice(2), invoice(3)]))
    with pytest.raises(BadResponseError):
        list(make_client(server).iter_invoice_pages())
    assert len(server.requests) == 2


def test_change_invoice_status_puts_token_in_body_not_query():
    server = PagedServer(reply=httpx.Response(200, json={"id": 42, "status": "paid"}))
    assert make_client(server).change_invoice_status(invoice_id=42, status="paid") == {"id": 42, "status": "paid"}
    request = server.requests[0]
    assert request.method == "POST" and request.url.path == "/invoices/42/change_status.json"
    assert json.loads(request.content) == {"api_token": TOKEN}
    assert dict(request.url.params) == {"status": "paid"}
    assert request.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        make_client(server).change_invoice_status(invoice_id=42, status="cancelled")
    with pytest.raises(ValueError):
        make_client(server).change_invoice_status(invoice_id="42/../1", status="paid")


def test_change_invoice_status_error_body_on_200_raises_validation_error():
    server = PagedServer(reply=httpx.Response(200, json={"status": "error", "message": f"blocked {TOKEN}"}))
    with pytest.raises(ValidationError) as info:
        make_client(server).change_invoice_status(invoice_id=42, status="sent")
    assert info.value.status_code == 200 and TOKEN not in str(info.value)
    assert info.value.endpoint == "POST /invoices/42/change_status.json"


def test_change_invoice_status_retries_5xx_because_it_is_idempotent():
    replies = [httpx.Response(502), httpx.Response(200, json={"id": 1})]
    seen = []

    def handler(request):
        seen.append(request)
        return replies.pop(0)

    assert make_client(handler).change_invoice_status(invoice_id=1, status="paid") == {"id": 1}
    assert len(seen) == 2


def test_list_page_errors_map_to_typed_errors():
    server = PagedServer(reply=httpx.Response(500))
    with pytest.raises(ServerError):
        list(make_client(server).iter_invoice_pages())
    assert len(server.requests) == 6  # default RetryPolicy.max_attempts


def test_changed_since_reads_to_the_end_when_the_server_ignores_the_newest_first_order(caplog):
    # Found by the crash harness: the list came back by id, page 1 held old clients, the read stopped there,
    # and every client created after the hundredth was never read again.
    since = datetime(2025, 6, 12, tzinfo=timezone.utc)
    server = PagedServer(
        [invoice(1, "2025-01-01T00:00:00+00:00"), invoice(2, "2025-06-20T00:00:00+00:00"),
         invoice(3, "2025-02-01T00:00:00+00:00")],
        [invoice(4, "2025-03-01T00:00:00+00:00"), invoice(5, "2025-04-01T00:00:00+00:00"),
         invoice(6, "2025-05-01T00:00:00+00:00")],
        [invoice(7, "2025-07-01T00:00:00+00:00")],
    )
    client = make_client(server)
    with caplog.at_level(logging.WARNING, logger="sync_pipeline.http"):
        pages = list(client.iter_client_pages(updated_since=since))
    assert [r["id"] for p in pages for r in p] == [2, 7]
    assert [server.params(i)["page"] for i in range(len(server.requests))] == ["1", "2", "3", "4"]
    # said once, although the order is broken on page 1 and again on page 3
    said = [r.getMessage() for r in caplog.records if "newest-first" in r.getMessage()]
    assert said == ["fakturownia: /clients.json: the server ignored the newest-first order; reading the whole "
                    "listing so that no changed record is missed"]


def test_a_list_really_sorted_newest_first_stops_early_and_says_nothing(caplog):
    since = datetime(2025, 6, 12, tzinfo=timezone.utc)
    server = PagedServer(
        [invoice(9, "2025-07-01T00:00:00+00:00"), invoice(8, "2025-06-20T00:00:00+00:00"),
         invoice(7, "2025-06-01T00:00:00+00:00")],
        [invoice(6, "2025-05-01T00:00:00+00:00")],
    )
    with caplog.at_level(logging.WARNING, logger="sync_pipeline.http"):
        pages = list(make_client(server).iter_client_pages(updated_since=since))
    assert [r["id"] for p in pages for r in p] == [9, 8] and len(server.requests) == 1
    assert not [r for r in caplog.records if "newest-first" in r.getMessage()]

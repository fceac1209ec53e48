"""Tests for the Sugester client on httpx.MockTransport: lookups by external id, writes, token placement."""

from __future__ import annotations

import json

import httpx
import pytest

from sync_pipeline.connectors._http import BadResponseError, ServerError, ValidationError
from sync_pipeline.connectors.sugester.client import SugesterClient, base_url_for
from sync_pipeline_tests.test_http import TOKEN, FakeTime, MaxJitter

SANDBOX = "http://127.0.0.1:8765/sugester"


class Recorder:
    """Answers with `route(request)` and records every request."""

    def __init__(self, route) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.route(request)


def make_client(route, per_page: int = 2) -> tuple[SugesterClient, Recorder]:
    recorder, time_ = Recorder(route), FakeTime()
    client = SugesterClient(system="sugester", base_url=SANDBOX, api_token=TOKEN, per_page=per_page,
                            transport=httpx.MockTransport(recorder), sleep=time_.sleep, clock=time_.clock,
                            rng=MaxJitter())
    return client, recorder


def reply(status: int = 200, body=None):
    return lambda request: httpx.Response(status, json=body)


def paged(*pages: list):
    """Page N of `pages` for `page=N`, an empty array after the last."""
    return lambda request: httpx.Response(200, json=dict(enumerate(pages, 1)).get(int(request.url.params["page"]), []))


def test_base_url_for():
    assert base_url_for("acme") == "https://acme.sugester.pl"
    with pytest.raises(ValueError):
        base_url_for("https://acme.sugester.pl")


def test_find_client_by_external_id_returns_none_on_empty_list():
    client, server = make_client(reply(200, []))
    assert client.find_client_by_external_id("crm-000451") is None
    request = server.requests[0]
    assert request.method == "GET" and request.url.path == "/sugester/app/clients.json"
    assert request.url.params["external_id"] == "crm-000451" and request.url.params["api_token"] == TOKEN


def test_find_client_by_external_id_matches_exactly():
    body = [{"id": 1, "external_id": "crm-0004510"}, {"id": 2, "external_id": "crm-000451"}]
    client, _ = make_client(paged(body), per_page=5)
    assert client.find_client_by_external_id("crm-000451")["id"] == 2
    client, _ = make_client(paged(body[:1]), per_page=5)
    assert client.find_client_by_external_id("crm-000451") is None


def test_find_deal_by_external_id_pages_and_matches_as_strings():
    pages = {
        "1": [{"id": 10, "external_ids": {"fakturownia": 111}}, {"id": 11, "external_ids": None}],
        "2": [{"id": 12, "external_ids": {"other": 398211456}}, {"id": 13, "external_ids": {"fakturownia": 398211456}}],
        "3": [{"id": 14, "external_ids": {"fakturownia": 398211456}}],
    }
    client, server = make_client(lambda r: httpx.Response(200, json=pages[r.url.params["page"]]))
    deal = client.find_deal_by_external_id(client_id=884120, key="fakturownia", value="398211456")
    assert deal["id"] == 13
    assert [r.url.params["page"] for r in server.requests] == ["1", "2"]
    params = server.requests[0].url.params
    assert (params["client_id"], params["per_page"], params["api_token"]) == ("884120", "2", TOKEN)
    assert server.requests[0].url.path == "/sugester/app/deals.json"


def test_find_deal_by_external_id_returns_none_after_last_page():
    client, server = make_client(paged([{"id": 1, "external_ids": {"k": "a"}}] * 2, [{"id": 2, "external_ids": {"k": "b"}}]))
    assert client.find_deal_by_external_id(client_id=1, key="k", value="c") is None
    assert [r.url.params["page"] for r in server.requests] == ["1", "2", "3"]  # 3: the end confirmed empty


def test_create_client_sends_token_in_body_and_accepts_201():
    created = {"id": 884120, "name": "Stolarnia"}
    client, server = make_client(reply(201, created))
    assert client.create_client({"name": "Stolarnia", "external_id": "crm-1"}) == created
    request = server.requests[0]
    assert request.method == "POST" and request.url.path == "/sugester/app/clients.json"
    assert json.loads(request.content) == {"api_token": TOKEN, "client": {"name": "Stolarnia", "external_id": "crm-1"}}
    assert "api_token" not in str(request.url)


def test_update_client_put_token_in_body_and_retried_on_5xx():
    replies = [httpx.Response(503), httpx.Response(200, json={"client": {"id": 5, "name": "N"}})]
    client, server = make_client(lambda r: replies.pop(0))
    assert client.update_client(5, {"name": "N"}) == {"id": 5, "name": "N"}
    assert [r.method for r in server.requests] == ["PUT", "PUT"]
    assert server.requests[0].url.path == "/sugester/app/clients/5.json"
    assert json.loads(server.requests[0].content) == {"api_token": TOKEN, "client": {"name": "N"}}
    assert "api_token" not in str(server.requests[0].url)


def test_create_deal_is_not_retried_on_500():
    client, server = make_client(reply(500, {"error": "boom"}))
    with pytest.raises(ServerError) as info:
        client.create_deal({"name": "Deal", "client_id": 1, "external_ids": {"fakturownia": 7}})
    assert len(server.requests) == 1
    assert info.value.endpoint == "POST /app/deals.json"
    assert json.loads(server.requests[0].content)["deal"]["external_ids"] == {"fakturownia": 7}


def test_create_deal_is_retried_on_429():
    replies = [httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={"id": 3})]
    client, server = make_client(lambda r: replies.pop(0))
    assert client.create_deal({"name": "Deal"}) == {"id": 3}
    assert len(server.requests) == 2


def test_update_deal_path_and_non_object_reply():
    client, server = make_client(reply(200, [1, 2]))
    with pytest.raises(BadResponseError):
        client.update_deal(77, {"price": "10.0"})
    assert server.requests[0].url.path == "/sugester/app/deals/77.json"


def test_iter_pages():
    client, server = make_client(paged([{"id": 1}]))
    assert list(client.iter_client_pages()) == [[{"id": 1}]]
    assert list(client.iter_deal_pages(client_id=9)) == [[{"id": 1}]]
    assert "client_id" not in server.requests[0].url.params
    assert server.requests[2].url.params["client_id"] == "9"
    assert client.pages_requested == 4  # each short page is followed by the empty page that confirms the end


@pytest.mark.parametrize("escape", [lambda t: t.replace("/", "\\/"), lambda t: t.replace("/", "\\u002f")])
def test_a_422_echoing_the_token_behind_json_escapes_leaks_nothing(escape):
    # issue 7, defect 6: the field errors were decoded after redaction, which undid "\/" and revealed the token
    echoed = {"code": "error", "message": {"api_token": [f"- {TOKEN} jest nieprawidłowe"],
                                           "request": [json.dumps({"api_token": TOKEN, "deal": {"name": "x"}})]}}
    text = escape(json.dumps(echoed, ensure_ascii=False))
    assert TOKEN not in text
    client, _ = make_client(lambda request: httpx.Response(422, content=text.encode(),
                                                           headers={"Content-Type": "application/json"}))
    with pytest.raises(ValidationError) as info:
        client.create_deal({"name": "x"})
    exc = info.value
    texts = [str(exc), repr(exc), exc.body_excerpt, json.dumps(exc.field_errors, ensure_ascii=False)]
    assert not any(TOKEN in t or TOKEN.replace("/", "%2F") in t for t in texts), texts
    assert "api_token" in exc.field_errors and "***" in exc.field_errors["api_token"][0]

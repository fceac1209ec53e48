"""Sandbox simulators over real HTTP (httpx against 127.0.0.1) plus the demo-data generator."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest

from sync_pipeline.sandbox.demo_data import DemoSpec, generate_fakturownia
from sync_pipeline.sandbox.server import Sandbox, main

TODAY = date(2025, 6, 30)
FT = "sandbox-token/demo"
ST = "sandbox-sugester-token/demo"


@pytest.fixture
def sandbox():
    with Sandbox(spec=DemoSpec(today=TODAY)) as sb:
        yield sb


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def fak(sandbox, http):
    """GET helper for Fakturownia paths with the token in the query."""
    base = sandbox.system_urls()["fakturownia"]

    def get(path, **params):
        return http.get(base + path, params={"api_token": FT, **params})

    return get


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- generator ------------------------------------------------------------------------------------


def test_generator_is_deterministic_for_a_seed():
    spec = DemoSpec(seed=7, clients=30, today=TODAY)
    a, b = generate_fakturownia(spec), generate_fakturownia(spec)
    assert json.dumps([a.clients, a.invoices]) == json.dumps([b.clients, b.invoices])
    other = generate_fakturownia(DemoSpec(seed=8, clients=30, today=TODAY))
    assert json.dumps(other.invoices) != json.dumps(a.invoices)
    assert len(a.invoices) == 30 * 6 and len(a.clients) == 30


def test_generator_respects_shares_and_native_shapes():
    spec = DemoSpec(clients=1500, today=TODAY, months=18)
    data = generate_fakturownia(spec)
    invoices, n = data.invoices, len(data.invoices)

    def category(inv):
        if inv["cancelled"] or inv["status"] == "rejected":
            return "void"
        if inv["status"] in ("paid", "partial"):
            return inv["status"]
        return "overdue" if inv["payment_to"] < TODAY.isoformat() else "open"

    shares = {k: v / n for k, v in Counter(map(category, invoices)).items()}
    expected = {"paid": 0.55, "partial": 0.10, "overdue": 0.20, "void": 0.05, "open": 0.10}
    for key, share in expected.items():
        assert abs(shares[key] - share) < 0.03, (key, shares)
    kinds = Counter(i["kind"] for i in invoices)
    assert abs(kinds["vat"] / n - 0.80) < 0.03 and set(kinds) <= set(spec.kinds)
    currencies = Counter(i["currency"] for i in invoices)
    assert abs(currencies["PLN"] / n - 0.75) < 0.06

    window_start = date(2023, 12, 1)
    for inv in invoices:
        for field in ("price_net", "price_tax", "price_gross", "paid"):
            assert isinstance(inv[field], str) and "." in inv[field]
        assert Decimal(inv["price_net"]) + Decimal(inv["price_tax"]) == Decimal(inv["price_gross"])
        assert sum(Decimal(p["total_price_gross"]) for p in inv["positions"]) == Decimal(inv["price_gross"])
        assert 1 <= len(inv["positions"]) <= 3
        assert window_start <= date.fromisoformat(inv["issue_date"]) <= TODAY
        assert _instant(inv["created_at"]) <= _instant(inv["updated_at"])
        assert inv["view_url"] == f"https://demo.fakturownia.pl/invoice/{inv['token']}" and len(inv["token"]) == 20
        if inv["status"] == "paid":
            assert inv["paid"] == inv["price_gross"] and inv["paid_date"] <= TODAY.isoformat()
        elif inv["status"] == "partial":
            assert 0.09 <= Decimal(inv["paid"]) / Decimal(inv["price_gross"]) <= 0.91
        else:
            assert inv["paid"] == "0.0" and inv["paid_date"] is None
    assert len({i["id"] for i in invoices}) == n and len({i["number"] for i in invoices}) == n
    with_ext = sum(c["external_id"] is not None for c in data.clients) / len(data.clients)
    assert 0.85 < with_ext < 0.95
    assert all(c["balance"] == "0.0" and isinstance(c["id"], int) for c in data.clients)


# -- Fakturownia: lists -------------------------------------------------------------------------


def test_paging_clamps_per_page_and_ends_with_a_short_page(fak, sandbox):
    total = len(sandbox.fakturownia.invoices)  # 240
    assert len(fak("/invoices.json").json()) == 25  # default page size
    first = fak("/invoices.json", per_page=500, period="all").json()
    assert len(first) == 100
    seen = []
    for page in range(1, 10):
        rows = fak("/invoices.json", per_page=100, page=page).json()
        seen += [r["id"] for r in rows]
        if len(rows) < 100:
            break
    assert len(rows) == total - 200 and len(seen) == total == len(set(seen))
    assert fak("/invoices.json", per_page=100, page=4).json() == []
    assert "positions" not in first[0]
    assert fak("/invoices.json", include_positions="true", per_page=1).json()[0]["positions"]


def test_period_more_filters_by_issue_date(fak, sandbox):
    rows = fak("/invoices.json", period="more", date_from="2025-05-01", date_to="2025-05-31", per_page=100).json()
    expected = {i["id"] for i in sandbox.fakturownia.invoices.values() if i["issue_date"].startswith("2025-05")}
    assert expected and {r["id"] for r in rows} == expected
    paid = fak("/invoices.json", period="more", date_from="2025-06-01", date_to="2025-06-30",
               search_date_type="paid_date", per_page=100).json()
    assert paid and all(r["paid_date"].startswith("2025-06") for r in paid)


def test_order_updated_at_desc_and_default_id_order(fak):
    rows = fak("/invoices.json", order="updated_at.desc", per_page=100).json()
    stamps = [_instant(r["updated_at"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    ids = [r["id"] for r in fak("/invoices.json", per_page=100).json()]
    assert ids == sorted(ids)


def test_client_filters(fak, sandbox):
    client = next(c for c in sandbox.fakturownia.clients.values() if c["external_id"])
    assert [c["id"] for c in fak("/clients.json", external_id=client["external_id"]).json()] == [client["id"]]
    assert [c["id"] for c in fak("/clients.json", tax_no=client["tax_no"]).json()] == [client["id"]]
    assert client["id"] in [c["id"] for c in fak("/clients.json", email=client["email"]).json()]
    assert fak("/clients.json", external_id="crm-nope").json() == []
    by_client = fak("/invoices.json", client_id=client["id"], per_page=100).json()
    assert len(by_client) == 6 and {r["client_id"] for r in by_client} == {client["id"]}
    assert fak(f"/clients/{client['id']}.json").json()["name"] == client["name"]
    assert fak("/clients/1.json").status_code == 404


# -- Fakturownia: auth and errors ---------------------------------------------------------------


def test_auth_rejects_wrong_tokens_and_accepts_bearer(sandbox, http):
    base = sandbox.system_urls()["fakturownia"]
    bad = http.get(base + "/invoices.json", params={"api_token": "nope/demo"})
    assert bad.status_code == 401 and bad.json()["code"] == "error" and bad.json()["message"]
    assert http.get(base + "/invoices.json").status_code == 401
    body_bad = http.post(base + "/clients.json", json={"api_token": "nope", "client": {"name": "X"}})
    assert body_bad.status_code == 401
    body_ok = http.post(base + "/clients.json", json={"api_token": FT, "client": {"name": "X"}})
    assert body_ok.status_code == 201
    bearer = http.get(base + "/invoices.json", headers={"Authorization": f"Bearer {FT}"})
    assert bearer.status_code == 200 and isinstance(bearer.json(), list)
    assert http.get(base + "/invoices.json", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_validation_errors_have_the_vendor_shape(sandbox, http):
    base = sandbox.system_urls()["fakturownia"]
    r = http.post(base + "/clients.json", json={"api_token": FT, "client": {"email": "a@b.pl"}})
    assert r.status_code == 422 and r.json() == {"code": "error", "message": {"name": ["- nie może być puste"]}}
    r = http.post(base + "/invoices.json", json={"api_token": FT, "invoice": {"buyer_name": "Firma"}})
    assert r.status_code == 422 and r.json()["message"] == {"positions": ["- nie może być puste"]}
    r = http.post(base + "/invoices.json", json={"api_token": FT, "invoice": {"positions": [
        {"name": "Usługa", "quantity": 1, "total_price_gross": 123}]}})
    assert r.status_code == 422 and r.json()["message"] == {"buyer_name": ["- nie może być puste"]}
    assert http.get(base + "/invoices/1.json", params={"api_token": FT}).status_code == 404
    assert http.get(base + "/nowhere.json", params={"api_token": FT}).status_code == 404
    malformed = http.post(base + "/clients.json", content=b'{"api_token": "x", "client": {',
                          headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "error"


def test_create_invoice_computes_string_amounts_and_a_resolving_view_url(sandbox, http):
    base = sandbox.system_urls()["fakturownia"]
    client = next(iter(sandbox.fakturownia.clients.values()))
    r = http.post(base + "/invoices.json", json={"api_token": FT, "invoice": {
        "kind": "vat", "number": None, "issue_date": "2025-06-12", "payment_to_kind": 14,
        "client_id": client["id"], "positions": [{"name": "Licencja", "quantity": 1, "total_price_gross": 1230.0,
                                                  "tax": 23}]}})
    assert r.status_code == 201, r.text
    inv = r.json()
    assert (inv["price_net"], inv["price_tax"], inv["price_gross"], inv["paid"]) == ("1000.0", "230.0", "1230.0", "0.0")
    assert inv["number"].startswith("FV/2025/06/") and inv["payment_to"] == "2025-06-26"
    assert inv["buyer_name"] == client["name"] and isinstance(inv["id"], int)
    assert inv["view_url"] == f"{base}/invoice/{inv['token']}"
    page = http.get(inv["view_url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and inv["number"] in page.text
    # A buyer without client_id creates (then matches) a client, as the real API does.
    body = {"api_token": FT, "invoice": {"buyer_name": "Nowa Firma", "buyer_tax_no": "5213456789",
                                         "positions": [{"name": "X", "price_net": "10", "quantity": 2}]}}
    first, second = http.post(base + "/invoices.json", json=body).json(), http.post(base + "/invoices.json",
                                                                                     json=body).json()
    assert first["client_id"] == second["client_id"] and first["price_gross"] == "24.6"


# -- Fakturownia: changes -----------------------------------------------------------------------


def test_pay_invoice_bumps_updated_at_and_change_status_over_http(sandbox, fak, http):
    sim = sandbox.fakturownia
    latest_before = max(_instant(i["updated_at"]) for i in sim.invoices.values())
    target = next(i for i in sim.invoices.values() if i["status"] in ("issued", "sent") and not i["cancelled"])
    paid = sim.pay_invoice(target["id"], amount=Decimal("1.00"))
    assert paid["status"] == "partial" and paid["paid"] == "1.0"
    assert _instant(paid["updated_at"]) > latest_before
    assert fak("/invoices.json", order="updated_at.desc", per_page=1).json()[0]["id"] == target["id"]
    full = sim.pay_invoice(target["id"], on=date(2025, 6, 29))
    assert full["status"] == "paid" and full["paid"] == full["price_gross"] and full["paid_date"] == "2025-06-29"
    assert _instant(full["updated_at"]) > _instant(paid["updated_at"])

    base = sandbox.system_urls()["fakturownia"]
    other = next(i for i in sim.invoices.values() if i["status"] in ("issued", "sent") and not i["cancelled"])
    before = _instant(other["updated_at"])
    r = http.post(f"{base}/invoices/{other['id']}/change_status.json", params={"api_token": FT, "status": "paid"})
    assert r.status_code == 200 and r.json()["status"] == "paid" and r.json()["paid"] == other["price_gross"]
    assert _instant(r.json()["updated_at"]) > max(before, _instant(full["updated_at"]))
    r = http.post(f"{base}/invoices/{other['id']}/change_status.json", json={"api_token": FT, "status": "sent"})
    assert r.status_code == 200 and fak(f"/invoices/{other['id']}.json").json()["status"] == "sent"
    bad = http.post(f"{base}/invoices/{other['id']}/change_status.json", json={"api_token": FT, "status": "x"})
    assert bad.status_code == 422


def test_update_invoice_edits_positions_and_totals(sandbox, http):
    base = sandbox.system_urls()["fakturownia"]
    inv = next(i for i in sandbox.fakturownia.invoices.values() if i["kind"] == "vat")
    pos = inv["positions"][0]
    r = http.put(f"{base}/invoices/{inv['id']}.json", json={"api_token": FT, "invoice": {
        "positions": [{"id": p["id"], "_destroy": 1} for p in inv["positions"][1:]]
        + [{"id": pos["id"], "quantity": 2}, {"name": "Dodatkowa usługa", "price_net": "100", "tax": 23}]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [p["name"] for p in out["positions"]] == [pos["name"], "Dodatkowa usługa"]
    assert out["positions"][0]["quantity"] == "2.0"
    gross = Decimal(pos["price_gross"]) * 2 + Decimal("123")
    assert Decimal(out["price_gross"]) == gross and _instant(out["updated_at"]) > _instant(out["created_at"])


def test_injected_invoice_is_served_verbatim_after_normal_records(sandbox, fak):
    raw = {"number": "BROKEN/1", "price_gross": "12,30 zł", "issue_date": "2025-02-30", "kind": None}
    sandbox.fakturownia.inject_invoice(raw)
    last_page = fak("/invoices.json", per_page=100, page=3).json()
    assert len(last_page) == 41 and last_page[-1] == raw
    assert raw not in fak("/invoices.json", per_page=100, page=1).json()


# -- transport quirks -----------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(http):
    with Sandbox(spec=DemoSpec(clients=3, today=TODAY), max_rps=1) as sb:
        url = sb.system_urls()["fakturownia"] + "/invoices.json"
        statuses = [http.get(url, params={"api_token": FT}) for _ in range(4)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and statuses[0].status_code == 200
        retry_after = int(limited[0].headers["Retry-After"])
        assert retry_after >= 1 and limited[0].json()["code"] == "error"
        time.sleep(retry_after + 0.1)
        assert http.get(url, params={"api_token": FT}).status_code == 200
        assert http.get(sb.url + "/_sandbox/health").json() == {"ok": True}  # never limited


def test_fail_next_kinds(sandbox, fak):
    sim = sandbox.fakturownia
    sim.fail_next(r"^/invoices\.json$", "html_502")
    r = fak("/invoices.json")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    sim.fail_next(r"/invoices\.json", "html_200")
    r = fak("/invoices.json")
    assert r.status_code == 200 and "<html" in r.text.lower()
    sim.fail_next(r"/invoices\.json", "truncated")
    r = fak("/invoices.json")
    assert r.status_code == 200 and r.text.startswith("[")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    sim.fail_next(r"/invoices\.json", "500", times=2)
    assert [fak("/invoices.json").status_code for _ in range(3)] == [500, 500, 200]
    sim.fail_next(r"/clients", "429")
    r = fak("/clients.json")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert fak("/clients.json").status_code == 200
    with pytest.raises(ValueError):
        sim.fail_next("x", "teapot")


def test_request_log_and_counts_by_path(sandbox, fak, http):
    sim = sandbox.fakturownia
    for page in (1, 2, 3):
        fak("/invoices.json", page=page)
    fak("/clients.json")
    assert sim.request_count(path="/invoices.json") == 3
    assert sim.request_count("GET") == 4 and sim.request_count("POST") == 0
    logged = sim.requests(path=r"/invoices\.json")
    assert [r.query["page"] for r in logged] == [["1"], ["2"], ["3"]]
    stats = http.get(sandbox.url + "/_sandbox/stats").json()
    assert stats["fakturownia"]["requests_by_path"]["GET /invoices.json"] == 3
    assert stats["fakturownia"]["records"]["invoices"] == 240 and stats["sugester"]["requests"] == 0
    assert http.get(sandbox.url + "/elsewhere").status_code == 404


def test_state_file_round_trip(tmp_path, http):
    state = tmp_path / "sandbox.json"
    with Sandbox(spec=DemoSpec(clients=5, today=TODAY), state_file=state) as sb:
        base = sb.system_urls()
        created = http.post(base["fakturownia"] + "/clients.json",
                            json={"api_token": FT, "client": {"name": "Persisted", "external_id": "crm-999"}}).json()
        paid = sb.fakturownia.pay_invoice(next(iter(sb.fakturownia.invoices)))
        deal = http.post(base["sugester"] + "/app/deals.json",
                         json={"api_token": ST, "deal": {"name": "Deal", "price": "10"}}).json()
        invoice_ids = sorted(sb.fakturownia.invoices)
    assert state.exists()
    # A different spec proves the file, not the generator, supplies the data.
    with Sandbox(spec=DemoSpec(clients=50, seed=1, today=TODAY), state_file=state) as again:
        assert sorted(again.fakturownia.invoices) == invoice_ids
        assert again.fakturownia.clients[created["id"]]["name"] == "Persisted"
        assert again.fakturownia.invoices[paid["id"]]["status"] == "paid"
        assert again.sugester.deals[deal["id"]]["price"] == "10.0"
        url = again.system_urls()["fakturownia"]
        newer = http.post(url + "/clients.json", json={"api_token": FT, "client": {"name": "Next"}}).json()
        assert newer["id"] > created["id"] and _instant(newer["created_at"]) > _instant(paid["updated_at"])
        served = http.get(f"{url}/invoices/{paid['id']}.json", params={"api_token": FT}).json()
        assert served["view_url"].startswith(url + "/invoice/")


# -- Sugester -----------------------------------------------------------------------------------


@pytest.fixture
def sug(sandbox, http):
    base = sandbox.system_urls()["sugester"] + "/app"

    def call(method, path, body=None, **params):
        if method in ("GET", "DELETE"):
            return http.request(method, base + path, params={"api_token": ST, **params})
        return http.request(method, base + path, json={"api_token": ST, **(body or {})})

    return call


def test_sugester_client_crud_and_filters(sug):
    r = sug("POST", "/clients.json", {"client": {"name": "Stolarnia", "external_id": 451, "string1": "gold",
                                                  "decimal1": 12.5, "external_ids": {"fakturownia": 112233}}})
    assert r.status_code == 201
    client = r.json()
    assert isinstance(client["id"], int) and client["external_id"] == "451" and client["string1"] == "gold"
    assert client["decimal1"] == "12.5" and client["created_at"] == client["updated_at"]
    sug("POST", "/clients.json", {"client": {"name": "Other"}})
    assert [c["id"] for c in sug("GET", "/clients.json", external_id="451").json()] == [client["id"]]
    assert len(sug("GET", "/clients.json", per_page=1, page=2).json()) == 1
    assert [c["name"] for c in sug("GET", "/clients.json", **{"external_ids[fakturownia]": "112233"}).json()] == [
        "Stolarnia"]
    updated = sug("PUT", f"/clients/{client['id']}.json", {"client": {"email": "a@b.pl"}}).json()
    assert updated["email"] == "a@b.pl" and updated["string1"] == "gold"
    assert _instant(updated["updated_at"]) > _instant(client["updated_at"])
    assert sug("GET", f"/clients/{client['id']}.json").json()["email"] == "a@b.pl"
    assert sug("DELETE", f"/clients/{client['id']}.json").status_code == 200
    assert sug("GET", f"/clients/{client['id']}.json").status_code == 404


def test_sugester_deals_filters_and_validation(sug, sandbox, http):
    client = sug("POST", "/clients.json", {"client": {"name": "Klient"}}).json()
    body = {"name": "Wdrożenie", "price": 14760, "client_id": client["id"], "url": "http://x/invoice/abc",
            "currency": "PLN", "paid": False, "description": "opis", "external_ids": {"fakturownia": 1}}
    r = sug("POST", "/deals.json", {"deal": body})
    assert r.status_code == 201
    deal = r.json()
    assert deal["price"] == "14760.0" and deal["url"] == body["url"] and deal["external_ids"] == {"fakturownia": 1}
    sug("POST", "/deals.json", {"deal": {"name": "Bez klienta"}})
    assert [d["id"] for d in sug("GET", "/deals.json", client_id=client["id"]).json()] == [deal["id"]]
    assert len(sug("GET", "/deals.json").json()) == 2
    assert sug("PUT", f"/deals/{deal['id']}.json", {"deal": {"paid": True}}).json()["paid"] is True
    assert sug("DELETE", f"/deals/{deal['id']}.json").status_code == 200
    assert sug("GET", f"/deals/{deal['id']}.json").status_code == 404

    def error(deal_body):
        r = sug("POST", "/deals.json", {"deal": deal_body})
        assert r.status_code == 422 and r.json()["code"] == "error"
        return r.json()["message"]

    assert error({"price": 1}) == {"name": ["- nie może być puste"]}
    assert "price" in error({"name": "X", "price": "dużo"})
    assert "client_id" in error({"name": "X", "client_id": 999999})
    r = sug("POST", "/clients.json", {"client": {"name": ""}})
    assert r.status_code == 422 and r.json()["message"] == {"name": ["- nie może być puste"]}
    bad = http.get(sandbox.system_urls()["sugester"] + "/app/deals.json", params={"api_token": "nope"})
    assert bad.status_code == 401
    bad = http.post(sandbox.system_urls()["sugester"] + "/app/deals.json", json={"api_token": "x", "deal": {}})
    assert bad.status_code == 401


def test_sugester_nested_client_is_matched_or_created(sug, sandbox):
    nested = {"name": "Stolarnia Kowalczyk", "email": "biuro@stolarnia-k.pl",
              "external_ids": {"myapp_client_id": "crm-000451"}}
    first = sug("POST", "/deals.json", {"deal": {"name": "A", "price": 1, "client": nested}}).json()
    second = sug("POST", "/deals.json", {"deal": {"name": "B", "price": 2, "client": nested}}).json()
    assert first["client_id"] == second["client_id"] and "client" not in first
    assert len(sandbox.sugester.clients) == 1
    created = sandbox.sugester.clients[first["client_id"]]
    assert created["external_ids"] == {"myapp_client_id": "crm-000451"} and created["name"] == nested["name"]
    third = sug("POST", "/deals.json", {"deal": {"name": "C", "client": {"name": "Inny",
                                                                          "external_ids": {"myapp_client_id": "2"}}}})
    assert third.json()["client_id"] != first["client_id"] and len(sandbox.sugester.clients) == 2


def test_main_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--port", "not-a-number"])


def test_malformed_demo_invoices_are_served_once_and_survive_restarts(tmp_path):
    from sync_pipeline.sandbox.demo_data import DemoSpec
    from sync_pipeline.sandbox.server import Sandbox

    spec = DemoSpec(seed=3, clients=3, invoices_per_client=2, today=date(2026, 1, 15))
    state = tmp_path / "state.json"
    for _ in range(2):  # the second start restores the file instead of injecting again
        with Sandbox(spec=spec, state_file=state, malformed_invoices=3) as sb:
            rows = httpx.get(f"{sb.url}/fakturownia/invoices.json",
                             params={"api_token": "sandbox-token/demo", "per_page": 100}).json()
        bad = [r for r in rows if str(r.get("number", "")).startswith("BAD/")]
        assert len(rows) == 6 + 3
        assert {r["number"].rsplit("/", 1)[1] for r in bad} == {"DATE", "AMOUNT", "NOID"}
        assert [r for r in bad if r["number"].endswith("NOID")][0].get("id") is None


def test_a_restart_on_the_same_port_serves_the_new_simulators_to_a_pooled_client(tmp_path):
    """stop() closes keep-alive connections, so a client's pooled connection cannot reach the old sandbox."""
    spec = DemoSpec(seed=5, clients=2, invoices_per_client=1, today=date(2026, 1, 15))
    with httpx.Client() as client:
        with Sandbox(spec=spec) as first:
            port = int(first.url.rsplit(":", 1)[1])
            url = f"{first.url}/sugester/app/clients.json"
            client.post(url, json={"api_token": "sandbox-sugester-token/demo", "client": {"name": "Old"}})
            assert len(client.get(url, params={"api_token": "sandbox-sugester-token/demo"}).json()) == 1
        with Sandbox(spec=spec, port=port):  # empty Sugester again
            assert client.get(url, params={"api_token": "sandbox-sugester-token/demo"}).json() == []


def test_default_today_puts_no_timestamp_or_clock_in_the_future():
    """With `today=None` the data's "today" is yesterday (UTC): records of "today" are stamped up to
    18:00 local time and the clocks start at its 06:00 UTC, which early in a UTC day lay in the future."""
    from datetime import UTC, timedelta

    from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec, generate_zoho

    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)  # the bound holds at any hour of the day
    assert DemoSpec().resolved_today() == ZohoDemoSpec().resolved_today() == midnight.date() - timedelta(days=1)
    assert DemoSpec(today=TODAY).resolved_today() == TODAY  # an explicit day is kept as it is
    fak = generate_fakturownia(DemoSpec(clients=300, invoices_per_client=4))
    zoho = generate_zoho(ZohoDemoSpec(customers=300))
    stamps = [r[k] for r in (*fak.clients, *fak.invoices, *fak.products) for k in ("created_at", "updated_at")]
    stamps += [r[k] for r in (*zoho.contacts, *zoho.invoices, *zoho.creditnotes)
               for k in ("created_time", "last_modified_time")]
    latest = max(_instant(s) for s in stamps)
    assert latest < midnight and latest.date() >= midnight.date() - timedelta(days=1)  # yesterday is populated
    with Sandbox(spec=DemoSpec(clients=30, invoices_per_client=3)) as sb:
        assert sb.fakturownia.clock < midnight and sb.zoho.clock < midnight
        assert all(sim.clock <= now.replace(microsecond=0) + timedelta(seconds=1) for sim in sb.simulators.values())


def test_fakturownia_client_lists_honour_order_like_invoice_lists(sandbox):
    import httpx

    sim = sandbox.fakturownia
    oldest = min(sim.clients)
    sim.clients[oldest]["name"] += " (renamed)"
    sim._touch(sim.clients[oldest])
    rows = httpx.get(f"{sandbox.url}/fakturownia/clients.json", params={
        "api_token": sim.api_token, "order": "updated_at.desc", "per_page": 100}).json()
    assert rows[0]["id"] == oldest
    stamps = [datetime.fromisoformat(r["updated_at"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)

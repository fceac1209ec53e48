"""Zoho (accounts + Invoice API) and CustomerSuccessBox simulators over real HTTP, plus the Zoho demo generator."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime

import httpx
import pytest

from sync_pipeline.sandbox._http_sim import HttpHost
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec, generate_zoho
from sync_pipeline.sandbox.zoho_sim import ZohoAccountsSim, ZohoInvoiceSim

TODAY = date(2025, 6, 30)
ORG = "20240001"
CSB_KEY = "sandbox-csb-key"
REFRESH = {"client_id": "sandbox-zoho-client", "client_secret": "sandbox-zoho-secret",
           "refresh_token": "sandbox-zoho-refresh", "grant_type": "refresh_token"}
ZOHO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def sandbox():
    with Sandbox(spec=DemoSpec(clients=3, invoices_per_client=2, today=TODAY),
                 zoho_spec=ZohoDemoSpec(today=TODAY)) as sb:
        yield sb


def _refresh(http, sandbox, **params):
    return http.post(sandbox.system_urls()["zoho_accounts"] + "/oauth/v2/token", params={**REFRESH, **params})


@pytest.fixture
def zoho(sandbox, http):
    """GET helper for the Invoice API with a fresh access token and the organisation header."""
    token = _refresh(http, sandbox).json()["access_token"]
    base = sandbox.system_urls()["zoho"] + "/invoice/v3"

    def get(path, headers=None, **params):
        merged = {"Authorization": f"Zoho-oauthtoken {token}", "X-com-zoho-invoice-organizationid": ORG,
                  **(headers or {})}
        return http.get(base + path, params=params, headers={k: v for k, v in merged.items() if v is not None})

    return get


def _all(zoho, path, root, **params):
    rows, page = [], 1
    while True:
        body = zoho(path, page=page, **params).json()
        rows += body[root]
        if not body["page_context"]["has_more_page"]:
            return rows
        page += 1


# -- generator ------------------------------------------------------------------------------------


def test_generator_is_deterministic_for_a_seed_and_today():
    spec = ZohoDemoSpec(seed=5, today=TODAY)
    a, b = generate_zoho(spec), generate_zoho(spec)
    assert json.dumps([a.contacts, a.invoices, a.creditnotes]) == json.dumps([b.contacts, b.invoices, b.creditnotes])
    assert len(a.contacts) == 30 and len(a.invoices) == 150 and len(a.creditnotes) == 3
    assert json.dumps(generate_zoho(ZohoDemoSpec(seed=6, today=TODAY)).invoices) != json.dumps(a.invoices)
    # Dates follow `today`, not the wall clock.
    later = generate_zoho(ZohoDemoSpec(seed=5, today=date(2025, 7, 30)))
    assert [i["date"] for i in later.invoices][:5] == [
        date.fromordinal(date.fromisoformat(i["date"]).toordinal() + 30).isoformat() for i in a.invoices[:5]]
    assert max(i["date"] for i in a.invoices if i["status"] != "sent") <= TODAY.isoformat()


def test_generator_shares_and_native_shapes():
    spec = ZohoDemoSpec(customers=1000, today=TODAY)
    data = generate_zoho(spec)
    invoices, n = data.invoices, len(data.invoices)
    today = TODAY.isoformat()

    def category(inv):
        if inv["status"] in ("sent", "viewed"):
            return "open"
        return {"partially_paid": "partial"}.get(inv["status"], inv["status"])

    shares = {k: v / n for k, v in Counter(map(category, invoices)).items()}
    expected = {"paid": 0.5, "partial": 0.1, "overdue": 0.2, "void": 0.05, "draft": 0.05, "open": 0.1}
    for key, share in expected.items():
        assert abs(shares[key] - share) < 0.02, (key, shares)
    future = [i for i in invoices if i["date"] > today]
    assert future and all(i["status"] == "sent" for i in future)
    currencies = Counter(i["currency_code"] for i in invoices)
    assert abs(currencies["EUR"] / n - 0.6) < 0.06 and set(currencies) == {"EUR", "USD", "GBP"}

    for inv in invoices:
        assert inv["invoice_id"].isdigit() and inv["customer_id"].isdigit()
        assert all(isinstance(inv[k], float) for k in ("total", "balance", "payment_made"))
        assert round(inv["total"] - inv["payment_made"], 2) == inv["balance"]
        assert ZOHO_TIME.fullmatch(inv["created_time"]) and ZOHO_TIME.fullmatch(inv["last_modified_time"])
        assert _t(inv["created_time"]) <= _t(inv["last_modified_time"])
        assert re.fullmatch(r"INV-\d{6}", inv["invoice_number"])
        unpaid = inv["status"] in ("sent", "viewed", "overdue")
        assert (inv["status"] == "overdue") == (unpaid and inv["due_date"] < today)
        if inv["status"] == "paid":
            assert inv["balance"] == 0 and inv["last_payment_date"] <= today
        elif inv["status"] == "partially_paid":
            assert 0 < inv["payment_made"] < inv["total"] and inv["last_payment_date"]
        else:
            assert inv["payment_made"] == 0 and inv["last_payment_date"] == ""
    assert len({i["invoice_number"] for i in invoices}) == n == len({i["invoice_id"] for i in invoices})

    field = spec.account_id_field
    without = [c for c in data.contacts if not c["custom_fields"]]
    assert 0.07 < len(without) / len(data.contacts) < 0.13
    assert all(field not in c["custom_field_hash"] for c in without)
    with_id = [c for c in data.contacts if c["custom_fields"]]
    sample = with_id[0]["custom_fields"][0]
    assert sample["api_name"] == field and sample["label"] == "Account ID"
    assert re.fullmatch(r"ACC-\d{5}", sample["value"])
    assert with_id[0]["custom_field_hash"] == {field: sample["value"], f"{field}_unformatted": sample["value"]}
    assert len({c["custom_fields"][0]["value"] for c in with_id}) == len(with_id)
    assert all(c["contact_type"] == "customer" and c["contact_id"].isdigit() for c in data.contacts)
    notes = data.creditnotes
    assert len(notes) == 100 and all(re.fullmatch(r"CN-\d{5}", c["creditnote_number"]) for c in notes)
    assert {c["status"] for c in notes} == {"open", "closed", "void", "draft"}  # drafts are listed too


# -- Zoho accounts server --------------------------------------------------------------------------


def test_token_refresh_happy_path_in_query_and_form_body(sandbox, http):
    r = _refresh(http, sandbox)
    assert r.status_code == 200
    body = r.json()
    assert re.fullmatch(r"1000\.[0-9a-f]{32}\.[0-9a-f]{32}", body["access_token"])
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["api_domain"] == sandbox.system_urls()["zoho"]
    form = http.post(sandbox.system_urls()["zoho_accounts"] + "/oauth/v2/token", data=REFRESH).json()
    assert form["access_token"] != body["access_token"] and sandbox.zoho_accounts.refresh_count == 2
    sandbox.zoho_accounts.token_ttl = 60
    assert _refresh(http, sandbox).json()["expires_in"] == 60


def test_token_errors_come_with_http_200(sandbox, http):
    bad = _refresh(http, sandbox, refresh_token="1000.nope")
    assert bad.status_code == 200 and bad.json() == {"error": "invalid_code"}
    assert _refresh(http, sandbox, client_secret="wrong").json() == {"error": "invalid_client"}
    assert _refresh(http, sandbox, client_id="other").json() == {"error": "invalid_client"}
    token = _refresh(http, sandbox).json()["access_token"]
    sandbox.zoho_accounts.revoke_refresh_token()
    assert _refresh(http, sandbox).json() == {"error": "invalid_code"}
    r = http.get(sandbox.system_urls()["zoho"] + "/invoice/v3/invoices",
                 headers={"Authorization": f"Zoho-oauthtoken {token}", "X-com-zoho-invoice-organizationid": ORG})
    assert r.status_code == 401
    assert sandbox.zoho_accounts.refresh_count == 1


# -- Zoho Invoice API: auth and organisation -------------------------------------------------------


def test_api_401_without_token_and_with_an_expired_one(sandbox, zoho, http):
    not_authorized = {"code": 57, "message": "You are not authorized to perform this operation"}
    r = zoho("/invoices", headers={"Authorization": None})
    assert r.status_code == 401 and r.json() == not_authorized
    assert zoho("/invoices", headers={"Authorization": "Zoho-oauthtoken 1000.abc.def"}).status_code == 401
    assert zoho("/invoices").status_code == 200
    sandbox.zoho_accounts.expire_access_tokens()
    r = zoho("/invoices")
    assert r.status_code == 401 and r.json() == not_authorized
    fresh = _refresh(http, sandbox).json()["access_token"]
    assert zoho("/invoices", headers={"Authorization": f"Zoho-oauthtoken {fresh}"}).status_code == 200
    assert zoho("/invoices", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401  # wrong scheme


def test_organization_header_or_parameter_is_required(sandbox, zoho):
    missing = zoho("/contacts", headers={"X-com-zoho-invoice-organizationid": None})
    assert missing.status_code == 400 and missing.json()["code"] == 6041 and missing.json()["message"]
    wrong = zoho("/contacts", headers={"X-com-zoho-invoice-organizationid": "999"})
    assert wrong.status_code == 400 and wrong.json()["code"] == 6041
    by_param = zoho("/contacts", headers={"X-com-zoho-invoice-organizationid": None}, organization_id=ORG)
    assert by_param.status_code == 200 and len(by_param.json()["contacts"]) == 30
    orgs = zoho("/organizations", headers={"X-com-zoho-invoice-organizationid": None}).json()
    assert orgs["code"] == 0 and [o["organization_id"] for o in orgs["organizations"]] == [ORG]


# -- Zoho Invoice API: lists -----------------------------------------------------------------------


def test_paging_and_has_more_page(sandbox, zoho):
    first = zoho("/invoices").json()
    assert first["code"] == 0 and first["message"] == "success" and len(first["invoices"]) == 150
    ctx = first["page_context"]
    assert ctx == {"page": 1, "per_page": 200, "has_more_page": False, "report_name": "Invoices",
                   "applied_filter": "Status.All", "sort_column": "created_time", "sort_order": "D"}
    assert "line_items" not in first["invoices"][0]
    pages = [zoho("/invoices", per_page=60, page=p).json() for p in (1, 2, 3, 4)]
    assert [len(p["invoices"]) for p in pages] == [60, 60, 30, 0]
    assert [p["page_context"]["has_more_page"] for p in pages] == [True, True, False, False]
    exact = [zoho("/invoices", per_page=50, page=p).json()["page_context"]["has_more_page"] for p in (1, 2, 3)]
    assert exact == [True, True, False]  # 150 = 3 x 50: the last full page says so
    ids = [i["invoice_id"] for p in pages for i in p["invoices"]]
    assert len(set(ids)) == 150 and set(ids) == set(sandbox.zoho.invoices)
    assert zoho("/invoices", per_page=500).json()["page_context"]["per_page"] == 200
    one = zoho(f"/invoices/{ids[0]}").json()
    assert one["code"] == 0 and one["invoice"]["invoice_id"] == ids[0] and one["invoice"]["line_items"]
    missing = zoho("/invoices/123")
    assert missing.status_code == 404 and missing.json()["code"] == 1002
    assert zoho("/estimates").json() == {"code": 5, "message": "Invalid URL Passed"}


def test_last_modified_time_filter_and_sort(sandbox, zoho):
    stamps = sorted(_t(i["last_modified_time"]) for i in sandbox.zoho.invoices.values())
    cutoff = stamps[100]
    expected = {i["invoice_id"] for i in sandbox.zoho.invoices.values() if _t(i["last_modified_time"]) >= cutoff}
    for text in (cutoff.strftime("%Y-%m-%dT%H:%M:%S%z"), cutoff.isoformat()):  # +0200 and +02:00 forms
        rows = _all(zoho, "/invoices", "invoices", last_modified_time=text, sort_column="last_modified_time",
                    sort_order="D", per_page=7)
        assert {r["invoice_id"] for r in rows} == expected
        times = [_t(r["last_modified_time"]) for r in rows]
        assert times == sorted(times, reverse=True) and times[-1] == cutoff
    asc = zoho("/invoices", sort_column="last_modified_time", sort_order="A").json()
    times = [_t(r["last_modified_time"]) for r in asc["invoices"]]
    assert times == sorted(times) and asc["page_context"]["sort_order"] == "A"
    by_date = [r["date"] for r in zoho("/invoices", sort_column="date", sort_order="A").json()["invoices"]]
    assert by_date == sorted(by_date)
    assert zoho("/invoices", last_modified_time="yesterday").status_code == 400
    assert zoho("/invoices", sort_column="colour").status_code == 400


def test_date_status_and_customer_filters(sandbox, zoho):
    invoices = sandbox.zoho.invoices.values()
    rows = _all(zoho, "/invoices", "invoices", date_start="2025-05-01", date_end="2025-05-31")
    expected = {i["invoice_id"] for i in invoices if i["date"].startswith("2025-05")}
    assert expected and {r["invoice_id"] for r in rows} == expected
    overdue = zoho("/invoices", status="overdue").json()
    assert overdue["invoices"] and {r["status"] for r in overdue["invoices"]} == {"overdue"}
    assert overdue["page_context"]["applied_filter"] == "Status.OverDue"
    assert len(zoho("/invoices", filter_by="Status.PartiallyPaid").json()["invoices"]) == sum(
        i["status"] == "partially_paid" for i in invoices)
    unpaid = {r["status"] for r in zoho("/invoices", status="unpaid").json()["invoices"]}
    assert unpaid <= {"sent", "viewed", "overdue", "partially_paid"} and "overdue" in unpaid
    customer = next(iter(sandbox.zoho.contacts))
    mine = zoho("/invoices", customer_id=customer).json()["invoices"]
    assert len(mine) == 5 and {r["customer_id"] for r in mine} == {customer}
    assert zoho("/invoices", status="lost").status_code == 400
    assert zoho("/invoices", date_start="31/05/2025").status_code == 400
    notes = zoho("/creditnotes").json()
    assert len(notes["creditnotes"]) == 3 and notes["page_context"]["report_name"] == "Credit Notes"


# -- Zoho Invoice API: changes ---------------------------------------------------------------------


def test_pay_invoice_bumps_last_modified_time(sandbox, zoho):
    sim = sandbox.zoho
    latest = max(_t(i["last_modified_time"]) for i in sim.invoices.values())
    target = next(i for i in sim.invoices.values() if i["status"] == "overdue")
    partial = sim.pay_invoice(target["invoice_id"], amount=1)
    assert partial["status"] == "partially_paid" and partial["payment_made"] == 1.0
    assert partial["balance"] == round(partial["total"] - 1, 2) and partial["last_payment_date"] == "2025-06-30"
    assert _t(partial["last_modified_time"]) > latest and ZOHO_TIME.fullmatch(partial["last_modified_time"])
    top = zoho("/invoices", sort_column="last_modified_time", sort_order="D", per_page=1).json()["invoices"][0]
    assert top["invoice_id"] == target["invoice_id"]
    changed = zoho("/invoices", last_modified_time=partial["last_modified_time"]).json()["invoices"]
    assert [r["invoice_id"] for r in changed] == [target["invoice_id"]]
    full = sim.pay_invoice(target["invoice_id"], on=date(2025, 6, 29))
    assert full["status"] == "paid" and full["balance"] == 0 and full["last_payment_date"] == "2025-06-29"
    assert _t(full["last_modified_time"]) > _t(partial["last_modified_time"])
    with pytest.raises(ValueError):
        sim.pay_invoice(target["invoice_id"])  # nothing left to pay


def test_set_contact_field_adds_and_changes_the_custom_field(sandbox, zoho):
    sim = sandbox.zoho
    bare = next(c for c in sim.contacts.values() if not c["custom_fields"])
    before = _t(bare["last_modified_time"])
    sim.set_contact_field(bare["contact_id"], "cf_account_id", "ACC-99999")
    served = zoho(f"/contacts/{bare['contact_id']}").json()["contact"]
    field = served["custom_fields"][0]
    other = next(c for c in sim.contacts.values() if c["custom_fields"])["custom_fields"][0]
    assert (field["api_name"], field["value"], field["value_formatted"]) == ("cf_account_id", "ACC-99999", "ACC-99999")
    assert field["customfield_id"] == other["customfield_id"] and field["label"] == "Account ID"
    assert served["custom_field_hash"] == {"cf_account_id": "ACC-99999", "cf_account_id_unformatted": "ACC-99999"}
    assert _t(served["last_modified_time"]) > before
    changed = sim.set_contact_field(bare["contact_id"], "cf_account_id", "ACC-99998")
    assert [f["value"] for f in changed["custom_fields"]] == ["ACC-99998"]
    recent = zoho("/contacts", last_modified_time=changed["last_modified_time"]).json()["contacts"]
    assert [c["contact_id"] for c in recent] == [bare["contact_id"]]
    assert sim.set_contact_field(bare["contact_id"], "cf_account_id", None)["custom_field_hash"] == {}


def test_void_over_http_and_invoice_url_resolves(sandbox, zoho, http):
    sim = sandbox.zoho
    inv = next(i for i in sim.invoices.values() if i["status"] == "sent" and i["date"] <= TODAY.isoformat())
    base = sandbox.system_urls()["zoho"] + "/invoice/v3"
    headers = {"Authorization": zoho("/invoices").request.headers["Authorization"],
               "X-com-zoho-invoice-organizationid": ORG}
    r = http.post(f"{base}/invoices/{inv['invoice_id']}/status/void", headers=headers)
    assert r.status_code == 200 and r.json()["code"] == 0 and sim.invoices[inv["invoice_id"]]["status"] == "void"
    paid = next(i for i in sim.invoices.values() if i["status"] == "paid")
    refused = http.post(f"{base}/invoices/{paid['invoice_id']}/status/void", headers=headers)
    assert refused.status_code == 400 and refused.json()["code"] != 0
    url = zoho(f"/invoices/{paid['invoice_id']}").json()["invoice"]["invoice_url"]
    assert url.startswith(sandbox.system_urls()["zoho"] + "/SecurePayment?CInvoiceID=")
    page = http.get(url)
    assert page.status_code == 200 and paid["invoice_number"] in page.text


# -- Zoho Invoice API: rate limits -----------------------------------------------------------------


def test_daily_limit_answers_429_code_45(sandbox, zoho):
    sandbox.zoho.daily_limit = 3
    assert [zoho("/contacts", per_page=1).status_code for _ in range(3)] == [200, 200, 200]
    r = zoho("/contacts")
    assert r.status_code == 429 and r.json()["code"] == 45 and "per day" in r.json()["message"]
    assert zoho("/invoices").status_code == 429
    sandbox.zoho.reset_daily_limit()
    assert zoho("/contacts", per_page=1).status_code == 200


def test_per_minute_limit_answers_429_code_44_with_retry_after(http):
    now = [1000.0]
    accounts = ZohoAccountsSim(client_id="c", client_secret="s", refresh_token="r")
    sim = ZohoInvoiceSim(accounts=accounts, organization_id=ORG, data=generate_zoho(ZohoDemoSpec(customers=3,
                         today=TODAY)), per_minute_limit=2, monotonic=lambda: now[0])
    host = HttpHost({"/accounts": accounts, "/zoho": sim})
    url = host.start()
    try:
        token = http.post(url + "/accounts/oauth/v2/token", params={
            "client_id": "c", "client_secret": "s", "refresh_token": "r", "grant_type": "refresh_token"}).json()
        headers = {"Authorization": f"Zoho-oauthtoken {token['access_token']}",
                   "X-com-zoho-invoice-organizationid": ORG}
        calls = [http.get(url + "/zoho/invoice/v3/invoices", headers=headers) for _ in range(3)]
        assert [c.status_code for c in calls] == [200, 200, 429]
        assert calls[2].json()["code"] == 44 and int(calls[2].headers["Retry-After"]) == 30
        now[0] += 30  # one call's worth refilled (2 per minute)
        assert http.get(url + "/zoho/invoice/v3/invoices", headers=headers).status_code == 200
        assert http.get(url + "/zoho/invoice/v3/invoices", headers=headers).status_code == 429
    finally:
        host.stop()


# -- CustomerSuccessBox ----------------------------------------------------------------------------


@pytest.fixture
def csb(sandbox, http):
    base = sandbox.system_urls()["csb"]

    def call(method, path, body=None, key=CSB_KEY, headers=None, **kwargs):
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return http.request(method, base + path, json=body, headers={**auth, **(headers or {})}, **kwargs)

    return call


def test_csb_auth_and_validation(csb, sandbox):
    unauthorized = {"status": "error", "message": "Unauthorized"}
    assert csb("POST", "/api/v1_1/account", {"account_id": "a"}, key=None).json() == unauthorized
    r = csb("POST", "/api/v1_1/account", {"account_id": "a"}, key="wrong")
    assert r.status_code == 401 and r.json() == unauthorized
    r = csb("POST", "/api/v1_1/account", {"name": "No id"})
    assert r.status_code == 422 and r.json() == {"status": "error", "message": "account_id is required"}
    r = csb("POST", "/api/v1_1/invoice", {"account_id": "a", "amount": 10})
    assert r.status_code == 422 and "invoice_id" in r.json()["message"]
    r = csb("POST", "/api/v1_1/invoice", {"invoice_id": "i-1", "amount": 10})
    assert r.status_code == 422 and "account_id" in r.json()["message"]
    assert csb("POST", "/api/v1_1/account", {"account_id": " "}).status_code == 422
    assert csb("POST", "/api/v1_1/account", content=b"account_id=a",
               headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert csb("POST", "/api/v1_1/account", [1, 2]).status_code == 400
    assert sandbox.csb.pushes == [] and sandbox.csb.accounts == {}


def test_csb_upsert_merges_properties_and_sandbox_reads(csb, sandbox):
    ok = {"status": "success"}
    assert csb("POST", "/api/v1_1/account", {"account_id": "ACC-1", "name": "Nordlys", "mrr": 100}).json() == ok
    assert csb("POST", "/api/v1_1/account", {"account_id": "ACC-1", "mrr": 120, "overdue_amount": 5.5}).json() == ok
    assert csb("POST", "/api/v1_1/account", {"account_id": "ACC-2", "name": "Atlas"}).status_code == 200
    first_invoice = {"invoice_id": "zoho:1", "account_id": "ACC-1", "status": "open"}
    assert csb("POST", "/api/v1_1/invoice", first_invoice).json() == ok
    assert csb("POST", "/api/v1_1/invoice", {"invoice_id": "zoho:1", "account_id": "ACC-1", "status": "paid",
                                             "paid_date": "2025-06-30"}).status_code == 200
    assert csb("POST", "/api/v1_1/invoice", {"invoice_id": "zoho:2", "subscription_id": "sub-9"}).status_code == 200
    assert csb("POST", "/api/v1_1/user", {"account_id": "ACC-1", "user_id": "a@b.c"}).status_code == 200
    assert csb("POST", "/api/v1_1/subscription", {"account_id": "ACC-1", "subscription_id": "sub-9"}).status_code == 200
    sim = sandbox.csb
    assert sim.accounts["ACC-1"] == {"account_id": "ACC-1", "name": "Nordlys", "mrr": 120, "overdue_amount": 5.5}
    assert sim.invoices["zoho:1"] == {"invoice_id": "zoho:1", "account_id": "ACC-1", "status": "paid",
                                      "paid_date": "2025-06-30"}
    assert sim.pushes == [("account", "ACC-1"), ("account", "ACC-1"), ("account", "ACC-2"), ("invoice", "zoho:1"),
                          ("invoice", "zoho:1"), ("invoice", "zoho:2"), ("user", "a@b.c"), ("subscription", "sub-9")]
    accounts = csb("GET", "/_sandbox/accounts").json()
    assert [a["account_id"] for a in accounts] == ["ACC-1", "ACC-2"] and accounts[0]["mrr"] == 120
    assert [i["invoice_id"] for i in csb("GET", "/_sandbox/invoices").json()] == ["zoho:1", "zoho:2"]
    assert [i["invoice_id"] for i in csb("GET", "/_sandbox/invoices", params={"account_id": "ACC-1"}).json()] == [
        "zoho:1"]
    assert csb("GET", "/_sandbox/accounts", key="wrong").status_code == 401


# -- Sandbox wiring ----------------------------------------------------------------------------------


def test_sandbox_mounts_every_simulator(sandbox, http, zoho, csb):
    urls = sandbox.system_urls()
    assert set(urls) == {"fakturownia", "sugester", "zoho_accounts", "zoho", "csb", "billy", "simply",
                         "zapier"}
    assert urls["zoho_accounts"] == sandbox.url + "/zoho-accounts" and urls["zoho"] == sandbox.url + "/zoho"
    assert urls["csb"] == sandbox.url + "/csb"
    assert zoho("/contacts", per_page=1).status_code == 200
    assert csb("POST", "/api/v1_1/account", {"account_id": "x"}).status_code == 200
    stats = http.get(sandbox.url + "/_sandbox/stats").json()
    assert stats["zoho"]["records"] == {"contacts": 30, "invoices": 150, "creditnotes": 3}
    assert stats["zoho_accounts"]["requests"] == 1 and stats["csb"]["records"]["accounts"] == 1
    assert sandbox.credentials()["zoho_accounts"]["refresh_token"] == REFRESH["refresh_token"]


def test_state_file_round_trips_the_new_simulators(tmp_path):
    # A client per server: HttpHost.stop() leaves keep-alive connections to the old server's handler
    # threads open, and the restarted sandbox comes back on the same port, so a pooled connection
    # would still reach the old simulators.
    http = httpx.Client(timeout=10)
    state = tmp_path / "sandbox.json"
    spec = DemoSpec(clients=2, invoices_per_client=1, today=TODAY)
    with Sandbox(spec=spec, zoho_spec=ZohoDemoSpec(customers=5, today=TODAY), state_file=state) as sb:
        token = _refresh(http, sb).json()["access_token"]
        inv = next(i for i in sb.zoho.invoices.values() if i["status"] == "overdue")
        paid = sb.zoho.pay_invoice(inv["invoice_id"])
        contact = sb.zoho.set_contact_field(next(iter(sb.zoho.contacts)), "cf_account_id", "ACC-77777")
        http.post(sb.system_urls()["csb"] + "/api/v1_1/account", json={"account_id": "ACC-77777", "mrr": 9},
                  headers={"Authorization": f"Bearer {CSB_KEY}"})
        invoice_ids = sorted(sb.zoho.invoices)
    http.close()
    http = httpx.Client(timeout=10)
    # A different Zoho spec proves the file, not the generator, supplies the data.
    with Sandbox(spec=spec, zoho_spec=ZohoDemoSpec(customers=50, seed=1, today=TODAY), state_file=state) as again:
        assert sorted(again.zoho.invoices) == invoice_ids
        assert again.zoho.invoices[paid["invoice_id"]]["status"] == "paid"
        assert again.zoho.contacts[contact["contact_id"]]["custom_field_hash"]["cf_account_id"] == "ACC-77777"
        assert again.csb.accounts == {"ACC-77777": {"account_id": "ACC-77777", "mrr": 9}}
        assert again.csb.pushes == [("account", "ACC-77777")]
        assert again.zoho_accounts.refresh_count == 1
        r = http.get(again.system_urls()["zoho"] + "/invoice/v3/invoices",
                     headers={"Authorization": f"Zoho-oauthtoken {token}", "X-com-zoho-invoice-organizationid": ORG})
        assert r.status_code == 200  # a live access token survives the restart, as on the real service
        newer = again.zoho.pay_invoice(next(i["invoice_id"] for i in again.zoho.invoices.values()
                                            if i["status"] == "overdue"), amount=1)
        assert _t(newer["last_modified_time"]) > _t(contact["last_modified_time"]) > _t(paid["last_modified_time"])
    http.close()


def test_state_file_from_before_zoho_gets_generated_zoho_data(tmp_path):
    state = tmp_path / "old.json"
    spec = DemoSpec(clients=2, invoices_per_client=1, today=TODAY)
    with Sandbox(spec=spec, state_file=state):
        pass
    saved = json.loads(state.read_text())
    for name in ("zoho_accounts", "zoho", "csb"):
        del saved["simulators"][name]
    state.write_text(json.dumps(saved))
    with Sandbox(spec=spec, zoho_spec=ZohoDemoSpec(customers=4, today=TODAY), state_file=state) as sb:
        assert len(sb.zoho.contacts) == 4 and len(sb.zoho.invoices) == 20
        assert len(sb.fakturownia.invoices) == 2

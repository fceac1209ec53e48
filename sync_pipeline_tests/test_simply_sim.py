"""The Simply CRM client against the Simply simulator over real HTTP: login, describe, VTQL paging, `sync`,
validation in vtiger's envelope, padded decimals, session expiry, and the demo data."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest

from sync_pipeline.connectors._http import AuthError, NotFoundError, ValidationError
from sync_pipeline.connectors.simply_crm.client import SimplyClient
from sync_pipeline.sandbox._http_sim import HttpHost
from sync_pipeline.sandbox.simply_demo import ID_PREFIXES, generate_simply
from sync_pipeline.sandbox.simply_sim import SimplySim

KEY = "dK9+simply/Access"


@pytest.fixture
def sim():
    return SimplySim(access_key=KEY, data=generate_simply(7))


@pytest.fixture
def url(sim):
    host = HttpHost({"/simply": sim}, host="127.0.0.1", port=0)
    base = host.start()
    yield f"{base}/simply"
    host.stop()


@pytest.fixture
def client(url):
    with SimplyClient(system="simply", base_url=url, username="admin", access_key=KEY) as client:
        yield client


def query(client: SimplyClient, text: str):
    return client._call("GET", "query", {"query": text})


def test_login_and_describe_give_this_instances_prefixes(client, sim):
    assert client.check_connection() == "logged in as admin (vtiger 7.1.0)"
    assert client.logins == 1 and client.user_id == "19x1"
    for module in ("Accounts", "Contacts", "Products", "Invoice", "Users"):
        assert client.id_prefix(module) == ID_PREFIXES[module]
    fields = {f["name"]: f for f in client.describe("Invoice")["fields"]}
    assert fields["account_id"]["mandatory"] and fields["account_id"]["type"]["refersTo"] == ["Accounts"]
    assert fields["bill_street"]["mandatory"] and not fields["contact_id"]["mandatory"]
    assert "currency_id" in client.field_names("Invoice")


def test_query_pages_across_more_than_100_records(client, sim):
    for i in range(230):
        sim.user_create("Contacts", lastname=f"Bulk{i:03d}", email=f"bulk{i}@example.dk")
    pages = list(client.iter_query_pages("Contacts"))
    assert [len(p) for p in pages] == [100, 100, 35]  # 5 demo contacts + 230
    ids = [r["id"] for p in pages for r in p]
    assert ids == [r["id"] for r in sim.records("Contacts")] and len(set(ids)) == 235
    assert client.pages_requested == 4
    keys = list(client.iter_contact_keys())
    assert [r for p in keys for r in p] == [{"id": i} for i in ids]
    bulk = list(client.iter_query_pages("Contacts", where="lastname LIKE 'bulk1%'", order_by="lastname DESC"))
    assert [r["lastname"] for p in bulk for r in p] == [f"Bulk{i}" for i in range(199, 99, -1)]
    assert query(client, "SELECT count(*) FROM Contacts;") == [{"count": "235"}]
    assert len(query(client, "SELECT id, lastname FROM Contacts LIMIT 500;")) == 100  # LIMIT is capped
    assert len(query(client, "SELECT * FROM Contacts;")) == 100  # and is 100 without one


def test_sync_reads_changes_since_with_deleted_ids(client, sim):
    contacts = sim.records("Contacts")
    sim.tick(), sim.tick()
    since = sim.clock
    edited = sim.user_edit(contacts[0]["id"], email="ny@fjordlys.dk")
    sim.user_delete(contacts[1]["id"])
    added = sim.user_create("Contacts", lastname="Ny")
    pages = list(client.iter_contact_pages(updated_since=since))
    assert [r["id"] for p in pages for r in p] == [edited["id"], added["id"]]
    assert client.deleted_ids["Contacts"] == {contacts[1]["id"]}
    assert pages[0][0]["email"] == "ny@fjordlys.dk"

    for i in range(230):
        sim.user_create("Contacts", lastname=f"Bulk{i}")
    pages = list(client.iter_contact_pages())
    # 100 changes per call, the deletion among them: 4 demo contacts left + 1 added + 230 = 235 records
    assert [len(p) for p in pages] == [99, 100, 36]
    assert client.deleted_ids["Contacts"] == {contacts[1]["id"]}


def test_a_missing_mandatory_field_or_bad_reference_is_a_validation_error_naming_it(client, sim):
    with pytest.raises(ValidationError) as exc:
        client.create("Contacts", {"firstname": "Karen"})
    assert "MANDATORY_FIELDS_MISSING" in str(exc.value) and "lastname" in str(exc.value)
    assert exc.value.field_errors == {"lastname": ["lastname does not have a value"]}
    contact = sim.records("Contacts")[0]["id"]
    with pytest.raises(ValidationError) as exc:  # a contact's id where an organisation belongs
        client.create("Contacts", {"lastname": "Holm", "account_id": contact})
    assert "REFERENCE_INVALID" in str(exc.value) and exc.value.field_errors.keys() == {"account_id"}
    account = sim.records("Accounts")[0]["id"]
    with pytest.raises(ValidationError, match="LineItems"):
        client.create("Invoice", {"subject": "x", "account_id": account, "bill_street": "a", "ship_street": "b"})
    with pytest.raises(ValidationError, match="QUERY_SYNTAX_ERROR"):
        query(client, "SELECT * FROM Contacts")  # no semicolon
    with pytest.raises(NotFoundError):
        client.retrieve("12x999999")
    assert sim.record_counts()["contacts"] == 5


def test_writes_answer_records_with_vtiger_decimals(client, sim):
    product = client.create("Products", {"productname": "Kursusdag", "unit_price": 1000})
    assert product["unit_price"] == "1000.00000000" and product["product_no"].startswith("PRO")
    assert product["id"].startswith("14x") and product["assigned_user_id"] == "19x1"
    revised = client.revise({"id": product["id"], "unit_price": "12.5"})
    assert revised["unit_price"] == "12.50000000" and revised["productname"] == "Kursusdag"
    assert revised["modifiedtime"] > product["modifiedtime"]
    account = sim.records("Accounts")[0]
    invoice = client.create("Invoice", {
        "subject": "Faktura", "account_id": account["id"], "bill_street": "Søndergade 1", "ship_street": "Søndergade 1",
        "invoicestatus": "Sent", "LineItems": [{"productid": product["id"], "quantity": 2, "listprice": "500"}]})
    assert invoice["hdnGrandTotal"] == "1000.00000000" and invoice["currency_id"] == "21x1"
    assert invoice["LineItems"][0]["quantity"] == "2.000" and invoice["invoice_no"].startswith("INV")
    flat = next(r for p in client.iter_invoice_pages(with_lines=False) for r in p if r["id"] == invoice["id"])
    assert "LineItems" not in flat  # sync rows carry no line items
    full = next(r for p in client.iter_invoice_pages() for r in p if r["id"] == invoice["id"])
    assert full["LineItems"] == invoice["LineItems"]
    assert client.retrieve(invoice["id"])["LineItems"][0]["listprice"] == "500.00000000"
    assert client.delete(product["id"]) == {"status": "successful"}
    assert client.find_by("Products", "productname", "Kursusdag") is None


def test_find_by_survives_quotes(client, sim):
    created = sim.user_create("Accounts", accountname="O'Brien & Søn A/S")
    assert client.find_by("Accounts", "accountname", "o'brien & søn a/s")["id"] == created["id"]


def test_expired_sessions_are_renewed_once(client, sim):
    assert client.check_connection()
    sim.expire_sessions()
    assert len(list(client.iter_account_pages())) == 1
    assert client.logins == 2


def test_a_wrong_access_key_is_an_auth_error_without_the_key(url, sim):
    wrong = "wr0ng/Key+" + KEY
    with (SimplyClient(system="simply", base_url=url, username="admin", access_key=wrong) as client,
          pytest.raises(AuthError) as exc):
        client.check_connection()
    text = str(exc.value)
    assert "INVALID_USER_CREDENTIALS" in text and "check the username and access key" in text
    assert wrong not in text and wrong not in repr(vars(exc.value)) and client.logins == 0
    assert len([r for r in sim.requests() if r.method == "POST"]) == 2  # one fresh challenge, then it gives up


def test_the_wire_speaks_vtiger(url, sim):
    with httpx.Client(base_url=url) as http:
        assert http.get("/webservice.php", params={"operation": "listtypes"}).json() == {
            "success": False, "error": {"code": "INVALID_SESSIONID", "message": "Session Identifier provided is Invalid"}}
        token = http.get("/webservice.php", params={"operation": "getchallenge", "username": "admin"}).json()
        token = token["result"]["token"]
        sim.clock += timedelta(minutes=6)  # the challenge lives 5 minutes
        answer = http.post("/webservice.php", data={"operation": "login", "username": "admin",
                                                    "accessKey": hashlib.md5((token + KEY).encode()).hexdigest()})
        assert answer.status_code == 200 and answer.json()["error"]["code"] == "INVALID_AUTH_TOKEN"
        assert http.get("/webservice.php", params={"operation": "nope"}).json()["error"]["code"] == "UNKNOWN_OPERATION"


def test_snapshot_and_restore_keep_records_numbers_and_deletions(client, sim):
    victim = sim.records("Contacts")[0]["id"]
    sim.user_delete(victim)
    state = sim.snapshot()
    again = SimplySim(access_key=KEY)
    again.restore(state)
    assert again.record_counts() == sim.record_counts()
    assert again.records("Invoice") == sim.records("Invoice")
    created = again.user_create("Contacts", lastname="Ny")
    assert created["contact_no"] == "CON6" and created["id"] == sim.user_create("Contacts", lastname="Ny")["id"]
    assert again.deleted_log == sim.deleted_log[:1]


def test_demo_data_is_deterministic_and_consistent():
    data = generate_simply(3)
    assert data == generate_simply(3) and data != generate_simply(4)
    sim = SimplySim(access_key=KEY, data=data)
    assert sim.record_counts() == {"organisations": 4, "contacts": 5, "products": 4, "invoices": 4,
                                   "credit_notes": 1}
    accounts = {a["id"] for a in data.accounts}
    assert sum(1 for c in data.contacts if c["account_id"] in accounts) == 3
    assert sum(1 for c in data.contacts if c["account_id"] == "") == 2
    contacts = {c["id"]: c for c in data.contacts}
    products = {p["id"] for p in data.products}
    for invoice in data.invoices:
        assert contacts[invoice["contact_id"]]["account_id"] == invoice["account_id"]
        assert 1 <= len(invoice["LineItems"]) <= 3 and {l["productid"] for l in invoice["LineItems"]} <= products
        assert invoice["invoicestatus"] in ("Created", "Approved", "Sent", "Paid", "Credit Invoice")
    assert all(a["accountname"].endswith("A/S") and a["bill_country"] == "Denmark" for a in data.accounts)

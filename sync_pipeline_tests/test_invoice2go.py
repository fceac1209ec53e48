"""Clients and products into Invoice2go through a Zapier catch hook (issue 12), over real HTTP against the sandbox's
hook simulator and the Invoice2go account behind it: each record is sent once; the plan's quota holds the rest
until the next period; 429 and 5xx are retried; a gone hook (410) stops only its own connection, saying why."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
import yaml

from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline_tests.conftest import F_TOKEN, S_TOKEN, TODAY

B_TOKEN = "test-billy-token"
HOOK_SECRET = "1000001/i2gclients"  # the part of the hook URL that is the secret


@pytest.fixture
def sandbox():
    with Sandbox(spec=DemoSpec(seed=7, clients=6, invoices_per_client=1, months=2, today=TODAY),
                 fakturownia_token=F_TOKEN, sugester_token=S_TOKEN, billy_token=B_TOKEN) as sb:
        yield sb


def config(tmp_path, url, *, quota=None, send_updates=False, extra_connection=False):
    quick = {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05, "total_budget": 5}
    doc = {
        "warehouse": {"path": str(tmp_path / "warehouse.duckdb")},
        "systems": {
            "billy": {"type": "billy", "base_url": f"{url}/billy/v2", "access_token": "${SYNC_TEST_B:-" + B_TOKEN + "}",
                      "retry": quick},
            "fakturownia": {"type": "fakturownia", "base_url": f"{url}/fakturownia",
                            "api_token": "${SYNC_TEST_F:-" + F_TOKEN + "}", "retry": quick},
            "invoice2go": {"type": "invoice2go_zapier", "base_url": f"{url}/zapier",
                           "clients_hook_url": "${SYNC_TEST_I2G_C:-hooks/catch/1000001/i2gclients/}",
                           "products_hook_url": "${SYNC_TEST_I2G_P:-hooks/catch/1000001/i2gproducts/}",
                           "retry": quick, **({"quota": quota} if quota else {})},
            "sugester": {"type": "sugester", "base_url": f"{url}/sugester", "api_token": "${SYNC_TEST_S:-" + S_TOKEN + "}",
                         "retry": quick},
        },
        "connections": {"billy_to_invoice2go": {"source": "billy", "target": "invoice2go", "schedule": "manual",
                                                "send_updates": send_updates}},
    }
    if extra_connection:  # another connection of the same run, into another target
        doc["connections"]["fakturownia_to_sugester"] = {"source": "fakturownia", "target": "sugester",
                                                         "schedule": "manual"}
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(path, instance, *, as_of: date = TODAY, connections=None):
    from sync_pipeline_tests.conftest import run_sync

    runs, summary = run_sync(path, instance, as_of=as_of, connections=connections)
    return runs, summary


def counts(summary, entity):
    return summary["connections"]["billy_to_invoice2go"][entity]


def billy_clients(sandbox):
    return [c for c in sandbox.billy.records("contacts")]


def test_every_client_and_product_arrives_once_and_a_second_run_sends_nothing(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url)
    runs, summary = run(path, instance)
    assert all(r.success for r in runs), [r.error for r in runs]
    n, m = len(billy_clients(sandbox)), len(sandbox.billy.records("products"))
    assert (counts(summary, "clients")["created"], counts(summary, "products")["created"]) == (n, m)
    assert sandbox.zapier.record_counts() == {"clients": n, "products": m}
    sent = sandbox.zapier.deliveries("clients")
    assert sorted(d["key"] for d in sent) == sorted(f"billy:{c['id']}" for c in billy_clients(sandbox))
    company = next(c for c in billy_clients(sandbox) if c["type"] == "company")
    doc = next(d for d in sent if d["source_id"] == company["id"])
    assert (doc["kind"], doc["name"], doc["tax_number"], doc["email"]) == (
        "client", company["name"], company["registrationNo"], company["contactPersons"][0]["email"])
    assert doc["billing_address"] == f"{company['street']}, {company['zipcodeText']} {company['cityText']}, DK"
    product = sandbox.billy.records("products")[0]
    pdoc = next(d for d in sandbox.zapier.deliveries("products") if d["source_id"] == product["id"])
    assert (pdoc["name"], pdoc["code"], float(pdoc["price"]), pdoc["currency"]) == (
        product["name"], product["productNo"], float(product["prices"][0]["unitPrice"]), "DKK")

    # an edit is not sent again (the Zap would create a second client), a new client is
    sandbox.billy.user_edit("contacts", company["id"], phone="+45 11 22 33 44")
    sandbox.billy.user_add("contacts", type="person", name="Sofie Holm", countryId="DK")
    sandbox.zapier.clear_requests()
    runs, summary = run(path, instance)
    assert counts(summary, "clients")["created"] == 1 and counts(summary, "clients")["updated"] == 0
    assert len(sandbox.zapier.requests()) == 1
    sandbox.zapier.clear_requests()
    runs, summary = run(path, instance)
    assert sandbox.zapier.requests() == [] and counts(summary, "clients")["unchanged"] == n + 1


def test_with_send_updates_an_edited_client_is_sent_again(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, send_updates=True)
    run(path, instance)
    company = next(c for c in billy_clients(sandbox) if c["type"] == "company")
    sandbox.billy.user_edit("contacts", company["id"], phone="+45 11 22 33 44")
    sandbox.zapier.clear_requests()
    _, summary = run(path, instance)
    assert counts(summary, "clients")["updated"] == 1
    [again] = [r.json for r in sandbox.zapier.requests()]
    assert again["source_id"] == company["id"] and again["phone"] == "+45 11 22 33 44"
    assert sum(1 for c in sandbox.zapier.account.clients if c["name"] == company["name"]) == 2  # a new one, as said


def test_a_quota_of_k_creates_exactly_k_and_the_rest_wait_for_the_next_period(tmp_path, sandbox, instance):
    k = 4
    sandbox.zapier.account.quota["clients"] = k  # the plan's own limit, as Invoice2go enforces it
    path = config(tmp_path, sandbox.url, quota={"clients": k})
    n = len(billy_clients(sandbox))
    runs, summary = run(path, instance)
    assert all(r.success for r in runs)
    c = counts(summary, "clients")
    assert (c["created"], c["waiting"]) == (k, n - k)
    assert sandbox.zapier.record_counts()["clients"] == k
    assert not [h for h in sandbox.zapier.zap_history if h["status"] == "error"]  # never sent past the quota
    assert counts(summary, "products")["created"] == len(sandbox.billy.records("products"))  # its own quota: none

    sandbox.zapier.clear_requests()  # the same period: nothing more is sent
    _, summary = run(path, instance)
    assert sandbox.zapier.requests() == [] and counts(summary, "clients")["waiting"] == n - k

    sandbox.zapier.account.new_period()  # the next month: the rest go out, up to the quota again
    next_month = (TODAY.replace(day=1) + __import__("datetime").timedelta(days=32)).replace(day=1)
    _, summary = run(path, instance, as_of=next_month)
    c = counts(summary, "clients")
    assert (c["created"], c["waiting"]) == (min(k, n - k), max(n - 2 * k, 0))
    assert sandbox.zapier.record_counts()["clients"] == min(n, 2 * k)
    assert len({d["key"] for d in sandbox.zapier.deliveries("clients")}) == len(sandbox.zapier.deliveries("clients"))


def test_429_and_5xx_from_the_hook_are_retried(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url)
    sandbox.zapier.fail_next(r"i2gclients", "429")
    sandbox.zapier.fail_next(r"i2gclients", "500", times=2)
    runs, summary = run(path, instance)
    assert all(r.success for r in runs)
    n = len(billy_clients(sandbox))
    assert counts(summary, "clients")["created"] == n and sandbox.zapier.record_counts()["clients"] == n
    statuses = [r for r in sandbox.zapier.requests() if "i2gclients" in r.path]
    assert len(statuses) == n + 3  # three refused, each sent again


def test_a_gone_hook_stops_only_its_connection_with_a_clear_message(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, extra_connection=True)
    sandbox.zapier.delete_hook("clients")
    runs, summary = run(path, instance)
    by_name = {r.connection: r for r in runs}
    i2g, other = by_name["billy_to_invoice2go"], by_name["fakturownia_to_sugester"]
    assert not i2g.success and other.success
    assert "the Zapier hook for clients is gone (HTTP 410)" in i2g.error
    assert "turned off or deleted" in i2g.error and "clients_hook_url" in i2g.error
    assert HOOK_SECRET not in i2g.error and "i2gclients" not in i2g.error
    # the first 410 stopped it: only what had already started (write_concurrency 2) went out, no product after it
    tried = len([r for r in sandbox.zapier.requests() if "i2gclients" in r.path])
    assert 1 <= tried < len(billy_clients(sandbox))
    assert not [r for r in sandbox.zapier.requests() if "i2gproducts" in r.path]
    assert sandbox.zapier.record_counts() == {"clients": 0, "products": 0}
    assert len(sandbox.sugester.clients) > 0  # the other connection synced


@pytest.mark.parametrize("source", ["fakturownia", "sugester", "simply", "zoho"])
def test_any_system_with_clients_or_products_can_be_the_source(tmp_path, sandbox, instance, source):
    path = config(tmp_path, sandbox.url)
    doc = yaml.safe_load(path.read_text())
    doc["systems"]["simply"] = {"type": "simply_crm", "base_url": f"{sandbox.url}/simply",
                                "access_key": "${SYNC_TEST_SIMPLY:-sandbox-simply-key}"}
    doc["systems"]["zoho"] = {"type": "zoho_invoice", "base_url": f"{sandbox.url}/zoho/invoice/v3",
                              "accounts_url": f"{sandbox.url}/zoho-accounts", "organization_id": "20240001",
                              "client_id": "sandbox-zoho-client",
                              "client_secret": "${SYNC_TEST_ZS:-sandbox-zoho-secret}",
                              "refresh_token": "${SYNC_TEST_ZR:-sandbox-zoho-refresh}"}
    doc["connections"] = {f"{source}_to_invoice2go": {"source": source, "target": "invoice2go", "schedule": "manual"}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if source == "sugester":
        sandbox.sugester.user_add_client(name="Kwiaciarnia Róża", email="roza@kwiaty.example", city="Kraków")
    clients = {"fakturownia": lambda: list(sandbox.fakturownia.clients.values()),
               "sugester": lambda: list(sandbox.sugester.clients.values()),
               "simply": lambda: sandbox.simply.records("Accounts") + sandbox.simply.records("Contacts"),
               "zoho": lambda: list(sandbox.zoho.contacts.values())}[source]()
    products = {"fakturownia": lambda: list(sandbox.fakturownia.products.values()), "sugester": lambda: [],
                "zoho": lambda: [],
                "simply": lambda: sandbox.simply.records("Products")}[source]()
    runs, summary = run(path, instance)
    assert all(r.success for r in runs), [r.error for r in runs]
    entry = summary["connections"][f"{source}_to_invoice2go"]
    assert (entry["clients"]["created"], entry["products"]["created"]) == (len(clients), len(products))
    assert sandbox.zapier.record_counts() == {"clients": len(clients), "products": len(products)}
    assert {d["source"] for d in sandbox.zapier.deliveries()} == {source}
    if source == "sugester":  # Sugester's and Zoho's products are not read: said in the run's log, nothing sent
        [doc] = sandbox.zapier.deliveries("clients")
        assert (doc["name"], doc["email"]) == ("Kwiaciarnia Róża", "roza@kwiaty.example")


def test_the_hook_url_is_a_secret_and_never_shown(tmp_path, sandbox, instance, monkeypatch):
    from sync_pipeline.config import ConfigError, load_settings

    path = config(tmp_path, sandbox.url)
    text = path.read_text().replace("${SYNC_TEST_I2G_C:-hooks/catch/1000001/i2gclients/}",
                                    "https://hooks.zapier.com/hooks/catch/1000001/i2gclients/")
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert "write secrets as ${ENV_VAR} references" in str(e.value) and "i2gclients" not in str(e.value)

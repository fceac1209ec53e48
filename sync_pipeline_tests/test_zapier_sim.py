"""The Zapier catch-hook simulator over real HTTP: hook answers, the Zap creating Invoice2go records, the plan
quota, gone and unknown hooks, one-shot faults, and snapshot/restore."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from sync_pipeline.sandbox._http_sim import HttpHost
from sync_pipeline.sandbox.zapier_sim import Invoice2goAccount, QuotaExceeded, ZapierSim

CLIENT = {"kind": "client", "key": "fakturownia:client:17", "source": "fakturownia", "source_id": "17",
          "name": "Nordlys ApS", "email": "finance@nordlys.dk", "phone": "+45 20 11 22 33",
          "contact_name": "Mette Lund", "billing_address": "Havnegade 12, 5000 Odense C, Denmark",
          "tax_number": "DK31245678", "notes": "Pays by bank transfer"}
PRODUCT = {"kind": "product", "key": "fakturownia:product:5", "source": "fakturownia", "source_id": "5",
           "name": "Consulting hour", "code": "CONS-1", "description": "Senior consultant", "price": "950.00",
           "currency": "DKK"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def sim():
    return ZapierSim(account=Invoice2goAccount(quota={"clients": 2}))


@pytest.fixture
def http(sim):
    host = HttpHost({"/zapier": sim}, host="127.0.0.1", port=0)
    base = host.start()
    with httpx.Client(base_url=f"{base}/zapier", timeout=10) as client:
        yield client
    host.stop()


def client_n(n: int) -> dict:
    return CLIENT | {"key": f"fakturownia:client:{n}", "source_id": str(n), "name": f"Client {n}"}


def test_client_payload_creates_one_invoice2go_client(sim, http):
    answer = http.post(sim.hook_path("clients"), json=CLIENT)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "success" and set(body) == {"attempt", "id", "request_id", "status"}
    assert all(UUID.fullmatch(body[k]) for k in ("attempt", "id", "request_id"))
    [record] = sim.account.clients
    assert record["id"] == "cli_000001" and record["created_at"].endswith("Z")
    assert {k: v for k, v in record.items() if k not in ("id", "created_at")} == {
        k: CLIENT[k] for k in ("name", "email", "phone", "contact_name", "billing_address", "tax_number", "notes")}
    assert sim.record_counts() == {"clients": 1, "products": 0}
    assert sim.deliveries("clients") == [CLIENT] and sim.deliveries("products") == []
    [run] = sim.zap_history
    assert run["status"] == "success" and run["record_id"] == "cli_000001" and run["hook"] == "1000001/i2gclients"


def test_product_payload_creates_a_product_and_form_bodies_work(sim, http):
    assert http.post(sim.hook_path("products"), json=PRODUCT).json()["status"] == "success"
    [record] = sim.account.products
    assert record["id"] == "prd_000001"
    assert {k: record[k] for k in ("name", "code", "description", "price")} == {
        k: PRODUCT[k] for k in ("name", "code", "description", "price")}
    assert "currency" not in record and "source_id" not in record  # the Zap maps only Invoice2go's fields
    # Zapier takes form-encoded bodies too, and the path without its trailing slash.
    answer = http.post(sim.hook_path("products").rstrip("/"), data={"kind": "product", "name": "Travel", "price": "1"})
    assert answer.status_code == 200
    assert sim.account.products[1] | {"created_at": None} == {"id": "prd_000002", "name": "Travel", "price": "1",
                                                             "created_at": None}


def test_quota_reached_answers_200_but_the_zap_task_fails_until_a_new_period(sim, http):
    for n in (1, 2):
        assert http.post(sim.hook_path("clients"), json=client_n(n)).status_code == 200
    third = http.post(sim.hook_path("clients"), json=client_n(3))
    assert third.status_code == 200 and third.json()["status"] == "success"  # the failure shows only in the Zap
    assert sim.record_counts()["clients"] == 2
    failed = sim.zap_history[-1]
    assert failed["status"] == "error" and failed["record_id"] is None
    assert failed["message"] == "Invoice2go plan limit reached: 2 clients this period"
    assert failed["payload"]["name"] == "Client 3" and len(sim.deliveries("clients")) == 3
    with pytest.raises(QuotaExceeded):
        sim.account.create("clients", {"name": "Direct"})
    assert http.post(sim.hook_path("products"), json=PRODUCT).status_code == 200  # products: unlimited
    sim.account.new_period()
    http.post(sim.hook_path("clients"), json=client_n(3))
    assert sim.zap_history[-1]["status"] == "success" and sim.account.clients[-1]["id"] == "cli_000003"


def test_missing_name_is_a_zap_task_error(sim, http):
    assert http.post(sim.hook_path("clients"), json=CLIENT | {"name": "  "}).status_code == 200
    assert sim.record_counts()["clients"] == 0
    assert sim.zap_history[-1]["status"] == "error" and "Client name" in sim.zap_history[-1]["message"]


def test_deleted_hook_answers_410_and_creates_nothing(sim, http):
    sim.delete_hook("clients")
    answer = http.post(sim.hook_path("clients"), json=CLIENT)
    assert answer.status_code == 410
    assert answer.json()["status"] == "error" and "turned off or deleted" in answer.json()["message"]
    assert sim.record_counts()["clients"] == 0 and sim.zap_history == []
    sim.restore_hook("clients")
    assert http.post(sim.hook_path("clients"), json=CLIENT).status_code == 200


def test_unknown_hook_and_bad_bodies(sim, http):
    answer = http.post("/hooks/catch/1000001/nosuchhook/", json=CLIENT)
    assert answer.status_code == 404 and answer.json()["status"] == "error"
    assert http.post(sim.hook_path("clients"), json=[CLIENT]).status_code == 400
    bad = http.post(sim.hook_path("clients"), content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["status"] == "error"
    assert sim.zap_history == []


def test_fail_next_429_then_200(sim, http):
    sim.fail_next(r"^/hooks/catch/", "429")
    first = http.post(sim.hook_path("clients"), json=CLIENT)
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert sim.record_counts()["clients"] == 0
    assert http.post(sim.hook_path("clients"), json=CLIENT).status_code == 200
    assert sim.record_counts()["clients"] == 1
    sim.fail_next(r"^/hooks/catch/", "500")
    assert http.post(sim.hook_path("clients"), json=client_n(2)).status_code == 500


def test_snapshot_restore_round_trip(sim, http):
    http.post(sim.hook_path("clients"), json=CLIENT)
    http.post(sim.hook_path("products"), json=PRODUCT)
    sim.delete_hook("products")
    state = json.loads(json.dumps(sim.snapshot()))  # JSON-ready
    http.post(sim.hook_path("clients"), json=client_n(2))
    http.post(sim.hook_path("clients"), json=client_n(3))  # over the quota of 2: a task error
    sim.restore_hook("products")

    fresh = ZapierSim()
    fresh.restore(state)
    sim.restore(state)
    for s in (sim, fresh):
        assert s.record_counts() == {"clients": 1, "products": 1}
        assert s.account.created_in_period == {"clients": 1, "products": 1} and s.account.quota["clients"] == 2
        assert len(s.zap_history) == 2 and s.snapshot() == state
    assert http.post(sim.hook_path("products"), json=PRODUCT).status_code == 410  # the hook state came back
    http.post(sim.hook_path("clients"), json=client_n(2))
    assert sim.account.clients[-1]["id"] == "cli_000002"  # ids go on from the snapshot

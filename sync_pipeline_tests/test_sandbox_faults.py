"""Fault injection in the sandbox simulators, seen over real HTTP; the `sandbox` CLI arguments."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import date

import httpx
import pytest

from sync_pipeline.cli import build_parser
from sync_pipeline.config import ConfigError, load_settings
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.faults import SIMULATOR_NAMES, FaultPlan, parse_fault_specs
from sync_pipeline.sandbox.server import Sandbox, sandbox_from_args
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec

TODAY = date(2026, 11, 20)
FT = "sandbox-token/demo"
ST = "sandbox-sugester-token/demo"
ORG = "20240001"
REFRESH = {"client_id": "sandbox-zoho-client", "client_secret": "sandbox-zoho-secret",
           "refresh_token": "sandbox-zoho-refresh", "grant_type": "refresh_token"}
# What a client sees when the connection is reset under it (the exact class depends on timing).
RESET_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox():
    with Sandbox(spec=DemoSpec(clients=3, invoices_per_client=2, today=TODAY),
                 zoho_spec=ZohoDemoSpec(customers=5, invoices_per_customer=1, today=TODAY)) as sb:
        yield sb


@pytest.fixture
def http():
    with httpx.Client(timeout=10) as client:
        yield client


def _fak(sandbox, http, path="/clients.json", **params):
    return http.get(sandbox.system_urls()["fakturownia"] + path, params={"api_token": FT, **params})


def _sug_post(sandbox, http, name):
    return http.post(sandbox.system_urls()["sugester"] + "/app/clients.json",
                     json={"api_token": ST, "client": {"name": name}})


def _outcome(call):
    """One request as a client sees it: the exception class, or (status, content type, parses as JSON)."""
    try:
        r = call()
    except httpx.TransportError as exc:
        return type(exc).__name__
    try:
        json.loads(r.text)
        parses = True
    except ValueError:
        parses = False
    return r.status_code, r.headers.get("content-type", "").split(";")[0], parses


# -- the plan itself --------------------------------------------------------------------------------


def test_parse_and_from_mapping_build_the_same_plan():
    plan = FaultPlan.parse("server_error=0.1, rate_limit=0.1,reset=0.05,ghost_write=0.02,seed=3")
    assert plan == FaultPlan(server_error=0.1, rate_limit=0.1, reset=0.05, ghost_write=0.02, seed=3)
    assert FaultPlan.from_mapping({"server_error": "0.1", "rate_limit": 0.1, "reset": 0.05, "ghost_write": 0.02,
                                   "seed": "3"}) == plan
    assert FaultPlan.from_mapping(plan.to_dict()) == plan
    assert FaultPlan.parse("") == FaultPlan() and not FaultPlan().active
    assert (FaultPlan().retry_after, FaultPlan().slow_seconds) == (1, 35.0)  # slow outlasts a 30 s client timeout


@pytest.mark.parametrize("spec, message", [
    ("server_errors=0.1", "unknown fault kind 'server_errors'"),
    ("reset=1.5", "reset: a share must be a number from 0 to 1"),
    ("reset=-0.1", "reset: a share must be a number from 0 to 1"),
    ("html=lots", "html: must be a number"),
    ("seed=1.5", "seed: must be a whole number"),
    ("server_error=0.5,rate_limit=0.3,reset=0.2,html=0.1", "must add up to at most 1"),
    ("server_error", "expected name=value pairs"),
    ("reset=0.1,reset=0.2", "reset is given twice"),
])
def test_bad_specs_are_refused_with_clear_messages(spec, message):
    with pytest.raises(ValueError, match=message) as caught:
        FaultPlan.parse(spec)
    assert "lots" not in str(caught.value)  # a value is never echoed


def test_answer_faults_may_add_up_to_more_than_1():
    FaultPlan(truncated=1, slow=1, empty_page=1, ghost_write=1, server_error=0.5, html=0.5)


def test_fault_specs_per_simulator_merge_and_validate_names():
    plans = parse_fault_specs(["*:server_error=0.1", "sugester:ghost_write=0.02", "sugester:seed=4",
                               "reset=0.05"])
    assert plans == {"*": FaultPlan(server_error=0.1, reset=0.05),
                     "sugester": FaultPlan(ghost_write=0.02, seed=4)}
    with pytest.raises(ValueError, match="unknown simulator"):
        parse_fault_specs(["xero:reset=0.1"])


def test_every_simulator_name_is_known_to_the_plans(sandbox):
    assert tuple(sandbox.simulators) == SIMULATOR_NAMES


# -- each kind, as a client sees it -----------------------------------------------------------------


def test_server_error_answers_5xx_in_the_vendor_shape_without_processing(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(server_error=1, seed=1), "sugester": FaultPlan(server_error=1)})
    seen = set()
    for _ in range(16):
        r = _fak(sandbox, http)
        if r.headers["content-type"].startswith("text/html"):
            assert r.status_code == 502 and "nginx" in r.text
            seen.add("html 502")
        else:
            assert r.status_code in (500, 502, 503) and r.json()["code"] == "error"
            seen.add(r.status_code)
    assert seen == {500, 502, 503, "html 502"}
    assert sandbox.fakturownia.faults_injected == Counter(server_error=16)
    assert _sug_post(sandbox, http, "Nigdy zapisany").status_code >= 500
    assert sandbox.sugester.clients == {}  # refused before processing


def test_rate_limit_answers_429_with_retry_after_and_zoho_code_44(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(rate_limit=1, retry_after=3), "zoho": FaultPlan(rate_limit=1)})
    r = _fak(sandbox, http)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3" and r.json()["code"] == "error"
    token = http.post(sandbox.system_urls()["zoho_accounts"] + "/oauth/v2/token", params=REFRESH).json()
    r = http.get(sandbox.system_urls()["zoho"] + "/invoice/v3/contacts",
                 headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}",
                          "X-com-zoho-invoice-organizationid": ORG})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["code"] == 44 and "per minute" in r.json()["message"]


def test_reset_drops_the_connection_without_processing(sandbox, http):
    sandbox.set_faults({"sugester": FaultPlan(reset=1)})
    with pytest.raises(RESET_ERRORS):
        http.get(sandbox.system_urls()["sugester"] + "/app/clients.json", params={"api_token": ST})
    with pytest.raises(RESET_ERRORS):
        _sug_post(sandbox, http, "Nigdy zapisany")
    assert sandbox.sugester.clients == {} and sandbox.sugester.faults_injected == Counter(reset=2)
    sandbox.set_faults(None)  # the pooled client recovers on a new connection
    assert _sug_post(sandbox, http, "Zapisany").status_code == 201


def test_slow_answers_late_without_holding_the_simulator(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(slow=1, slow_seconds=0.6)})
    url = sandbox.system_urls()["fakturownia"] + "/clients.json"
    timed_out = []

    def impatient():
        try:
            httpx.get(url, params={"api_token": FT}, timeout=0.2)
        except httpx.ReadTimeout:
            timed_out.append(True)

    waiting = threading.Thread(target=impatient)
    waiting.start()
    deadline = time.monotonic() + 10
    while not sandbox.fakturownia.faults_injected["slow"]:  # wait until the slow answer is being held back
        assert time.monotonic() < deadline, "the slow fault was never drawn"
        time.sleep(0.01)
    start = time.monotonic()
    sandbox.fakturownia.set_faults(None)  # takes the simulator's lock: not held by the waiting answer
    assert _fak(sandbox, http).status_code == 200 and time.monotonic() - start < 0.3
    waiting.join()
    assert timed_out == [True]

    sandbox.fakturownia.set_faults(FaultPlan(slow=1, slow_seconds=0.3))
    start = time.monotonic()
    r = _fak(sandbox, http)  # a patient client gets the real answer, late
    assert r.status_code == 200 and len(r.json()) == 3 and time.monotonic() - start >= 0.3


def test_truncated_cuts_a_processed_json_answer_in_half(sandbox, http):
    sandbox.set_faults({"sugester": FaultPlan(truncated=1)})
    r = _sug_post(sandbox, http, "Zapisany mimo to")
    assert r.status_code == 201 and r.text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert [c["name"] for c in sandbox.sugester.clients.values()] == ["Zapisany mimo to"]


def test_html_answers_an_nginx_502_or_a_maintenance_page(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(html=1, seed=2)})
    seen = set()
    for _ in range(10):
        r = _fak(sandbox, http)
        assert r.headers["content-type"].startswith("text/html")
        seen.add(r.status_code)
        assert ("nginx" in r.text) if r.status_code == 502 else ("Przerwa techniczna" in r.text)
    assert seen == {200, 502}


def test_empty_page_empties_list_pages_from_the_second_on(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(empty_page=1), "sugester": FaultPlan(empty_page=1),
                        "zoho": FaultPlan(empty_page=1)})
    assert len(_fak(sandbox, http, "/invoices.json", per_page=2, page=1).json()) == 2  # page 1 is never emptied
    assert _fak(sandbox, http, "/invoices.json", per_page=2, page=2).json() == []
    assert _fak(sandbox, http, "/invoices/" + str(min(sandbox.fakturownia.invoices)) + ".json").json()["id"]

    sandbox.sugester.set_faults(None)
    for name in ("A", "B", "C"):
        _sug_post(sandbox, http, name)
    sandbox.sugester.set_faults(FaultPlan(empty_page=1))
    sug = sandbox.system_urls()["sugester"] + "/app/clients.json"
    assert http.get(sug, params={"api_token": ST, "per_page": 1, "page": 2}).json() == []

    token = http.post(sandbox.system_urls()["zoho_accounts"] + "/oauth/v2/token", params=REFRESH).json()
    r = http.get(sandbox.system_urls()["zoho"] + "/invoice/v3/contacts", params={"per_page": 2, "page": 2},
                 headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}",
                          "X-com-zoho-invoice-organizationid": ORG})
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0 and body["contacts"] == []
    assert body["page_context"]["page"] == 2 and body["page_context"]["has_more_page"] is True
    assert sandbox.fakturownia.faults_injected == Counter(empty_page=1)
    assert sandbox.zoho.faults_injected == Counter(empty_page=1)


def test_ghost_write_stores_the_record_and_loses_the_answer(sandbox, http):
    sandbox.set_faults({"sugester": FaultPlan(ghost_write=1, seed=3)})
    outcomes = []
    for n in range(8):
        outcome = _outcome(lambda n=n: _sug_post(sandbox, http, f"Klient {n}"))
        outcomes.append("reset" if isinstance(outcome, str) else outcome[0])
    assert set(outcomes) == {"reset", 500}  # both ways of losing the answer, and nothing else
    assert sorted(c["name"] for c in sandbox.sugester.clients.values()) == [f"Klient {n}" for n in range(8)]
    # Reads and refused writes are not ghost writes.
    url = sandbox.system_urls()["sugester"] + "/app/clients.json"
    assert http.get(url, params={"api_token": ST}).status_code == 200
    r = http.post(url, json={"api_token": ST, "client": {}})
    assert r.status_code == 422
    assert sandbox.sugester.faults_injected == Counter(ghost_write=8)


# -- determinism, shares, precedence ----------------------------------------------------------------

_MIXED = dict(server_error=0.2, rate_limit=0.1, reset=0.1, html=0.1, truncated=0.2)


def _sequence(sandbox, http, seed, n=40):
    sandbox.fakturownia.set_faults(FaultPlan(**_MIXED, seed=seed))  # also restarts the seeded sequence
    return [_outcome(lambda: _fak(sandbox, http)) for _ in range(n)]


def test_same_seed_and_requests_give_the_same_faults(sandbox, http):
    first = _sequence(sandbox, http, seed=5)
    assert _sequence(sandbox, http, seed=5) == first
    assert _sequence(sandbox, http, seed=6) != first
    with Sandbox(spec=DemoSpec(clients=3, invoices_per_client=2, today=TODAY),
                 zoho_spec=ZohoDemoSpec(customers=1, today=TODAY)) as other:
        assert _sequence(other, http, seed=5) == first  # another sandbox, same plan: same faults


def test_shares_are_respected_over_500_requests(sandbox, http):
    plan = FaultPlan(server_error=0.1, rate_limit=0.1, reset=0.05, html=0.05, truncated=0.1, seed=11)
    sandbox.set_faults({"*": plan})
    outcomes = Counter(_outcome(lambda: _fak(sandbox, http)) for _ in range(500))
    injected = sandbox.fakturownia.faults_injected
    for kind in ("server_error", "rate_limit", "reset", "html"):
        assert abs(injected[kind] / 500 - getattr(plan, kind)) < 0.04, (kind, injected)
    # Answer faults apply to the requests no refusal hit: 0.1 of the remaining 0.7.
    assert abs(injected["truncated"] / 500 - 0.07) < 0.04, injected
    clean = outcomes[(200, "application/json", True)]
    assert clean == 500 - sum(injected.values())
    assert sum(n for o, n in outcomes.items() if isinstance(o, str)) == injected["reset"]
    assert sum(n for o, n in outcomes.items() if not isinstance(o, str) and o[0] == 429) == injected["rate_limit"]
    stats = http.get(sandbox.url + "/_sandbox/stats").json()
    assert stats["fakturownia"]["faults_injected"] == dict(injected)


def test_fail_next_takes_precedence_over_the_plan(sandbox, http):
    sandbox.set_faults({"fakturownia": FaultPlan(server_error=1)})
    sandbox.fakturownia.fail_next(r"/clients\.json", "429")
    r = _fak(sandbox, http)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert _fak(sandbox, http).status_code in (500, 502, 503)
    assert sandbox.fakturownia.faults_injected == Counter(server_error=1)  # one-shot faults are not counted


# -- run-time control over HTTP ---------------------------------------------------------------------


def test_http_control_changes_the_plans_at_run_time(sandbox, http):
    control = sandbox.url + "/_sandbox/faults"
    assert http.get(control).json() == {}
    r = http.post(control, json={"*": {"server_error": 1}, "sugester": {"reset": 1, "seed": 9}})
    assert r.status_code == 200 and r.json()["sugester"]["seed"] == 9 and r.json()["*"]["server_error"] == 1
    assert http.get(control).json() == r.json()
    assert sandbox.zoho.fault_plan == FaultPlan(server_error=1)  # "*" reaches the simulators without a plan
    assert _fak(sandbox, http).status_code in (500, 502, 503)
    with pytest.raises(RESET_ERRORS):
        _sug_post(sandbox, http, "x")
    assert http.get(sandbox.url + "/_sandbox/health").json() == {"ok": True}  # the meta endpoints never fail

    bad = http.post(control, json={"sugester": {"resett": 0.5}})
    assert bad.status_code == 422 and "unknown fault kind" in bad.json()["message"]
    assert http.post(control, json={"xero": {}}).status_code == 422
    assert http.post(control, json=[1]).status_code == 400
    assert sandbox.sugester.fault_plan == FaultPlan(reset=1, seed=9)  # a refused change changes nothing

    assert http.post(control, json={}).json() == {}
    assert _fak(sandbox, http).status_code == 200 and _sug_post(sandbox, http, "y").status_code == 201


# -- configuration ----------------------------------------------------------------------------------


def _sandbox_config(tmp_path, faults: str):
    path = tmp_path / "sync.yaml"
    path.write_text(textwrap.dedent(f"""\
        warehouse:
          path: {tmp_path / 'warehouse.duckdb'}
        sandbox:
          clients: 2
          invoices_per_client: 1
          malformed_invoices: 0
          state_file: null
          faults: {faults}
        systems:
          fakturownia:
            type: fakturownia
            base_url: ${{SYNC_SANDBOX_URL}}/fakturownia
            api_token: ${{FAKTUROWNIA_API_TOKEN:-{FT}}}
          sugester:
            type: sugester
            base_url: ${{SYNC_SANDBOX_URL}}/sugester
            api_token: ${{SUGESTER_API_TOKEN:-{ST}}}
        connections:
          fakturownia_to_sugester: {{source: fakturownia, target: sugester}}
        """))
    return path


def test_sync_yaml_faults_reach_the_simulators(tmp_path, monkeypatch, http):
    from sync_pipeline.cli.local import sandbox_if_configured

    monkeypatch.delenv("SYNC_SANDBOX_URL", raising=False)
    path = _sandbox_config(tmp_path, "{'*': {server_error: 1, seed: 2}, sugester: {ghost_write: 0.5, seed: 3}}")
    with sandbox_if_configured(path) as sb:
        assert sb.fakturownia.fault_plan == FaultPlan(server_error=1, seed=2)
        assert sb.csb.fault_plan == FaultPlan(server_error=1, seed=2)
        assert sb.sugester.fault_plan == FaultPlan(ghost_write=0.5, seed=3)
        assert _fak(sb, http).status_code in (500, 502, 503)
    plain = load_settings(_sandbox_config(tmp_path, "{}"), env={"SYNC_SANDBOX_URL": "http://127.0.0.1"})
    assert plain.sandbox.faults == {}  # the default: no faults


@pytest.mark.parametrize("faults, message", [
    ("{sugester: {servr_error: 0.1}}", "sandbox.faults.sugester: unknown fault kind"),
    ("{sugester: {reset: 7.25}}", "sandbox.faults.sugester: reset: a share must be a number from 0 to 1"),
    ("{sugester: {reset: s3cr3t-7.25}}", "sandbox.faults.sugester: reset: must be a number"),
    ("{xero: {reset: 0.1}}", "sandbox.faults.xero.[key]: unknown simulator"),
])
def test_sync_yaml_fault_errors_name_the_key_not_the_value(tmp_path, faults, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(_sandbox_config(tmp_path, faults), env={"SYNC_SANDBOX_URL": "http://127.0.0.1"})
    assert message in str(caught.value) and "7.25" not in str(caught.value)


# -- command line (the reported defect: `sync-pipeline sandbox --port 8123` was rejected) ------------


def test_cli_sandbox_accepts_its_documented_arguments():
    port = _free_port()
    args = build_parser().parse_args(["sandbox", "--port", str(port), "--clients", "2", "--invoices-per-client", "1",
                                      "--today", "2026-11-20", "--faults", "*:server_error=0.1",
                                      "--faults", "sugester:ghost_write=0.02,seed=4"])
    assert (args.port, args.clients, args.today) == (port, 2, TODAY)
    with sandbox_from_args(args) as sb:  # the arguments reach the sandbox
        assert sb.url == f"http://127.0.0.1:{port}" and len(sb.fakturownia.clients) == 2
        assert sb.fakturownia.fault_plan == FaultPlan(server_error=0.1)
        assert sb.sugester.fault_plan == FaultPlan(ghost_write=0.02, seed=4)


def test_cli_sandbox_rejects_a_bad_fault_spec(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "--faults", "sugester:nope=0.1"])
    assert "argument --faults: sugester: unknown fault kind 'nope'" in capsys.readouterr().err


def test_cli_sandbox_serves_on_the_given_port():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sync_pipeline.cli", "sandbox", "--port", str(port),
                             "--clients", "2", "--invoices-per-client", "1", "--faults", "fakturownia:reset=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == f"Sandbox running at http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/_sandbox/health").json() == {"ok": True}
        with pytest.raises(RESET_ERRORS):
            httpx.get(f"http://127.0.0.1:{port}/fakturownia/clients.json", params={"api_token": FT})
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err

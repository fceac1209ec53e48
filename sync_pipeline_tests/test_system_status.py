"""Connection status per configured system (issue 11): each client's `check_connection` on MockTransport, then over
real HTTP against the sandbox: green for the shipped configuration, red with a reason that names the setting and
never the secret, in `check_systems`, in the `connection` asset checks run by Dagster, and in `sync-pipeline status`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from sync_pipeline.config import load_settings
from sync_pipeline.connectors._http import AuthError, BadResponseError, NotFoundError
from sync_pipeline.connectors.customersuccessbox.client import CustomerSuccessBoxClient
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.connectors.zoho_invoice.client import TokenRefreshError, ZohoInvoiceClient
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec
from sync_pipeline.system_status import check_system, check_systems
from sync_pipeline_tests.conftest import TODAY, shipped_config
from sync_pipeline_tests.test_http import FakeTime, MaxJitter, Server

# wrong secrets the sandbox does not accept; a prefix no legitimate text holds, a "/" that JSON may escape
WRONG_F = "SENTINEL-wrong-fk-31c7/demo"
WRONG_S = "SENTINEL-wrong-sg-8e02/demo"
SECRET_VARS = ("FAKTUROWNIA_API_TOKEN", "SUGESTER_API_TOKEN", "ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET",
               "ZOHO_REFRESH_TOKEN", "CSB_API_KEY", "BILLY_ACCESS_TOKEN", "SIMPLY_ACCESS_KEY")
QUICK = {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02, "total_budget": 2}


# --- the clients' check_connection on MockTransport ---------------------------------------------------------------


def _kw(server: Server) -> dict:
    time_ = FakeTime()
    return {"transport": server.transport, "sleep": time_.sleep, "clock": time_.clock, "rng": MaxJitter()}


def test_fakturownia_reads_its_account_and_names_it():
    server = Server(httpx.Response(200, json={"prefix": "acme", "name": "Acme", "api_token": "abc/acme"}))
    client = FakturowniaClient(system="fakturownia", base_url="https://acme.fakturownia.pl", api_token="t0k/acme",
                               **_kw(server))
    assert client.check_connection() == "account acme: reachable, token accepted"
    (request,) = server.requests
    assert request.method == "GET" and request.url.path == "/account.json"
    assert request.url.params["api_token"] == "t0k/acme"
    with pytest.raises(BadResponseError):
        FakturowniaClient(system="fakturownia", base_url="https://acme.fakturownia.pl", api_token="t0k/acme",
                          **_kw(Server(httpx.Response(200, json=[1])))).check_connection()


def test_sugester_reads_one_client_at_most():
    server = Server(httpx.Response(200, json=[{"id": 1, "name": "A"}]))
    client = SugesterClient(system="sugester", base_url="https://acme.sugester.pl", api_token="t0k/acme",
                            **_kw(server))
    assert "token accepted" in client.check_connection()
    (request,) = server.requests
    assert request.url.path == "/app/clients.json" and request.url.params["per_page"] == "1"
    with pytest.raises(AuthError):
        SugesterClient(system="sugester", base_url="https://acme.sugester.pl", api_token="t0k/acme",
                       **_kw(Server(httpx.Response(401, json={"code": "error"})))).check_connection()


@pytest.mark.parametrize("status, ok", [(422, True), (400, True), (200, True), (401, False), (403, False)])
def test_customersuccessbox_pushes_an_account_without_id_that_must_be_refused(status, ok):
    server = Server(httpx.Response(status, json={"status": "error", "message": "account_id is required"}))
    client = CustomerSuccessBoxClient(system="csb", base_url="https://acme.customersuccessbox.com",
                                      api_key="k3y", **_kw(server))
    if ok:
        assert "API key accepted" in client.check_connection()
    else:
        with pytest.raises(AuthError):
            client.check_connection()
    request = server.requests[0]
    assert request.method == "POST" and request.url.path == "/api/v1_1/account" and json.loads(request.content) == {}


def _zoho(handler) -> ZohoInvoiceClient:
    def transport(request: httpx.Request) -> httpx.Response:
        if request.url.host == "accounts.zoho.eu":
            return httpx.Response(200, json={"access_token": "1000.acc.ess", "expires_in": 3600})
        return handler(request)

    time_ = FakeTime()
    return ZohoInvoiceClient.from_credentials(
        system="zoho", api_url="https://www.zohoapis.eu/invoice/v3", accounts_url="https://accounts.zoho.eu",
        organization_id="777", client_id="cid", client_secret="s3cret", refresh_token="r3fresh",
        transport=httpx.MockTransport(transport), sleep=time_.sleep, clock=time_.clock, rng=MaxJitter())


def test_zoho_names_the_organisation_and_refuses_one_the_token_does_not_see():
    orgs = {"code": 0, "message": "success", "organizations": [{"organization_id": "777", "name": "Acme GmbH"}]}
    assert _zoho(lambda r: httpx.Response(200, json=orgs)).check_connection() == \
        "organization Acme GmbH (777): reachable, token accepted"
    other = {"code": 0, "message": "success", "organizations": [{"organization_id": "1", "name": "Other"}]}
    with pytest.raises(NotFoundError, match="organization_id 777 is not an organization of this token"):
        _zoho(lambda r: httpx.Response(200, json=other)).check_connection()


def test_zoho_without_the_settings_scope_proves_the_token_with_one_contact():
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/organizations"):
            return httpx.Response(401, json={"code": 57, "message": "You are not authorized"})
        assert request.url.params["per_page"] == "1"
        return httpx.Response(200, json={"code": 0, "contacts": [], "page_context": {"has_more_page": False}})

    assert "organization 777: reachable, token accepted (contacts readable" in _zoho(api).check_connection()


def test_zoho_refused_refresh_is_an_auth_error():
    time_ = FakeTime()
    client = ZohoInvoiceClient.from_credentials(
        system="zoho", api_url="https://www.zohoapis.eu/invoice/v3", accounts_url="https://accounts.zoho.eu",
        organization_id="777", client_id="cid", client_secret="s3cret", refresh_token="r3fresh",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"error": "invalid_code"})),
        sleep=time_.sleep, clock=time_.clock, rng=MaxJitter())
    with pytest.raises(TokenRefreshError):
        client.check_connection()


# --- against the sandbox over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    with Sandbox(spec=DemoSpec(seed=5, clients=3, invoices_per_client=1, months=2, today=TODAY),
                 zoho_spec=ZohoDemoSpec(customers=3, invoices_per_customer=1, months=2, today=TODAY)) as sb:
        for sim in sb.simulators.values():
            sim.echo_requests = True  # error answers quote the request back: a token in them must be redacted
        yield sb


@pytest.fixture(autouse=True)
def _sandbox_secrets(monkeypatch):
    for var in SECRET_VARS:  # the shipped references' defaults are the sandbox's own credentials
        monkeypatch.delenv(var, raising=False)


def _config(tmp_path: Path, url: str, **systems) -> Path:
    """The shipped configuration's two original connections and their four systems, at the sandbox."""
    path = shipped_config(tmp_path, url, systems={"*": {"retry": QUICK}, **systems})
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["connections"] = {k: doc["connections"][k] for k in ("fakturownia_to_sugester", "zoho_to_customersuccessbox")}
    doc["systems"] = {k: doc["systems"][k] for k in ("fakturownia", "sugester", "zoho", "customersuccessbox")}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:  # bound then closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _by_system(statuses) -> dict:
    return {s.system: s for s in statuses}


def test_every_system_of_the_shipped_configuration_is_green(tmp_path, sandbox):
    path = shipped_config(tmp_path, sandbox.url)
    settings = load_settings(path, strict=False)
    statuses = check_systems(settings)
    assert [s.system for s in statuses] == list(settings.systems)
    red = {s.system: s.detail for s in statuses if not s.ok}
    assert not red, red
    status = _by_system(statuses)
    assert status["fakturownia"].detail == "account demo: reachable, token accepted"
    assert status["zoho"].detail.startswith("organization ") and "(20240001)" in status["zoho"].detail
    assert "nothing written" in status["customersuccessbox"].detail
    assert sandbox.csb.record_counts() == {"accounts": 0, "users": 0, "subscriptions": 0, "invoices": 0}
    assert all(0 <= s.seconds < 5 and s.error is None for s in statuses)


def test_wrong_tokens_are_red_naming_the_setting_never_the_token(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("FAKTUROWNIA_API_TOKEN", WRONG_F)
    monkeypatch.setenv("SUGESTER_API_TOKEN", WRONG_S)
    status = _by_system(check_systems(load_settings(_config(tmp_path, sandbox.url), strict=False)))
    f, s = status["fakturownia"], status["sugester"]
    assert not f.ok and not s.ok and status["zoho"].ok and status["customersuccessbox"].ok
    assert f.detail == ("the Fakturownia API rejected the credentials (HTTP 401 on GET /account.json): "
                        "check api_token (FAKTUROWNIA_API_TOKEN)")
    assert s.detail == ("the Sugester API rejected the credentials (HTTP 401 on GET /app/clients.json): "
                        "check api_token (SUGESTER_API_TOKEN)")
    # the sandbox quoted the request (the token in its query) back in its answer: nothing of it is shown
    assert sandbox.fakturownia.request_count("GET", r"/account\.json") >= 1
    for st in (f, s):
        text = json.dumps(st.as_dict())
        assert "SENTINEL" not in text and "sentinel" not in text.lower()


def test_an_unreachable_base_url_is_red_with_could_not_reach(tmp_path, sandbox):
    port = _free_port()
    path = _config(tmp_path, sandbox.url, sugester={"base_url": f"http://127.0.0.1:{port}/sugester"})
    status = _by_system(check_systems(load_settings(path, strict=False)))
    s = status["sugester"]
    assert not s.ok and s.detail.startswith(f"could not reach 127.0.0.1:{port} (the Sugester API, connection failed)")
    assert "check base_url" in s.detail and "Connection refused" in (s.error or "")
    assert s.seconds < 5 and status["fakturownia"].ok


def test_an_unset_secret_is_red_with_its_variable_and_the_others_are_checked(tmp_path, sandbox):
    path = _config(tmp_path, sandbox.url, sugester={"api_token": "${SYNC_TEST_UNSET_SUGESTER_TOKEN}"},
                   zoho={"accounts_url": "${SYNC_TEST_UNSET_ZOHO_URL}/zoho-accounts"})
    calls = []

    def factory(cfg):  # the secret is never resolved, so no client is built for those systems
        from sync_pipeline.connectors.registry import build_client

        calls.append(cfg.name)
        return build_client(cfg)

    status = _by_system(check_systems(load_settings(path, strict=False), client_factory=factory))
    assert status["sugester"].detail == ("secret SYNC_TEST_UNSET_SUGESTER_TOKEN is not set (systems.sugester.api_token): "
                                         "export it where the pipeline runs")
    assert status["zoho"].detail.startswith("environment variable SYNC_TEST_UNSET_ZOHO_URL is not set "
                                            "(systems.zoho.accounts_url)")
    assert status["fakturownia"].ok and status["customersuccessbox"].ok
    assert sorted(calls) == ["customersuccessbox", "fakturownia"]


def test_a_system_whose_client_fails_unexpectedly_is_red_without_the_secret(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("FAKTUROWNIA_API_TOKEN", WRONG_F)
    settings = load_settings(_config(tmp_path, sandbox.url), strict=False)

    class Broken:
        def check_connection(self):
            raise RuntimeError(f"boom with {WRONG_F} inside")

        def close(self):
            pass

        def redact(self, text):
            return text  # a client that forgot: the status still scrubs the secret

    s = check_system(settings, "fakturownia", lambda cfg: Broken())
    assert not s.ok and s.detail == "unexpected RuntimeError while checking the Fakturownia API"
    assert WRONG_F not in (s.error or "") and "boom with ***" in s.error


# --- Dagster: the connection checks --------------------------------------------------------------------------------


def test_the_status_job_records_green_and_red_checks_without_the_secret(tmp_path, sandbox, monkeypatch):
    from sync_pipeline.defs.build import build_definitions

    monkeypatch.setenv("SUGESTER_API_TOKEN", WRONG_S)
    defs = build_definitions(_config(tmp_path, sandbox.url))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("system_status_job").execute_in_process(instance=instance)
        assert result.success  # a red light is a check result, not a failed run
        evaluations = {e.asset_key.path[0]: e for e in result.get_asset_check_evaluations()}
        assert {k: e.passed for k, e in evaluations.items()} == {
            "fakturownia": True, "sugester": False, "zoho": True, "customersuccessbox": True}
        red = evaluations["sugester"]
        assert red.check_name == "connection" and red.severity == dg.AssetCheckSeverity.ERROR
        assert red.description.startswith("the Sugester API rejected the credentials")
        assert "check api_token (SUGESTER_API_TOKEN)" in red.metadata["detail"].value
        assert {"system", "type", "detail", "seconds", "checked_at", "error"} <= set(red.metadata)
        assert evaluations["fakturownia"].metadata["detail"].value == "account demo: reachable, token accepted"
        # what the UI shows: the latest execution of each check, and the run's whole event log
        key = dg.AssetCheckKey(dg.AssetKey(["sugester", "api"]), "connection")
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert latest.status.value == "FAILED"
        logs = json.dumps([e.to_json() if hasattr(e, "to_json") else repr(e)
                           for e in instance.all_logs(result.run_id)])
        assert "SENTINEL" not in logs and "check api_token (SUGESTER_API_TOKEN)" in logs


def test_one_check_can_run_alone(tmp_path, sandbox):
    from sync_pipeline.defs.build import build_definitions

    defs = build_definitions(_config(tmp_path, sandbox.url))
    key = dg.AssetCheckKey(dg.AssetKey(["zoho", "api"]), "connection")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_check_selection={key},
                                                                   asset_selection=set())
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.asset_key == key.asset_key and evaluation.passed
    assert sandbox.fakturownia.request_count("GET", r"/account\.json") == 0


# --- the CLI -------------------------------------------------------------------------------------------------------


def _cli(capsys, monkeypatch, tmp_path, *args) -> tuple[int, str]:
    from sync_pipeline.cli.entry import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    code = main(["status", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_status_prints_a_line_per_system_and_json(tmp_path, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("SUGESTER_API_TOKEN", WRONG_S)
    config = str(_config(tmp_path, sandbox.url))
    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", config)
    assert code == 0, text  # a report: red lights do not fail it (see --check)
    lines = text.splitlines()
    start = lines.index("systems (live check: one authenticated call each)")
    systems = {line.split()[0]: line for line in lines[start + 1:] if line.startswith("  ") and line.split()[0]
               in ("fakturownia", "sugester", "zoho", "customersuccessbox")}
    assert "● OK" in systems["fakturownia"] and "account demo: reachable, token accepted (" in systems["fakturownia"]
    assert "✗ FAILED" in systems["sugester"]
    assert "the Sugester API rejected the credentials (HTTP 401 on GET /app/clients.json): check api_token " \
           "(SUGESTER_API_TOKEN)" in systems["sugester"]
    assert all("● OK" in systems[n] for n in ("fakturownia", "zoho", "customersuccessbox"))
    assert "fakturownia_to_sugester (fakturownia → sugester" in text and "never run" in text
    assert "SENTINEL" not in text

    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", config, "--json")
    assert code == 0 and "SENTINEL" not in text
    report = json.loads(text[text.index("{"):])
    assert [c["connection"] for c in report["connections"]] == ["fakturownia_to_sugester",
                                                                "zoho_to_customersuccessbox"]
    assert {s["system"]: s["ok"] for s in report["systems"]} == {
        "fakturownia": True, "sugester": False, "zoho": True, "customersuccessbox": True}
    red = next(s for s in report["systems"] if s["system"] == "sugester")
    assert red["type"] == "sugester" and "SUGESTER_API_TOKEN" in red["detail"] and red["checked_at"]

    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", config, "--check")
    assert code == 1 and "✗ FAILED" in text
    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", config, "--no-systems", "--check")
    assert code == 0 and "systems (" not in text
    monkeypatch.delenv("SUGESTER_API_TOKEN")
    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", config, "--check")
    assert code == 0 and "✗" not in text


def test_status_serves_the_sandbox_of_a_sandbox_configuration_without_saving_its_state(tmp_path, monkeypatch,
                                                                                      capsys):
    from sync_pipeline_tests.conftest import REPO

    monkeypatch.delenv("SYNC_SANDBOX_URL", raising=False)
    doc = yaml.safe_load((REPO / "sync.yaml").read_text(encoding="utf-8"))
    doc["systems"] = {k: doc["systems"][k] for k in ("fakturownia", "sugester", "zoho", "customersuccessbox")}
    doc["connections"] = {k: doc["connections"][k] for k in ("fakturownia_to_sugester", "zoho_to_customersuccessbox")}
    doc["sandbox"].update(clients=3, invoices_per_client=1, months=2, state_file="state.json")
    doc["warehouse"]["path"] = "warehouse.duckdb"
    doc["metrics"]["fx_rates_csv"] = str(REPO / "sync_pipeline" / "sandbox" / "fx_rates.csv")
    config = tmp_path / "sync.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    code, text = _cli(capsys, monkeypatch, tmp_path, "--config", str(config), "--check")
    assert code == 0, text
    assert text.count("● OK") == 4
    assert not (tmp_path / "state.json").exists()


def test_a_wrong_billy_token_or_simply_access_key_is_red_with_a_clear_reason_and_no_secret(tmp_path, sandbox,
                                                                                           monkeypatch, capsys):
    from sync_pipeline.cli.entry import main

    monkeypatch.setenv("BILLY_ACCESS_TOKEN", "SENTINEL-wrong-billy-77")
    monkeypatch.setenv("SIMPLY_ACCESS_KEY", "SENTINEL-wrong-simply-42")
    path = shipped_config(tmp_path, sandbox.url)
    status = _by_system(check_systems(load_settings(path, strict=False)))
    b, s = status["billy"], status["simply"]
    assert not b.ok and not s.ok and status["fakturownia"].ok and status["sugester"].ok
    assert b.detail.startswith("the Billy API rejected the credentials (HTTP 401") and \
        b.detail.endswith("check access_token (BILLY_ACCESS_TOKEN)"), b.detail
    assert s.detail == ("the Simply CRM API rejected the credentials (POST /webservice.php): check access_key "
                        "(SIMPLY_ACCESS_KEY)"), s.detail
    assert "INVALID_USER_CREDENTIALS" in s.error  # vtiger's own code and message, in the check's `error`
    for st in (b, s):
        assert "SENTINEL" not in json.dumps(st.as_dict()).upper()
    # the same in `sync-pipeline status`, with --check failing
    monkeypatch.setenv("SYNC_SANDBOX_URL", sandbox.url)
    code = main(["status", "--config", str(path), "--check"])
    out = capsys.readouterr()
    assert code == 1 and "SENTINEL" not in (out.out + out.err).upper()
    assert any(line.split()[:3] == ["billy", "✗", "FAILED"] for line in out.out.splitlines()), out.out
    assert any(line.split()[:3] == ["simply", "✗", "FAILED"] for line in out.out.splitlines()), out.out

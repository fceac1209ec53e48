"""Secret audit (issue 7): every connector runs with sentinel secrets through successes and failures, against
servers that quote the whole request back in their errors with JSON escaping ("/" as "\\/"). Then the
console, the compute logs, the Dagster instance storage, DuckDB, the exception texts and the run metadata
shown in the UI are searched: zero occurrences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.ref import InstanceRef

from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec
from sync_pipeline_tests.conftest import TODAY, shipped_config

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
# Each holds "/" (escaped as "\/" by the echoing servers) and a prefix no legitimate text contains: any
# encoding of the whole secret (URL, JSON, escaped) still contains the prefix verbatim.
SECRETS = {
    "FAKTUROWNIA_API_TOKEN": "SENTINEL-fk-7f3a9/demo",
    "SUGESTER_API_TOKEN": "SENTINEL-sg-91bc2/demo",
    "ZOHO_CLIENT_SECRET": "SENTINEL-zs-55e17/secret",
    "ZOHO_REFRESH_TOKEN": "SENTINEL-zr-08d24/refresh",
    "CSB_API_KEY": "SENTINEL-csb-c4a71/key",
}


def needle(secret: str) -> str:
    return secret.split("/")[0]


def config(tmp_path: Path, url: str) -> Path:
    """The shipped configuration: its secrets are `${ENV}` references, set to the sentinels below."""
    retry = {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.02, "total_budget": 5}
    return shipped_config(tmp_path, url, systems={"*": {"retry": retry}},
                          connections={"*": {"error_budget": 50}})


def test_no_secret_reaches_console_logs_instance_storage_duckdb_errors_or_metadata(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    issued: list[str] = []  # Zoho access tokens handed out during the audit: secrets learnt at run time
    outputs: list[tuple[str, str]] = []
    with Sandbox(spec=DemoSpec(seed=3, clients=10, invoices_per_client=4, months=10, today=TODAY),
                 zoho_spec=ZohoDemoSpec(customers=10, invoices_per_customer=3, today=TODAY), malformed_invoices=3,
                 fakturownia_token=SECRETS["FAKTUROWNIA_API_TOKEN"], sugester_token=SECRETS["SUGESTER_API_TOKEN"],
                 zoho_client_secret=SECRETS["ZOHO_CLIENT_SECRET"], zoho_refresh_token=SECRETS["ZOHO_REFRESH_TOKEN"],
                 csb_api_key=SECRETS["CSB_API_KEY"]) as sandbox:
        for sim in sandbox.simulators.values():
            sim.echo_requests = True
        issue = sandbox.zoho_accounts.issue_access_token
        sandbox.zoho_accounts.issue_access_token = lambda: issued.append(issue()) or issued[-1]
        cfg = config(tmp_path, sandbox.url)

        def cli(*args: str, ok: bool | None = None) -> None:
            env = {**os.environ, **SECRETS, "DAGSTER_HOME": str(home)}
            env.pop("SYNC_SANDBOX_URL", None)
            proc = subprocess.run([sys.executable, "-m", "sync_pipeline.cli", *args, "--config", str(cfg)],
                                  env=env, capture_output=True, text=True, timeout=300)
            outputs.append((" ".join(args), proc.stdout + proc.stderr))
            if ok is not None:
                assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr

        as_of = ("--as-of", TODAY.isoformat())
        # 1. Everything succeeds.
        cli("run", *as_of, ok=True)
        # 2. Record failures whose messages quote the request: 422s from Sugester, 500s from CSB, a ghost write.
        sim = sandbox.fakturownia
        for invoice_id in [i for i, inv in sim.invoices.items() if inv["status"] in ("issued", "sent")][:4]:
            sim.pay_invoice(invoice_id)
        zoho_open = [i for i, inv in sandbox.zoho.invoices.items() if inv["status"] in ("sent", "overdue")][:4]
        for invoice_id in zoho_open:
            sandbox.zoho.pay_invoice(invoice_id)
        sandbox.sugester.fail_next(r"/app/deals/\d+\.json", "422", times=2, method="PUT")
        sandbox.sugester.fail_next(r"/app/clients/\d+\.json", "ghost_500", times=1, method="PUT")
        sandbox.csb.fail_next(r"/api/v1_1/invoice", "500", times=10, method="POST")
        cli("run", "--verbose", *as_of)
        # 3. Systemic failures: a rotated Fakturownia token (401 quoting the query), a revoked Zoho refresh
        #    token (an error body quoting the refresh request), an expired access token (401 quoting the header).
        sandbox.fakturownia.api_token = "rotated-elsewhere"
        sandbox.zoho_accounts.revoke_refresh_token()
        cli("run", "--json", *as_of, ok=False)
        cli("run", "--verbose", *as_of, ok=False)
        sandbox.fakturownia.api_token = SECRETS["FAKTUROWNIA_API_TOKEN"]
        sandbox.zoho_accounts.revoked = False
        sandbox.zoho_accounts.expire_access_tokens()
        sandbox.csb.fail_next(r"/api/v1_1/account", "html_200", times=3, method="POST")
        cli("run", "--dry-run", *as_of)
        cli("run", *as_of)
        for command in (("status",), ("status", "--json"), ("accounts", "--json"), ("unmatched",)):
            cli(*command)

    needles = {name: needle(value) for name, value in SECRETS.items()}
    needles.update({f"zoho access token {i}": token.split(".")[1] for i, token in enumerate(issued)})
    assert issued and len(outputs) == 10
    found: dict[str, list[str]] = {}

    def search(place: str, text: str) -> None:
        for name, n in needles.items():
            if n in text:
                found.setdefault(place, []).append(name)

    # The console of every command.
    for command, text in outputs:
        search(f"console of `{command}`", text)
    # Every file of the Dagster instance: run and event storage (SQLite), compute logs, schedules.
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.suffix in (".out", ".err", ".complete") for p in files)
    for path in files:
        search(f"instance file {path.relative_to(home)}", path.read_bytes().decode("latin-1"))
    # The run metadata and errors the UI shows, through the instance's own API.
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        records = instance.get_run_records()
        assert len(records) >= 12
        for record in records:
            run = record.dagster_run
            search(f"run {run.run_id[:8]} tags/config", json.dumps([run.tags, run.run_config], default=str))
            for entry in instance.all_logs(run.run_id):
                search(f"run {run.run_id[:8]} event log", json.dumps(entry.to_json()) if hasattr(entry, "to_json")
                       else repr(entry))
    # Every text in DuckDB.
    db = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    columns = db.execute("""SELECT table_schema, table_name, column_name FROM information_schema.columns
                            WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE '%[]'""").fetchall()
    assert len(columns) > 50
    for schema, table, column in columns:
        for name, n in needles.items():
            (hits,) = db.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE CAST("{column}" AS VARCHAR) '
                                 "LIKE ?", [f"%{n}%"]).fetchone()
            if hits:
                found.setdefault(f"duckdb {schema}.{table}.{column}", []).append(name)
    (failed,) = db.execute("SELECT count(*) FROM sync.log WHERE action IN ('fail', 'unknown')").fetchone()
    (quoted,) = db.execute("SELECT count(*) FROM sync.log WHERE message LIKE '%***%'").fetchone()
    db.close()
    assert found == {}
    # The failures really did quote the secrets back: the audit saw them where they were redacted.
    assert failed > 0 and quoted > 0
    assert any("***" in text for _, text in outputs)

"""Shared fixtures: a small sandbox on a free port, a sync.yaml pointing at it, a run helper."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 20)
F_TOKEN = "sandbox-token/demo"
S_TOKEN = "sandbox-sugester-token/demo"


def secret_ref(value: str, var: str) -> str:
    """sync.yaml takes secrets only as ${ENV_VAR} references: a test's token becomes the reference's default."""
    return value if value.startswith("${") else f"${{{var}:-{value}}}"


def write_config(tmp_path: Path, sandbox_url: str, *, deal_kinds=("vat", "vat_margin", "advance", "final", "receipt"),
                 schedule="every_3_hours", fakturownia_token=F_TOKEN, extra_system="", history_start="2025-06-01",
                 identifier="source_id", metric_fields: dict | None = None) -> Path:
    kinds = ", ".join(deal_kinds)
    fields = "{" + ", ".join(f"{k}: {v}" for k, v in (metric_fields or {}).items()) + "}"
    text = textwrap.dedent(f"""\
        warehouse:
          path: {tmp_path / 'warehouse.duckdb'}
        metrics:
          reporting_currency: PLN
          fx_rates: {{EUR: 4.25, USD: 4.00}}
        systems:
          fakturownia:
            type: fakturownia
            base_url: {sandbox_url}/fakturownia
            api_token: {secret_ref(fakturownia_token, "SYNC_TEST_FAKTUROWNIA_TOKEN")}
            identifier: {identifier}
            reread_lag: 1h
            retry: {{max_attempts: 3, base_delay: 0.01, max_delay: 0.05, total_budget: 5}}
          sugester:
            type: sugester
            base_url: {sandbox_url}/sugester
            api_token: {secret_ref(S_TOKEN, "SYNC_TEST_SUGESTER_TOKEN")}
            retry: {{max_attempts: 3, base_delay: 0.01, max_delay: 0.05, total_budget: 5}}
        {extra_system}
        connections:
          fakturownia_to_sugester:
            source: fakturownia
            target: sugester
            schedule: {schedule}
            deal_kinds: [{kinds}]
            history_start: {history_start}
            metric_fields: {fields}
        """)
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    return path


def shipped_config(tmp_path: Path, url: str, *, systems: dict | None = None,
                   connections: dict | None = None) -> Path:
    """The shipped sync.yaml (every connection; secrets as `${ENV:-sandbox default}`) without its sandbox
    block, pointed at the sandbox at `url`; `systems` / `connections` override fields per name or for "*"."""
    doc = yaml.safe_load((REPO / "sync.yaml").read_text(encoding="utf-8"))
    doc.pop("sandbox", None)
    doc["warehouse"] = {"path": str(tmp_path / "warehouse.duckdb")}
    doc["metrics"]["fx_rates_csv"] = str(REPO / "sync_pipeline" / "sandbox" / "fx_rates.csv")
    for section, overrides in (("systems", systems or {}), ("connections", connections or {})):
        for name, entry in doc[section].items():
            for key, value in entry.items():
                if isinstance(value, str):
                    entry[key] = value.replace("${SYNC_SANDBOX_URL}", url)
            entry.update({**overrides.get("*", {}), **overrides.get(name, {})})
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def sandbox():
    from sync_pipeline.sandbox.demo_data import DemoSpec
    from sync_pipeline.sandbox.server import Sandbox

    with Sandbox(spec=DemoSpec(seed=7, clients=20, invoices_per_client=15, months=14, today=TODAY),
                 fakturownia_token=F_TOKEN, sugester_token=S_TOKEN) as sb:
        yield sb


@pytest.fixture
def config_path(tmp_path, sandbox) -> Path:
    return write_config(tmp_path, sandbox.url)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def run_sync(config_path: Path, instance, **kwargs):
    """Run the connections once and return (runs, summary)."""
    from sync_pipeline.cli.run import run_connections, summarize

    kwargs.setdefault("as_of", TODAY)
    runs = run_connections(config_path, instance=instance, **kwargs)
    return runs, summarize(runs, config_path)

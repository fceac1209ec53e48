"""The harness's world: one in-process sandbox, a sync.yaml pointing at it, and a Dagster home per child."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from sync_pipeline.cli.local import SANDBOX_URL_VAR
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox

REPO = Path(__file__).resolve().parents[2]
CONNECTIONS = ("fakturownia_to_sugester", "zoho_to_customersuccessbox")


@dataclass
class Workspace:
    root: Path
    sandbox: Sandbox
    warehouse: Path
    config: Path       # CLI trials: the shipped connections and schedules
    dev_config: Path   # dev trials: the same warehouse, the connections on frequent schedules

    def env(self, home: Path) -> dict[str, str]:
        """A child's environment: our sandbox (so it starts none of its own) and its own Dagster home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
        env.update({SANDBOX_URL_VAR: self.sandbox.url, "DAGSTER_HOME": str(home),
                    "SYNC_PIPELINE_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"})
        return env

    def dagster_home(self, name: str) -> Path:
        home = self.root / name
        if not home.exists():
            home.mkdir(parents=True)
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        return home

    def close(self, keep: bool = False) -> None:
        self.sandbox.stop()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def dev_crons(every: int, cron: str | None = None, connections=CONNECTIONS) -> dict[str, str]:
    """The connections' schedules under dagster dev: `cron` for all, else every `every` minutes, one
    minute apart (a scheduled run costs about a minute of the DuckDB pool on a small machine); the
    connections not on trial are `manual`."""
    def cron_of(i: int) -> str:
        if cron:
            return cron
        return "* * * * *" if every <= 1 else f"*/{every} * * * *" if i == 0 else f"{i % every}-59/{every} * * * *"

    return {c: cron_of(i) if c in connections else "manual" for i, c in enumerate(CONNECTIONS)}


def sync_yaml(warehouse: Path, schedules: dict[str, str] | None = None, *, url: str | None = None,
              systems: dict[str, dict] | None = None) -> str:
    """The shipped sync.yaml without its sandbox block: `schedules` per connection, `url` in place of
    ${SYNC_SANDBOX_URL} (else the children's environment gives it), `systems` overrides per system name."""
    shipped = yaml.safe_load((REPO / "sync.yaml").read_text(encoding="utf-8"))
    connections = shipped["connections"]
    if schedules is not None:
        connections = {name: {**conn, "schedule": schedules[name]} for name, conn in connections.items()}
    shipped_systems = {
        name: {k: (v.replace("${SYNC_SANDBOX_URL}", url) if url and isinstance(v, str) else v) for k, v in system.items()}
        | (systems or {}).get(name, {})
        for name, system in shipped["systems"].items()}
    doc = {"warehouse": {"path": str(warehouse)},
           "metrics": {**shipped["metrics"], "fx_rates_csv": str(REPO / "sync_pipeline/sandbox/fx_rates.csv")},
           "systems": shipped_systems, "connections": connections}
    return "# written by bench/reliability: the shipped sync.yaml without its sandbox block\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=None, width=120)


def open_workspace(*, dev_schedules: dict[str, str], clients: int = 15, invoices_per_client: int = 4,
                   malformed: int = 3, seed: int = 42) -> Workspace:
    root = Path(tempfile.mkdtemp(prefix="sync-reliability-"))
    sandbox = Sandbox(spec=DemoSpec(seed=seed, clients=clients, invoices_per_client=invoices_per_client),
                      malformed_invoices=malformed).start()
    warehouse = root / "warehouse.duckdb"
    config = root / "cli" / "sync.yaml"
    dev_config = root / "dev" / "sync.yaml"
    for path, schedules in ((config, None), (dev_config, dev_schedules)):
        path.parent.mkdir(parents=True)
        path.write_text(sync_yaml(warehouse, schedules), encoding="utf-8")
        for name in ("workspace.yaml", "dagster.yaml"):  # `sync-pipeline dev` starts dagster beside the config
            shutil.copyfile(REPO / name, path.parent / name)
    return Workspace(root=root, sandbox=sandbox, warehouse=warehouse, config=config, dev_config=dev_config)

"""Local set-up shared by the CLI commands: the Dagster home and the built-in sandbox."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sync_pipeline.config import Settings, load_settings

SANDBOX_URL_VAR = "SYNC_SANDBOX_URL"


_INITIALIZED = ".sync-pipeline-initialized"


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_dagster_home(project_dir: Path) -> Path:
    """DAGSTER_HOME defaults to var/dagster beside sync.yaml, seeded with the project's dagster.yaml. The
    instance's storage is created here, once, under a file lock: two first-ever commands at once would
    otherwise both create its SQLite tables and one would crash."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_dir / "var" / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if (home / _INITIALIZED).exists():
        return home
    with _exclusive(home / ".sync-pipeline.lock"):
        template = project_dir / "dagster.yaml"
        if template.exists() and not (home / "dagster.yaml").exists():
            shutil.copyfile(template, home / "dagster.yaml")
        if not (home / _INITIALIZED).exists():
            import dagster as dg

            with dg.DagsterInstance.get():  # creates the storage (tables, migrations)
                pass
            (home / _INITIALIZED).touch()
    return home


def _sandbox_settings(config_path: Path) -> Settings | None:
    # Resolve with a placeholder URL: we only need the sandbox block and the tokens to accept.
    settings = load_settings(config_path, env={**os.environ, SANDBOX_URL_VAR: "http://127.0.0.1"}, strict=False)
    return settings if settings.sandbox is not None else None


@contextmanager
def sandbox_if_configured(config_path: Path, *, save_state: bool = True) -> Iterator[object | None]:
    """Serve the simulators for the run when the configuration is a sandbox one and nobody else
    serves them already (SYNC_SANDBOX_URL unset). `save_state=False`: their state file is read but not
    written back (a command that changes nothing must not overwrite what another sandbox saved)."""
    settings = _sandbox_settings(config_path)
    if settings is None or os.environ.get(SANDBOX_URL_VAR):
        yield None
        return
    from sync_pipeline.sandbox.demo_data import DemoSpec
    from sync_pipeline.sandbox.server import Sandbox

    sb = settings.sandbox
    from sync_pipeline.connectors.registry import connector_for

    tokens: dict[str, str] = {}
    for system in settings.systems.values():  # the first system of each vendor sets the credentials it accepts
        for key, value in connector_for(system.type).sandbox_credentials(system).items():
            tokens.setdefault(key, value)
    sandbox = Sandbox(
        spec=DemoSpec(seed=sb.seed, clients=sb.clients, invoices_per_client=sb.invoices_per_client, months=sb.months),
        max_rps=sb.max_rps,
        malformed_invoices=sb.malformed_invoices,
        sugester_clients=sb.sugester_clients,
        state_file=settings.resolve_path(sb.state_file) if sb.state_file else None,
        faults=sb.faults,
        **tokens,
    )
    if not save_state:
        sandbox.state_file = None  # restored from it already; stop() saves only to a state_file
    sandbox.start()
    os.environ[SANDBOX_URL_VAR] = sandbox.url
    try:
        yield sandbox
    finally:
        os.environ.pop(SANDBOX_URL_VAR, None)
        sandbox.stop()

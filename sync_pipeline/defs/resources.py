"""Dagster resources: the configuration with the API clients it describes, the run's options, the warehouse.

Secrets stay in sync.yaml's `${ENV}` references and are resolved only inside a step, so they never
become resource configuration that the UI would display.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from sync_pipeline.config import Settings, load_settings
from sync_pipeline.connectors._http import HttpApi
from sync_pipeline.connectors.registry import connector_for
from sync_pipeline.warehouse.db import connect, ensure_schema


class SyncSettings(dg.ConfigurableResource):
    """The sync.yaml this code location was built from, read once per step, and the API clients of the step.

    Clients are built on demand with their secrets resolved inside the step, and closed when the step
    ends, as are the sessions they share (Zoho's OAuth session: one per system, so a step reuses one access
    token instead of asking for a new one per client)."""

    config_path: str
    _settings: Settings | None = PrivateAttr(default=None)
    _clients: list[HttpApi] = PrivateAttr(default_factory=list)
    _sessions: dict[str, Any] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._settings = load_settings(self.config_path)
        self._clients, self._sessions = [], {}

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for closeable in [*self._clients, *self._sessions.values()]:
            closeable.close()
        self._clients, self._sessions = [], {}

    def load(self) -> Settings:
        if self._settings is None:  # used outside a step (a script, a test): read it now
            self._settings = load_settings(self.config_path)
        return self._settings

    def client(self, system: str) -> HttpApi:
        """A fresh API client of a system (its page counts are this caller's), closed at the end of the step."""
        cfg = self.load().systems[system]
        connector = connector_for(cfg.type)
        if connector.open_session is None:
            api = connector.build_client(cfg)
        else:
            if system not in self._sessions:
                self._sessions[system] = connector.open_session(cfg)
            api = connector.build_client(cfg, self._sessions[system])
        self._clients.append(api)
        return api


class RunOptions(dg.ConfigurableResource):
    """Options of one run, for every step of it: the metrics date and whether targets are written."""

    as_of: str = ""              # YYYY-MM-DD; empty: today (UTC). Schedules set it to the tick's date.
    dry_run: bool | None = None  # True: plan only, write nothing; None: each connection's `dry_run` in sync.yaml
    # one record on demand (<connection>_record_job, sync-record): its two-way entity and its id on either side
    record_entity: str = ""
    record_id: str = ""

    def as_of_date(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(timezone.utc).date()

    def dry_run_for(self, configured: bool) -> bool:
        return configured if self.dry_run is None else self.dry_run


DRY_RUN_TAG = "sync/dry_run"  # on every run that writes nothing: the Runs list and `status` say it is a plan


def mark_dry_run(context: Any) -> None:
    """Tag the run as a dry run (a launchpad run gets its options from config, after launch: the tag follows)."""
    if context.run.tags.get(DRY_RUN_TAG) != "true":
        context.instance.add_run_tags(context.run.run_id, {DRY_RUN_TAG: "true"})


def plan_words(counts: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """A dry run's counts as a plan: would_create / would_update instead of created / updated."""
    if not dry_run:
        return counts
    renamed = {"created": "would_create", "updated": "would_update", "adopted": "would_adopt"}
    return {renamed.get(k, k): v for k, v in counts.items()}


def run_options_config(*, as_of: date | str | None = None, dry_run: bool | None = None,
                       record: tuple[str, str] | None = None) -> dict:
    """Run config setting the run's options (CLI runs, schedules, tests); `record`: (entity, id)."""
    config: dict[str, Any] = {"as_of": as_of.isoformat() if isinstance(as_of, date) else (as_of or "")}
    if dry_run is not None:
        config["dry_run"] = dry_run
    if record is not None:
        config["record_entity"], config["record_id"] = record
    return {"resources": {"run_options": {"config": config}}}


@contextmanager
def warehouse(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection with the schema in place, closed even when the step fails
    (DuckDBResource.get_connection closes only on success, leaving the file locked in-process)."""
    with resource.get_connection() as conn:
        try:
            ensure_schema(conn)
            yield conn
        finally:
            conn.close()


@contextmanager
def warehouse_read_only(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only warehouse connection (asset checks): it cannot change what it checks."""
    with connect(resource.database, read_only=True) as conn:
        yield conn

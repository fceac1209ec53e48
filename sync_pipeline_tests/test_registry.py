"""The connector registry (issue 8): every configured system type has a connector, every layer asks it, and the
Dagster resources own what a step needs (sync.yaml read once, API clients closed at the end)."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import dagster as dg
import duckdb
import pytest
import yaml
from dagster_duckdb import DuckDBResource

import sync_pipeline.config as config_module
import sync_pipeline.defs.resources as resources_module
from sync_pipeline.config import ConfigError, load_settings
from sync_pipeline.connectors import registry
from sync_pipeline.connectors._http import HttpApi
from sync_pipeline.connectors.registry import UnknownSystemType, connector_for, known_types, source_of
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.defs.checks import build_staging_checks
from sync_pipeline.defs.staging import build_staging_assets
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import REPO, run_sync, write_config


def configurable_types() -> set[str]:
    """Every `type:` value sync.yaml accepts, read from the configuration models."""
    models = get_args(get_args(config_module.System)[0])
    return {t for model in models for t in get_args(model.model_fields["type"].annotation)}


def test_every_type_the_configuration_accepts_has_a_connector():
    types = configurable_types()
    assert types == {"fakturownia", "invoiceocean", "zoho_invoice", "sugester", "customersuccessbox", "billy",
                     "simply_crm", "invoice2go_zapier"}
    assert types <= set(known_types())
    for t in types:
        connector = connector_for(t)
        assert t in connector.types
        assert connector.source is not None or connector.targets, t
        if connector.source:  # its SQL files exist in its folder
            assert connector.sql(connector.source.clients_sql) and connector.sql(connector.source.invoices_sql)
        for entity in connector.targets:  # a two-way entity has no payload SQL: it syncs between sides
            assert entity.two_way or connector.sql(entity.payload_sql)
        for side in connector.sides:
            assert connector.sql(side.mapping_sql), (t, side.entity)


def test_an_unknown_type_is_named_with_the_known_ones():
    with pytest.raises(UnknownSystemType, match=r"'xero'.*customersuccessbox"):
        connector_for("xero")
    with pytest.raises(UnknownSystemType, match="cannot be a source"):
        source_of("sugester")


def test_a_configured_type_without_a_connector_fails_to_build(tmp_path, monkeypatch):
    # Remove Sugester's connector as if its folder were missing: building the definitions must fail, naming it.
    without = {t: c for t, c in registry._by_type().items() if t != "sugester"}
    monkeypatch.setattr(registry, "_by_type", lambda: without)
    config = write_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(UnknownSystemType, match="'sugester'"):
        build_definitions(config)


def test_extract_assets_are_grouped_by_source_system():
    defs = build_definitions(REPO / "sync.yaml")
    groups = {}
    for assets_def in defs.assets:
        if isinstance(assets_def, dg.AssetSpec):  # a system's `<system>/api` (its connection check): not extracted
            continue
        for key, group in assets_def.group_names_by_key.items():
            groups[key.to_user_string()] = group
    assert groups["fakturownia/clients"] == groups["fakturownia/invoice_changes"] == "fakturownia"
    assert groups["fakturownia/invoice_history"] == "fakturownia"
    assert groups["zoho/clients"] == groups["zoho/creditnote_changes"] == groups["zoho/invoice_history"] == "zoho"
    assert "extract" not in groups.values()


def test_asset_checks_run_in_the_duckdb_pool_on_a_read_only_warehouse(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9")
    settings = load_settings(config, strict=False)
    checks = build_staging_checks()
    assert checks and all(c.node_def.pool == "duckdb" for c in checks)
    db = tmp_path / "warehouse.duckdb"
    with connect(db):
        pass  # the schema, empty staging tables
    assets = build_staging_assets(settings)
    resources = {"duckdb": DuckDBResource(database=str(db))}
    # Another process holds the file open read-only (as a second reader would): DuckDB then refuses any
    # writable connection from here, so a check that opened the warehouse for writing would fail.
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('ready', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(db)).close()  # the negative control: writing is refused while the reader holds it
        specs = [dg.AssetSpec(key) for assets_def in assets for key in assets_def.keys]
        job = dg.Definitions(assets=specs, asset_checks=checks,
                             resources=resources).resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(raise_on_error=False)
    finally:
        reader.communicate("")
    evaluations = result.get_asset_check_evaluations()
    assert result.success and len(evaluations) == sum(len(c.check_keys) for c in checks) == 5
    assert all(e.passed for e in evaluations)


@pytest.mark.parametrize("system, key, value", [
    ("fakturownia", "per_page", 1000),
    ("zoho", "dc", "xx"),
    ("customersuccessbox", "timeout_seconds", -1),
    ("sugester", "bogus", 1),
])
def test_a_configuration_error_names_systems_name_key_for_every_type(tmp_path, system, key, value):
    doc = yaml.safe_load((REPO / "sync.yaml").read_text())
    doc["systems"][system][key] = value
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as raised:
        load_settings(path, strict=False)
    message = str(raised.value)
    assert f"systems.{system}.{key}:" in message
    # The union's tag (the type) is not spliced into the path: never "systems.fakturownia.fakturownia.per_page".
    assert f"systems.{system}.{doc['systems'][system]['type']}." not in message


@pytest.mark.e2e
def test_sync_yaml_is_read_once_per_step_and_clients_are_closed(tmp_path, sandbox, instance, monkeypatch):
    config = write_config(tmp_path, sandbox.url)
    loads, opened, closed = [], [], []
    real_load, real_init, real_close = resources_module.load_settings, HttpApi.__init__, HttpApi.close

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    def tracking_init(self, *args, **kwargs):
        opened.append(self)
        real_init(self, *args, **kwargs)

    def tracking_close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(resources_module, "load_settings", counting_load)
    monkeypatch.setattr(HttpApi, "__init__", tracking_init)
    monkeypatch.setattr(HttpApi, "close", tracking_close)
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    steps = [e for e in instance.all_logs(runs[0].run_id) if e.dagster_event and e.dagster_event.is_step_success]
    assert len(steps) >= 10
    # In process, the resources are set up once for the whole run: one read of sync.yaml for its 10+ steps
    # (under the multiprocess executor of `dagster dev`, once per step process: set-up is per step).
    assert len(loads) == 1, (len(loads), len(steps))
    assert opened and set(map(id, opened)) <= set(map(id, closed))

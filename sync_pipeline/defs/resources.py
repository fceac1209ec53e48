"""Thin Dagster resources: the configuration (read at run time) and the DuckDB warehouse.

Secrets stay in sync.yaml's `${ENV}` references and are resolved only inside a run, so they never
become resource configuration that the UI would display.
"""


from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from sync_pipeline.clients import build_client
from sync_pipeline.config import Settings, load_settings
from sync_pipeline.systems._http import HttpApi
from sync_pipeline.warehouse.db import ensure_schema


class SyncSettings(dg.ConfigurableResource):
    """The sync.yaml this code location was built from."""

    config_path: str

    def load(self) -> Settings:
        return load_settings(self.config_path)

    def client(self, system: str) -> HttpApi:
        """The API client of a system, with its secrets resolved now, inside the run."""
        return build_client(self.load().systems[system])


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

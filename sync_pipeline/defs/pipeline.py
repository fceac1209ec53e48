"""The pipeline described by sync.yaml (`SYNC_PIPELINE_CONFIG` overrides the path)."""

import dagster as dg

from sync_pipeline.config import default_config_path
from sync_pipeline.defs.build import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(default_config_path())

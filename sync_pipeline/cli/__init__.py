"""The `sync-pipeline` command (entry point `sync_pipeline.cli:main`; also `python -m sync_pipeline.cli`)."""

from sync_pipeline.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]

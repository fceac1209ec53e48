"""The sandbox's command-line arguments, declared once for `sync-pipeline sandbox` and
`python -m sync_pipeline.sandbox.server` (import-light: building the CLI parser loads no simulator)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from .faults import split_fault_spec


def _fault_spec(text: str) -> str:
    try:
        split_fault_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare the sandbox's options on `parser` (a top-level parser or the `sandbox` subparser)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--invoices-per-client", type=int, default=6)
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="YYYY-MM-DD; default: yesterday (UTC), so no record is stamped later than now")
    parser.add_argument("--max-rps", type=float, default=None)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--faults", action="append", default=[], type=_fault_spec, metavar="[NAME:]SPEC",
                        help="inject faults: SPEC is kind=share pairs, e.g. server_error=0.1,rate_limit=0.1,"
                             "reset=0.05,ghost_write=0.02,seed=3 (kinds: server_error, rate_limit, reset, html, "
                             "slow, truncated, empty_page, ghost_write; also retry_after, slow_seconds). NAME is "
                             "a simulator (fakturownia, sugester, zoho_accounts, zoho, csb) or * (default: *); "
                             "repeatable")
    return parser

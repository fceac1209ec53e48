"""`sync-pipeline users CONNECTION`: the user pairing report, read live from both systems' APIs through the
code of the `<connection>/user_pairing` asset (load/user_pairing.py), as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sync_pipeline.config import default_config_path


def add_users_parser(sub: Any, config_arg) -> None:
    """Register the `users` command on the subparsers of `sync-pipeline` (`config_arg` adds --config)."""
    users = sub.add_parser("users", help="which users exist in both systems of a connection with the same login "
                                         "and e-mail, and what differs for the others (read live from the APIs)")
    users.add_argument("connection", metavar="CONNECTION", help="a connection of sync.yaml")
    config_arg(users)
    users.add_argument("--json", action="store_true", help="print one machine-readable object")
    users.set_defaults(func=_cmd_users)


def _cmd_users(args: argparse.Namespace) -> int:
    from sync_pipeline.cli.local import sandbox_if_configured
    from sync_pipeline.config import load_settings
    from sync_pipeline.connectors._http import ApiError
    from sync_pipeline.connectors.registry import build_client
    from sync_pipeline.load.user_pairing import NoUsersEndpoint, compute_report, users_readers

    config_path = (args.config or default_config_path()).resolve()
    structure = load_settings(config_path, strict=False)
    structure.connection_named(args.connection)
    try:  # before any sandbox starts or secret is resolved
        users_readers(structure, args.connection)
    except NoUsersEndpoint as exc:
        print(f"sync-pipeline users: {exc}", file=sys.stderr)
        return 2
    clients: list[Any] = []
    with sandbox_if_configured(config_path):
        settings = load_settings(config_path)  # strict: secrets resolved (the sandbox URL too), never printed

        def client(system: str) -> Any:
            clients.append(build_client(settings.systems[system]))
            return clients[-1]

        try:
            report = compute_report(settings, args.connection, client)
        except (ApiError, ValueError) as exc:  # the client redacts secrets from its errors
            print(f"sync-pipeline users: {exc}", file=sys.stderr)
            return 1
        finally:
            for api in clients:
                api.close()
    if args.json:
        print(json.dumps({"connection": report.connection, "a_system": report.a_system,
                          "b_system": report.b_system, "paired": report.paired, "unpaired": len(report.unpaired),
                          "differences": report.differences(), "rows": report.as_rows()}, indent=2))
    else:
        print(render(report))
    return 0


def render(report: Any) -> str:
    """The paired count, then a table of the unpaired users with what differs."""
    from sync_pipeline.load.user_pairing import describe

    a, b = report.a_system, report.b_system
    lines = [f"{report.connection}: users of {a} and {b}",
             f"  paired (identical login and e-mail, can switch between the apps): {report.paired}",
             f"  unpaired: {len(report.unpaired)}"]
    if report.unpaired:
        table = [("difference", a, b)] + [(r.difference, describe(r.a), describe(r.b)) for r in report.unpaired]
        widths = [max(len(row[i]) for row in table) for i in range(2)]
        lines += ["    " + f"{d:<{widths[0]}}  {x:<{widths[1]}}  {y}".rstrip() for d, x, y in table]
    return "\n".join(lines)

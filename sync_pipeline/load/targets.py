"""What each target type receives: its entities in load order, their desired state and writers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sync_pipeline.config import ConnectionSettings


@dataclass(frozen=True)
class TargetEntity:
    name: str                                               # asset <connection>/<name>, ledger entity
    desired_sql: Callable[[ConnectionSettings], str]        # selects (our_key, payload, blocked)
    writer: Callable[[object], object]                      # api client -> TargetWriter
    needs_metrics: bool                                     # runs after the metrics assets
    after: str | None                                       # entity of the same target loaded first
    description: str


def target_entities(target_type: str) -> tuple[TargetEntity, ...]:
    if target_type == "sugester":
        from sync_pipeline.load import sugester as s

        return (
            TargetEntity("clients", s.desired_clients_sql, s.SugesterClientsWriter, True, None,
                         "Staged accounts upserted as Sugester clients by account_id, with mapped metric fields."),
            TargetEntity("deals", s.desired_deals_sql, s.SugesterDealsWriter, False, "clients",
                         "One Sugester deal per invoice of the selected kinds, ever, linking back to the invoice."),
        )
    if target_type == "customersuccessbox":
        from sync_pipeline.load import customersuccessbox as c

        return (
            TargetEntity("accounts", c.desired_accounts_sql, c.accounts_writer, True, None,
                         "Accounts pushed to CustomerSuccessBox by account_id, with overdue metrics and health."),
            TargetEntity("invoices", c.desired_invoices_sql, c.invoices_writer, False, "accounts",
                         "Every invoice of a pushed account, with its status in CustomerSuccessBox's words."),
        )
    raise ValueError(f"no target entities for system type {target_type!r}")

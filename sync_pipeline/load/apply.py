"""Apply a plan to a target: intent before send, answer recorded after, per-record failures kept.

Systemic failures (authentication, connection, rate limit after retries) stop the run: failing
every record one by one would only hide the cause. A rejected record (validation, a record gone
from the target) is logged with the target's message and retried on the next run.

A create answered with a 5xx, a timeout, a broken connection or an unreadable body may have been
stored all the same: its outcome is unknown, not failed. It is looked up by our key before it is
created again; if it stays unknown, its ledger row stays `intended` and the next run looks it up.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb

from sync_pipeline.load.ledger import Ledger, Outcome
from sync_pipeline.load.plan import Plan, PlanItem
from sync_pipeline.connectors._http import (ApiConnectionError, ApiStatusError, ApiTimeoutError, AuthError,
                                         BadResponseError, RateLimitError, ServerError)

log = logging.getLogger("sync_pipeline.load")
_CHUNK = 100
# Answers that leave it unknown whether the target stored a create (the HTTP layer never repeats a POST
# on these, since a repeat could duplicate the record).
_UNKNOWN = (ServerError, ApiTimeoutError, ApiConnectionError, BadResponseError)
CREATE_ATTEMPTS = 3  # creates per record and run, each after a lookup that found nothing
COUNTS = ("created", "updated", "adopted", "unchanged", "failed", "unknown", "blocked")


class TargetWriter(Protocol):
    """What a target needs to offer for one entity."""

    def create(self, item: PlanItem) -> str: ...                 # returns the target id
    def update(self, target_id: str, item: PlanItem) -> None: ...
    def find(self, item: PlanItem) -> str | None: ...            # look up by our key (crash recovery)


class ErrorBudgetExceeded(RuntimeError):
    pass


@dataclass
class ApplyResult:
    counts: Counter = field(default_factory=Counter)  # see COUNTS
    errors: list[tuple[str, str]] = field(default_factory=list)  # (our_key, message), first few

    def as_metadata(self) -> dict[str, Any]:
        return {k: int(self.counts.get(k, 0)) for k in COUNTS}


def _is_record_problem(exc: Exception) -> bool:
    return isinstance(exc, ApiStatusError) and not isinstance(exc, (AuthError, RateLimitError))


def apply_plan(conn: duckdb.DuckDBPyConnection, plan: Plan, writer: TargetWriter, *, run_id: str, dry_run: bool,
               error_budget: int, progress: Callable[[str], None] = log.info,
               result: ApplyResult | None = None) -> ApplyResult:
    """Apply `plan`; `result` (when given) holds what was done even if a systemic error stops it."""
    ledger = Ledger(conn, connection=plan.connection, entity=plan.entity, run_id=run_id)
    result = result if result is not None else ApplyResult()
    result.counts["unchanged"] = plan.counts.get("unchanged", 0)
    result.counts["blocked"] = plan.counts.get("blocked", 0)
    actionable = [i for i in plan.items if i.action != "blocked"]

    if dry_run:
        ledger.record([Outcome(i.our_key, f"plan_{i.action}", i.target_id, i.content_hash) for i in actionable], dry_run=True)
        for i in actionable:
            result.counts[{"create": "created", "recover": "created", "update": "updated"}[i.action]] += 1
        return result

    for start in range(0, len(actionable), _CHUNK):
        chunk = actionable[start:start + _CHUNK]
        ledger.mark_intended(i.our_key for i in chunk if i.action in ("create", "recover"))
        outcomes: list[Outcome] = []
        try:
            for item in chunk:
                outcomes.append(_apply_one(item, writer))
        except BaseException:
            _count(result, outcomes)  # what the target answered so far counts, even when the run stops
            raise
        finally:  # keep what the target already answered, even when a systemic error stops the run
            ledger.record(outcomes)
            _count(result, outcomes)
        progress(f"{plan.connection}/{plan.entity}: {min(start + _CHUNK, len(actionable))}/{len(actionable)} written")
        troubled = result.counts["failed"] + result.counts["unknown"]
        if troubled > error_budget:
            raise ErrorBudgetExceeded(
                f"{plan.connection}/{plan.entity}: {troubled} records rejected by the target or left unknown, "
                f"above the error budget of {error_budget}; first: {result.errors[0][0]}: {result.errors[0][1]}"
            )
    return result


_COUNTED = {"create": "created", "update": "updated", "adopt": "adopted", "fail": "failed", "unknown": "unknown"}


def _count(result: ApplyResult, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        result.counts[_COUNTED[o.action]] += 1
        if o.action in ("fail", "unknown") and len(result.errors) < 20:
            result.errors.append((o.our_key, o.message or ""))


def _apply_one(item: PlanItem, writer: TargetWriter) -> Outcome:
    try:
        if item.action in ("create", "recover"):
            return _create(item, writer, look_first=item.action == "recover")
        writer.update(item.target_id, item)
        return Outcome(item.our_key, "update", item.target_id, item.content_hash)
    except Exception as exc:
        if not _is_record_problem(exc):
            raise
        log.warning("%s rejected: %s", item.our_key, exc)
        return Outcome(item.our_key, "fail", item.target_id, None, str(exc))


def _create(item: PlanItem, writer: TargetWriter, *, look_first: bool) -> Outcome:
    """Create once per lookup that found nothing. `look_first`: a crash left the intent without an answer."""
    unknown: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        if look_first or attempt:
            found = writer.find(item)
            if found is not None:
                writer.update(found, item)  # bring it to the content we meant to create
                return Outcome(item.our_key, "adopt", found, item.content_hash)
        try:
            return Outcome(item.our_key, "create", writer.create(item), item.content_hash)
        except _UNKNOWN as exc:
            unknown = exc
            log.warning("%s: create answered with %s; looking it up before creating again",
                        item.our_key, type(exc).__name__)
    return Outcome(item.our_key, "unknown", None, None,
                   f"unknown whether the target stored it after {CREATE_ATTEMPTS} attempts; looked up again on the "
                   f"next run: {unknown}")

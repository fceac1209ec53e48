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
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb

from sync_pipeline.connectors._http import (ApiConnectionError, ApiStatusError, ApiTimeoutError, AuthError,
                                            BadResponseError, NotFoundError, RateLimitError, ServerError)
from sync_pipeline.load.ledger import Ledger, Outcome
from sync_pipeline.load.plan import Plan, PlanItem

log = logging.getLogger("sync_pipeline.load")
_CHUNK = 100
# Answers that leave it unknown whether the target stored a create (the HTTP layer never repeats a POST
# on these, since a repeat could duplicate the record).
_UNKNOWN = (ServerError, ApiTimeoutError, ApiConnectionError, BadResponseError)
CREATE_ATTEMPTS = 3  # creates per record and run, each after a lookup that found nothing
COUNTS = ("created", "updated", "adopted", "unchanged", "failed", "unknown", "blocked", "deleted_in_target")


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
               error_budget: int, concurrency: int = 1, progress: Callable[[str], None] = log.info,
               result: ApplyResult | None = None, target_system: str | None = None) -> ApplyResult:
    """Apply `plan`; `result` (when given) holds what was done even if a systemic error stops it.

    Records go out a chunk at a time: the chunk's creates are marked intended, then its records are sent,
    `concurrency` requests in flight at once, and every answer is recorded before the next chunk starts.
    A crash can therefore leave at most one chunk's creates unanswered, each marked intended and looked up
    by our key on the next run."""
    ledger = Ledger(conn, connection=plan.connection, entity=plan.entity, run_id=run_id, system=target_system)
    result = result if result is not None else ApplyResult()
    result.counts["unchanged"] = plan.counts.get("unchanged", 0)
    result.counts["blocked"] = plan.counts.get("blocked", 0)
    result.counts["deleted_in_target"] = plan.counts.get("deleted", 0)

    if dry_run:
        if plan.actionable:
            ledger.log_plan(copy_from=plan.logged_by)
        result.counts["created"] += plan.counts.get("create", 0) + plan.counts.get("recover", 0)
        result.counts["updated"] += plan.counts.get("update", 0)
        return result

    total, done = plan.actionable, 0
    chunk_size = max(_CHUNK, 4 * concurrency)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="write") if concurrency > 1 else None
    try:
        for chunk in plan.chunks(conn, chunk_size):
            ledger.mark_intended(i.our_key for i in chunk if i.action in ("create", "recover"))
            outcomes: list[Outcome] = []
            try:
                send_chunk(chunk, writer, pool, outcomes)
            finally:  # keep what the target already answered, even when a systemic error stops the run
                ledger.record(outcomes)
                _count(result, outcomes)
            done += len(chunk)
            progress(f"{plan.connection}/{plan.entity}: {done}/{total} written")
            check_budget(f"{plan.connection}/{plan.entity}", result.counts["failed"] + result.counts["unknown"],
                         error_budget, result.errors)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return result


def check_budget(where: str, troubled: int, error_budget: int, errors: list[tuple[str, str]]) -> None:
    """Stop the run once more records than the connection's error budget were rejected or left unknown."""
    if troubled > error_budget:
        raise ErrorBudgetExceeded(f"{where}: {troubled} records rejected by the target or left unknown, above the "
                                  f"error budget of {error_budget}; first: {errors[0][0]}: {errors[0][1]}")


def send_chunk(chunk: list[PlanItem], writer: TargetWriter, pool: ThreadPoolExecutor | None,
          outcomes: list[Outcome]) -> None:
    """Send a chunk, appending each answer to `outcomes` as it comes. The first systemic error stops what has
    not started; what is in flight is waited for and its answer kept; then the error is raised."""
    if pool is None:
        for item in chunk:
            outcomes.append(_apply_one(item, writer))
        return
    futures = [pool.submit(_apply_one, item, writer) for item in chunk]
    taken: set = set()  # futures whose answer is in `outcomes`
    error: BaseException | None = None
    try:
        for future in as_completed(futures):
            taken.add(future)
            try:
                outcomes.append(future.result())
            except BaseException as exc:  # systemic (auth, connection, rate limit): stop sending
                error = error or exc
                for pending in futures:
                    pending.cancel()
    except BaseException as exc:  # interrupted while waiting (Ctrl-C, SIGTERM): keep the answers in hand
        error = exc
        for pending in futures:
            pending.cancel()
        wait(futures)
        outcomes.extend(f.result() for f in futures
                        if f not in taken and not f.cancelled() and f.exception() is None)
    if error is not None:
        raise error


_COUNTED = {"create": "created", "update": "updated", "adopt": "adopted", "fail": "failed", "unknown": "unknown",
            "gone": "deleted_in_target"}


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
        if isinstance(exc, NotFoundError) and item.action == "update":
            # deleted in the target by someone: flagged, never re-created (deletes are not propagated either way)
            log.warning("%s: %s is gone from the target; it will not be written again", item.our_key, item.target_id)
            return Outcome(item.our_key, "gone", item.target_id, None, str(exc))
        log.warning("%s rejected: %s", item.our_key, exc)
        return Outcome(item.our_key, "fail", item.target_id, None, str(exc))


def _create(item: PlanItem, writer: TargetWriter, *, look_first: bool) -> Outcome:
    """Create once per lookup that found nothing. `look_first`: a crash left the intent without an answer."""
    unknown: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        if look_first or attempt:
            found = writer.find(item)
            if found is not None:
                try:
                    writer.update(found, item)  # bring it to the content we meant to create
                except Exception as exc:
                    if not _is_record_problem(exc):
                        raise
                    # it exists: keep its id, so the next run updates it instead of creating it again
                    log.warning("%s found as %s but not updated: %s", item.our_key, found, exc)
                    return Outcome(item.our_key, "fail", found, None, str(exc))
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

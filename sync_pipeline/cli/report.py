"""What a run did, read from its Dagster events: its first error, whether it was interrupted, the metadata of
each asset it produced and the counts of each load. `run` reads the events of the run it just executed,
`status` those stored in the instance; both go through here, so they say the same thing the UI shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sync_pipeline.load.apply import COUNTS

INTERRUPTS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
# Shown only when not zero: most runs never adopt, lose an answer or block a record.
RARE_COUNTS = ("adopted", "unknown", "blocked", "waiting")


def innermost_error(event):
    """The innermost cause of a failure event's error (what a person needs; Dagster wraps it in frames)."""
    err = getattr(event.event_specific_data, "error", None) if event is not None else None
    while getattr(err, "cause", None) is not None:
        err = err.cause
    return err


def failure_line(event) -> str | None:
    """One line for a person from a STEP_FAILURE or RUN_FAILURE event: the step, and what went wrong, in our
    words (a Failure's description, else the exception's message without its module and class)."""
    err = innermost_error(event)
    if err is None:
        return None
    where = event.step_key or "run"
    if err.cls_name in INTERRUPTS:
        return f"{where}: stopped by an interrupt (Ctrl-C or SIGTERM)"
    user = getattr(event.event_specific_data, "user_failure_data", None)
    text = (user.description if user is not None and user.description else err.message).strip()
    first = text.splitlines()[0] if text else err.cls_name
    head, sep, rest = first.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == err.cls_name:
        first = rest
    return f"{where}: {first}"


def _failures(events: Iterable) -> Iterable:
    return (e for e in events if e is not None and e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE"))


def first_error(events: Iterable) -> str | None:
    """One line for a person: the first failed step and what went wrong there."""
    fallback = None
    for event in _failures(events):
        line = failure_line(event)
        if line:
            return line
        fallback = fallback or event.message
    return fallback


def was_interrupted(events: Iterable) -> bool:
    return any((err := innermost_error(e)) is not None and err.cls_name in INTERRUPTS for e in _failures(events))


def _values(metadata) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def asset_metadata(events: Iterable) -> dict[str, dict[str, Any]]:
    """Asset key → its metadata values, from each materialization and from each load step that failed part
    way (its failure carries what it wrote, so a failed run still reports its writes)."""
    out: dict[str, dict[str, Any]] = {}
    for event in events:
        if event is None:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            out[mat.asset_key.to_user_string()] = _values(mat.metadata)
        elif event.is_step_failure and event.step_key:
            user = getattr(event.event_specific_data, "user_failure_data", None)
            if user is not None and user.metadata:  # op `conn__deals` is asset `conn/deals`
                out[event.step_key.replace("__", "/")] = _values(user.metadata)
    return out


def load_counts(metadata: dict[str, Any] | None) -> dict[str, int]:
    """Every load count (created, updated, …) of one load asset's metadata, 0 where absent."""
    metadata = metadata or {}
    # a dry run's metadata says would_create / would_update (defs/resources.py plan_words)
    planned = {"created": "would_create", "updated": "would_update", "adopted": "would_adopt"}
    counts = {k: int(metadata.get(k, metadata.get(planned.get(k, k))) or 0) for k in COUNTS}
    if "waiting_for_next_period" in metadata:  # held back by the target's quota until the next period (load/quota.py)
        counts["waiting"] = int(metadata["waiting_for_next_period"] or 0)
    return counts


def counts_line(entity: str, counts: dict[str, int], *, dry_run: bool = False) -> str:
    """`  deals    created 3, updated 1, unchanged 218, failed 0` (`would be created` in a dry run)."""
    would = "would be " if dry_run else ""
    rare = "".join(f", {k} {counts[k]}" for k in RARE_COUNTS if counts.get(k))
    return (f"  {entity:<8} {would}created {counts['created']}, {would}updated {counts['updated']}, "
            f"unchanged {counts['unchanged']}, failed {counts['failed']}{rare}")


def two_way_counts(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A two-way load's counts per side and per pair (load/twoway.py); {} for a one-way load."""
    from sync_pipeline.load.twoway import PAIR_COUNTS

    metadata = metadata or {}
    if "per_side" not in metadata:
        return {}
    return {"per_side": metadata["per_side"], **{k: int(metadata.get(k) or 0) for k in PAIR_COUNTS},
            **{k: metadata[k] for k in ("conflicts_examples", "deletions_examples", "departments_unmapped")
               if k in metadata}}


def two_way_line(entity: str, counts: dict[str, Any], *, dry_run: bool = False) -> str:
    """`  clients  → sugester created 1, updated 2; → fakturownia created 1, updated 0; unchanged 18, …`"""
    would = "would be " if dry_run else ""
    sides = "; ".join(f"→ {system} {would}created {c['created']}, {would}updated {c['updated']}"
                      + "".join(f", {k} {c[k]}" for k in ("adopted", "failed", "unknown") if c.get(k))
                      for system, c in counts["per_side"].items())
    pairs = ", ".join(f"{k.replace('_', ' ')} {counts[k]}" for k in
                      ("unchanged", "linked", "conflicts", "deletions_flagged", "ambiguous", "divergent", "blocked")
                      if counts.get(k) or k in ("unchanged", "conflicts", "deletions_flagged"))
    line = f"  {entity:<8} {sides}; {pairs}"
    for system, departments in (counts.get("departments_unmapped") or {}).items():
        line += (f"\n           departments of {system} not in `departments`: {', '.join(departments)} "
                 "(their clients sync without one)")
    return line

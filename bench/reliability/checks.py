"""After a trial: every target holds exactly one record per key, and every key the sources call for."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sources import expected_keys
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.snapshot import duplicates, target_records

TARGET = {"fakturownia_to_sugester": "sugester", "zoho_to_customersuccessbox": "customersuccessbox"}
_SOURCE = {"fakturownia_to_sugester": "fakturownia", "zoho_to_customersuccessbox": "zoho"}


def quarantined(warehouse: Path, connection: str) -> dict[str, str]:
    """source_id → reason of the records staging rejected (read-only; None when the file is busy)."""
    for _ in range(10):
        try:
            with duckdb.connect(str(warehouse), read_only=True) as conn:
                rows = conn.execute("SELECT source_id, reason FROM staging.quarantine WHERE source_instance = ? "
                                    "AND disposition = 'rejected'", [_SOURCE[connection]]).fetchall()
            return {str(s): r for s, r in rows if s is not None}
        except duckdb.IOException:  # a run holds the file: try again shortly
            time.sleep(1)
    return {}


def verify(sandbox: Sandbox, connection: str, warehouse: Path) -> dict:
    """duplicates, missing and unexpected keys per target entity (only entities with findings)."""
    target = TARGET[connection]
    records = {e: by_key for e, by_key in target_records(sandbox).items() if e.startswith(f"{target}/")}
    expected = expected_keys(sandbox, connection)
    dup = {e: keys for e, keys in duplicates(records).items()}
    missing, unexpected, explained = {}, {}, {}
    rejected = None
    for entity, keys in expected.items():
        held = set(records.get(entity, {}))
        gone = sorted(keys - held)
        if gone:
            rejected = quarantined(warehouse, connection) if rejected is None else rejected
            # a key our derivation expects but staging rejected with a reason: reported, not a loss
            why = {k: rejected[k.split(":", 1)[-1]] for k in gone if k.split(":", 1)[-1] in rejected}
            if why:
                explained[entity] = why
            gone = [k for k in gone if k not in why]
            if gone:
                missing[entity] = gone
        extra = sorted(held - keys)
        if extra:
            unexpected[entity] = extra
    counts = {e: len(by_key) for e, by_key in records.items()}
    return {"duplicates": dup, "missing": missing, "unexpected": unexpected, "quarantined_expected": explained,
            "held": counts}


def utc_day() -> str:
    return datetime.now(UTC).date().isoformat()


def excuse_midnight(record: dict, day_before: str) -> None:
    """Metrics are as of the run's UTC date: when midnight passed between the runs, the check run rightly
    rewrites the figures that moved (days overdue). Such writes are kept apart, not counted."""
    if record.get("check_writes") and utc_day() != day_before:
        record["check_writes_excused"] = {"reason": "the UTC date changed between the runs",
                                          **record.pop("check_writes")}
        record["check_writes"] = None

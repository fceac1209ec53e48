"""`sync.builds`: what each derived table was last built from, as one fingerprint per build.

A step whose inputs hash to the fingerprint recorded for its tables keeps them as they are: a rebuild
would give the same rows. The record is removed before a rebuild starts and written after it committed,
so a crash half-way leaves no record and the next run rebuilds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sync_pipeline.warehouse.db import transaction


@dataclass(frozen=True)
class Build:
    fingerprint: str
    run_id: str | None
    summary: dict[str, Any] = field(default_factory=dict)  # what the build reported, for a run that keeps it


def fingerprint(*parts: Any) -> str:
    """One hash over the parts' text (repr for anything that is not a string)."""
    text = "\x00".join(p if isinstance(p, str) else repr(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def last_build(conn: duckdb.DuckDBPyConnection, name: str) -> Build | None:
    row = conn.execute("SELECT fingerprint, run_id, summary FROM sync.builds WHERE name = ?", [name]).fetchone()
    return Build(row[0], row[1], json.loads(row[2]) if row[2] else {}) if row else None


def is_current(conn: duckdb.DuckDBPyConnection, name: str, fp: str) -> Build | None:
    """The recorded build when it was made from exactly these inputs, else None."""
    build = last_build(conn, name)
    return build if build is not None and build.fingerprint == fp else None


def forget_build(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    conn.execute("DELETE FROM sync.builds WHERE name = ?", [name])


def record_build(conn: duckdb.DuckDBPyConnection, name: str, fp: str, run_id: str | None,
                 summary: dict[str, Any] | None = None) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM sync.builds WHERE name = ?", [name])
        conn.execute("INSERT INTO sync.builds VALUES (?, ?, now(), ?, ?)",
                     [name, fp, run_id, json.dumps(summary or {}, default=str)])

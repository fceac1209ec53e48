"""A target's quota per entity and period (Invoice2go's plan counts every record created): how many this period
has left, and the plan cut to it. What does not fit waits for the next period, counted, never dropped.

Sends are counted in `sync.log` (every connection into the same system shares its quota), each in the period of
the run that sent it: the period holding the run's date (`as_of`, today by default), calendar-aligned in UTC,
recorded in `sync.quota_runs` before the run sends anything, so a crash cannot leave sends uncounted."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import duckdb

from sync_pipeline.load.plan import ACTIONABLE, TABLE, Plan

PERIODS = ("day", "week", "month", "year")


def period_bounds(day: date, period: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the period holding `day`."""
    if period == "day":
        start = day
        end = day + timedelta(days=1)
    elif period == "week":  # ISO weeks: Monday to Sunday
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    elif period == "year":
        start = day.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    else:
        raise ValueError(f"unknown quota period {period!r}; one of: {', '.join(PERIODS)}")
    return (datetime.combine(start, time(), timezone.utc), datetime.combine(end, time(), timezone.utc))


_RUNS = """CREATE TABLE IF NOT EXISTS sync.quota_runs (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, entity VARCHAR NOT NULL, period_start TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, system, entity))"""


def begin(conn: duckdb.DuckDBPyConnection, *, run_id: str, system: str, entity: str,
          bounds: tuple[datetime, datetime]) -> None:
    """This run's sends of `entity` to `system` count in the period `bounds` (recorded before anything is sent)."""
    conn.execute(_RUNS)
    conn.execute("INSERT OR IGNORE INTO sync.quota_runs VALUES (?, ?, ?, ?)", [run_id, system, entity, bounds[0]])


def used(conn: duckdb.DuckDBPyConnection, *, system: str, entity: str, bounds: tuple[datetime, datetime]) -> int:
    """Records sent to `system`'s `entity` in the period: creates, re-sends (send_updates: each makes one), and
    sends whose answer was lost (they may have made one)."""
    conn.execute(_RUNS)
    (n,) = conn.execute(
        """SELECT count(*) FROM sync.log l
           JOIN sync.quota_runs q ON q.run_id = l.run_id AND q.entity = l.entity  -- a run writes an entity to one target
           WHERE q.system = ? AND q.entity = ? AND q.period_start = ? AND NOT l.dry_run
             AND l.action IN ('create', 'update', 'adopt', 'unknown')""",
        [system, entity, bounds[0]]).fetchone()
    return int(n)


def hold_back(conn: duckdb.DuckDBPyConnection, plan: Plan, allowed: int) -> int:
    """Keep the first `allowed` records to send (in key order) and mark the rest `waiting`; returns how many wait."""
    waiting = max(plan.actionable - max(allowed, 0), 0)
    if not waiting:
        return 0
    conn.execute(f"UPDATE {TABLE} SET action = 'waiting', payload = NULL, seq = NULL WHERE seq > ?", [max(allowed, 0)])
    plan.counts.clear()
    plan.counts.update(dict(conn.execute(f"SELECT action, count(*) FROM {TABLE} GROUP BY action").fetchall()))
    plan.first_keys["waiting"] = [k for (k,) in conn.execute(
        f"SELECT our_key FROM {TABLE} WHERE action = 'waiting' ORDER BY our_key LIMIT 3").fetchall()]
    assert plan.actionable == sum(plan.counts.get(a, 0) for a in ACTIONABLE)
    return waiting

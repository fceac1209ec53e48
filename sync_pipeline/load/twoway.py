"""The two-way engine (DESIGN §5a): one plan per connection and entity from both sides and `sync.links`, then
the writes it calls for, to either side.

Pairs are kept in `sync.links` with each side's content hash as last synced. A side changed when its hash
differs from the link's; only one side changed: its values go to the other (if the direction allows it, else
it is reported as divergent); both: the declared winner's values go to the other side and the loser's are kept
in `sync.conflicts`. Unlinked records are paired by the declared match rules (our key in an external-id field,
then tax number, then e-mail; two candidates are reported, never guessed) or created on the other side.

Every write is intended first (the link row, in state `intended`), then sent, then recorded with the hash of
the record as the written system answered it. A crash in between leaves the intent: a create is looked up by
our key before it is sent again, an update is sent again. A linked record that a full key scan of its system
no longer finds is flagged in `sync.deletions`; nothing is deleted on the other side.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sync_pipeline.connectors._side_writer import VENDOR_FIELDS
from sync_pipeline.load.apply import check_budget, send_chunk
from sync_pipeline.load.entities import EntityModel, entity_model
from sync_pipeline.load.plan import PlanItem
from sync_pipeline.load.twoway_refs import key_to_id, keys_to_ids
from sync_pipeline.load.twoway_sides import Side, answer_hashes, build_side
from sync_pipeline.warehouse.db import read_sql, transaction

TABLE = "_tw"
_CHUNK = 100
SIDE_COUNTS = ("created", "updated", "adopted", "failed", "unknown")
PAIR_COUNTS = ("unchanged", "linked", "converged", "conflicts", "deletions_flagged", "ambiguous", "divergent",
               "blocked")
_VERB = {"create": "created", "update": "updated", "adopt": "adopted", "fail": "failed", "unknown": "unknown"}


@dataclass(frozen=True)
class TwoWaySpec:
    connection: str
    entity: str
    a: Side                     # the connection's source
    b: Side                     # its target
    fields: tuple[str, ...]     # the mapped fields: what is compared, hashed and written
    a_to_b: bool = True
    b_to_a: bool = True
    winner: str = "a"           # the side whose values are kept when both changed
    departments: dict[str, str] | None = None  # a department id → b's (load/departments.py); None: not synced

    def side(self, key: str) -> Side:
        return self.a if key == "a" else self.b

    @property
    def model(self) -> EntityModel:
        return entity_model(self.entity)


@dataclass
class TwoWayResult:
    sides: dict[str, Counter] = field(default_factory=dict)          # system → SIDE_COUNTS written to it
    counts: Counter = field(default_factory=Counter)                 # PAIR_COUNTS
    planned: Counter = field(default_factory=Counter)                # plan actions
    examples: dict[str, list[dict]] = field(default_factory=dict)    # conflicts, deletions, ambiguous, divergent
    unmapped_departments: dict[str, list[str]] = field(default_factory=dict)  # system → department ids
    errors: list[tuple[str, str]] = field(default_factory=list)      # (our_key, message), first few

    def total(self, verb: str) -> int:
        return sum(c.get(verb, 0) for c in self.sides.values())


def compute_plan(conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, result: TwoWayResult | None = None) -> Counter:
    """Both sides as canonical rows, then the plan in the temp table `_tw`; returns the count per action."""
    for side in (spec.a, spec.b):
        unmapped = build_side(conn, side, spec)
        if unmapped and result is not None:
            result.unmapped_departments[side.system] = unmapped
    rules = [r.label for r in spec.model.match] + ["-", "-"]
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} AS " + read_sql("sync_pipeline.load", "sql/twoway_plan.sql"),
                 {"connection": spec.connection, "entity": spec.entity, "a_to_b": spec.a_to_b,
                  "b_to_a": spec.b_to_a, "winner": spec.winner, "rule_1": rules[0], "rule_2": rules[1]})
    return Counter(dict(conn.execute(f"SELECT action, count(*) FROM {TABLE} GROUP BY action").fetchall()))


def apply_twoway(conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, *, run_id: str, dry_run: bool,
                 error_budget: int, concurrency: int = 1, progress: Callable[[str], None] = print,
                 result: TwoWayResult | None = None) -> TwoWayResult:
    """Apply the plan left in `_tw` by `compute_plan`. `result` (when given) keeps what was done even if a
    systemic error (authentication, connection, rate limit) stops the run."""
    result = result if result is not None else TwoWayResult()
    result.planned = Counter(dict(conn.execute(f"SELECT action, count(*) FROM {TABLE} GROUP BY action").fetchall()))
    for side in (spec.a, spec.b):
        result.sides.setdefault(side.system, Counter())
    _collect_examples(conn, spec, result)
    p = result.planned
    result.counts.update(unchanged=p["unchanged"], ambiguous=p["ambiguous"], divergent=p["divergent"],
                         linked=p["link"], converged=p["converge"], blocked=p["blocked"])
    result.counts["conflicts"] = _count(conn, "conflict IS NOT NULL AND action LIKE 'update_%'")
    result.counts["deletions_flagged"] = p["deleted_a"] + p["deleted_b"]
    if dry_run:
        for key in ("b", "a"):
            side = spec.side(key)
            for verb, actions in (("created", ("create", "recover")), ("updated", ("update",))):
                result.sides[side.system][verb] += sum(p[f"{a}_{key}"] for a in actions)
        _log_plan(conn, spec, run_id)
        return result
    links = _Links(conn, spec, run_id)
    links.settle_without_writes()
    for key in ("b", "a"):
        _write_side(conn, spec, key, links, result, error_budget=error_budget, concurrency=concurrency,
                    progress=progress)
    return result


def _count(conn: duckdb.DuckDBPyConnection, where: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}").fetchone()[0]


def _collect_examples(conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, result: TwoWayResult) -> None:
    """The first few records of each kind a person should look at, for the run's metadata."""
    queries = {
        "conflicts": "conflict IS NOT NULL AND action LIKE 'update_%'",
        "deletions": "action IN ('deleted_a', 'deleted_b')",
        "ambiguous": "action = 'ambiguous'",
        "divergent": "action = 'divergent'",
        "blocked": "action = 'blocked'",
    }
    names = {"a": spec.a.system, "b": spec.b.system}
    for kind, where in queries.items():
        rows = conn.execute(f"""SELECT our_key, a_id, b_id, action, won, detail, a_fields, b_fields FROM {TABLE}
                                WHERE {where} ORDER BY our_key LIMIT 5""").fetchall()
        if not rows:
            continue
        out = []
        for our_key, a_id, b_id, action, won, detail, a_fields, b_fields in rows:
            row: dict[str, Any] = {"key": our_key, spec.a.system: a_id, spec.b.system: b_id}
            if kind == "conflicts":
                loser = "b" if won == "a" else "a"
                row |= {"winner": names[won], "kept": json.loads(a_fields if won == "a" else b_fields),
                        "lost": json.loads(b_fields if loser == "b" else a_fields)}
            elif kind == "deletions":
                row["deleted_in"] = names[action[-1]]
            elif detail:
                row["detail"] = detail
            out.append(row)
        result.examples[kind] = out


def _log_plan(conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, run_id: str) -> None:
    """A dry run: one `plan_<action>` row per write the run would send (set-based, from the plan table)."""
    with transaction(conn):
        conn.execute(
            f"""INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run,
                                      message, system)
                SELECT now(), $run_id, $connection, $entity, our_key, 'plan_' || split_part(action, '_', 1),
                       CASE WHEN action LIKE '%_a' THEN a_id ELSE b_id END, true, detail,
                       CASE WHEN action LIKE '%_a' THEN $a ELSE $b END
                FROM {TABLE} WHERE action SIMILAR TO '(create|recover|update)_(a|b)' ORDER BY our_key""",
            {"run_id": run_id, "connection": spec.connection, "entity": spec.entity, "a": spec.a.system,
             "b": spec.b.system})


class _Answering:
    """Adapts a side writer to apply's TargetWriter (create → id), keeping every record a system answered
    (created, updated or found), so its hash can be stored."""

    def __init__(self, writer: Any):
        self.writer = writer
        self.answers: dict[str, dict] = {}

    def create(self, item: PlanItem) -> str:
        record = self.writer.create(item.payload, item.our_key)
        self.answers[item.our_key] = record
        return str(record["id"])

    def update(self, target_id: str, item: PlanItem) -> None:
        self.answers[item.our_key] = self.writer.update(target_id, item.payload)

    def find(self, item: PlanItem) -> str | None:
        record = self.writer.find(item.our_key, item.payload)
        if record is None:
            return None
        self.answers[item.our_key] = record
        return str(record["id"])


def _write_side(conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, key: str, links: _Links, result: TwoWayResult, *,
                error_budget: int, concurrency: int, progress: Callable[[str], None]) -> None:
    side, source = spec.side(key), "b" if key == "a" else "a"
    rows = conn.execute(
        f"""SELECT our_key, a_id, b_id, origin, action, conflict, {source}_fields, {key}_id FROM {TABLE}
            WHERE action IN ('create_{key}', 'recover_{key}', 'update_{key}') ORDER BY our_key""").fetchall()
    if not rows:
        return
    if side.writer is None:  # a read-only side: the direction should have prevented this
        raise RuntimeError(f"{spec.connection}/{spec.entity}: {side.system} cannot be written")
    writer = _Answering(side.writer())
    refs = [r for r in spec.model.refs if r.field in spec.fields]
    ids = key_to_id(conn, spec.connection, key, refs)
    counts = result.sides[side.system]
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="write") if concurrency > 1 else None
    done = 0
    try:
        for start in range(0, len(rows), max(_CHUNK, 4 * concurrency)):
            chunk = rows[start:start + max(_CHUNK, 4 * concurrency)]
            items = [PlanItem(our_key, action.split("_")[0],
                              keys_to_ids(_outgoing(spec, key, json.loads(fields)), refs, ids), "", target_id)
                     for our_key, _a, _b, _o, action, _c, fields, target_id in chunk]
            links.intend(key, chunk)
            outcomes: list = []
            try:
                send_chunk(items, writer, pool, outcomes)
            finally:  # keep what the system already answered, even when a systemic error stops the run
                links.record(key, chunk, outcomes, writer.answers)
                for o in outcomes:
                    counts[_VERB[o.action]] += 1
                    if o.action in ("fail", "unknown") and len(result.errors) < 20:
                        result.errors.append((o.our_key, o.message or ""))
                result.counts["conflicts_recorded"] += links.conflicts_recorded
                links.conflicts_recorded = 0
            done += len(chunk)
            progress(f"{spec.connection}/{spec.entity} → {side.system}: {done}/{len(rows)} written")
            check_budget(f"{spec.connection}/{spec.entity}", result.total("failed") + result.total("unknown"),
                         error_budget, result.errors)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _outgoing(spec: TwoWaySpec, key: str, fields: dict) -> dict:
    """Fields as the side `key` takes them: a department goes back into the source's terms; a custom mapping's
    fields go under VENDOR_FIELDS in the written system's names."""
    if spec.departments is not None and key == "a" and "department" in fields:
        back = {b: a for a, b in spec.departments.items()}
        fields = {**fields, "department": back.get(fields["department"])}
    custom = spec.side(key).custom
    if custom:
        fields = {**fields, VENDOR_FIELDS: {vendor: fields.get(name) for name, vendor in custom}}
    return fields


class _Links:
    """Writes `sync.links`, `sync.conflicts`, `sync.deletions` and `sync.log` for one connection and entity,
    set-based per chunk."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, spec: TwoWaySpec, run_id: str):
        self.conn, self.spec, self.run_id = conn, spec, run_id
        self.scope = {"connection": spec.connection, "entity": spec.entity, "run_id": run_id}
        self.conflicts_recorded = 0

    def settle_without_writes(self) -> None:
        """Pairs found equal are linked, links whose sides became equal take the new hashes, deletions are
        flagged (once)."""
        with transaction(self.conn):
            self.conn.execute(
                f"""INSERT INTO sync.links (connection, entity, our_key, a_id, b_id, a_hash, b_hash, origin, state,
                                            synced_at, run_id)
                    SELECT $connection, $entity, our_key, a_id, b_id, a_now, b_now, 'matched', 'synced', now(), $run_id
                    FROM {TABLE} WHERE action = 'link'""", self.scope)
            self.conn.execute(
                f"""UPDATE sync.links l SET a_hash = t.a_now, b_hash = t.b_now, synced_at = now(), run_id = $run_id
                    FROM {TABLE} t WHERE t.action = 'converge' AND l.connection = $connection
                      AND l.entity = $entity AND l.our_key = t.our_key""", self.scope)
            self.conn.execute(
                f"""INSERT INTO sync.deletions (connection, entity, system, record_id, other_id, detected_at, run_id)
                    SELECT $connection, $entity, CASE WHEN action = 'deleted_a' THEN $a ELSE $b END,
                           CASE WHEN action = 'deleted_a' THEN a_id ELSE b_id END,
                           CASE WHEN action = 'deleted_a' THEN b_id ELSE a_id END, now(), $run_id
                    FROM {TABLE} WHERE action IN ('deleted_a', 'deleted_b')
                    ON CONFLICT DO NOTHING""", {**self.scope, "a": self.spec.a.system, "b": self.spec.b.system})

    def intend(self, key: str, chunk: list[tuple]) -> None:
        """Before sending: each record's link is `intended`, with what is being done (a create carries the id
        of the side it comes from, so a crash leaves enough to look the record up)."""
        with transaction(self.conn):
            self.conn.execute(
                f"""INSERT INTO sync.links (connection, entity, our_key, a_id, b_id, origin, state, intent, run_id)
                    SELECT $connection, $entity, our_key, a_id, b_id, coalesce(origin, 'matched'), 'intended',
                           CASE WHEN action LIKE 'recover_%' THEN 'create_{key}' ELSE action END, $run_id
                    FROM {TABLE} WHERE our_key IN (SELECT unnest($keys::VARCHAR[]))
                    ON CONFLICT (connection, entity, our_key) DO UPDATE
                    SET state = 'intended', intent = excluded.intent, run_id = excluded.run_id""",
                {**self.scope, "keys": [r[0] for r in chunk]})

    def record(self, key: str, chunk: list[tuple], outcomes: list, answers: dict[str, dict]) -> None:
        """After the answers: links take the written side's id and the hash of its answer, plus the other
        side's current hash; rejected creates are forgotten (the record comes back as unlinked); conflicts and
        every write go to sync.conflicts and sync.log."""
        if not outcomes:
            return
        spec, other = self.spec, "b" if key == "a" else "a"
        side = spec.side(key)
        answered = {o.our_key: answers[o.our_key] for o in outcomes if o.our_key in answers
                    and isinstance(answers[o.our_key], dict) and "id" in answers[o.our_key]}
        hashes = answer_hashes(self.conn, side, spec, list({str(a["id"]): a for a in answered.values()}.values()))
        ok = [o for o in outcomes if o.action in ("create", "update", "adopt")]
        # a record found after a lost create whose update was refused: it exists, keep its id
        found = [o for o in outcomes if o.action == "fail" and o.target_id and o.our_key in answered]
        rows = [(o.our_key, str(answered[o.our_key]["id"]) if o.our_key in answered else o.target_id,
                 hashes.get(str(answered[o.our_key]["id"])) if o.our_key in answered else None, o in found)
                for o in ok + found]
        failed = [o.our_key for o in outcomes if o.action == "fail" and o not in found]
        with transaction(self.conn):
            if rows:
                self.conn.execute(
                    f"""UPDATE sync.links l
                        SET {key}_id = r.id, {key}_hash = r.hash,
                            {other}_hash = CASE WHEN r.refused THEN NULL ELSE t.{other}_now END,
                            state = 'synced', intent = NULL, synced_at = now(), run_id = $run_id
                        FROM (SELECT unnest($keys::VARCHAR[]) AS our_key, unnest($ids::VARCHAR[]) AS id,
                                     unnest($hashes::VARCHAR[]) AS hash, unnest($refused::BOOLEAN[]) AS refused) r
                        JOIN {TABLE} t ON t.our_key = r.our_key
                        WHERE l.connection = $connection AND l.entity = $entity AND l.our_key = r.our_key""",
                    {**self.scope, "keys": [r[0] for r in rows], "ids": [r[1] for r in rows],
                     "hashes": [r[2] for r in rows], "refused": [r[3] for r in rows]})
                (self.conflicts_recorded,) = self.conn.execute(
                    f"""INSERT INTO sync.conflicts (connection, entity, our_key, a_id, b_id, winner, a_values, b_values,
                                                    reason, detected_at, run_id)
                        SELECT $connection, $entity, t.our_key, l.a_id, l.b_id,
                               CASE WHEN t.won = 'a' THEN $a ELSE $b END, t.a_fields, t.b_fields, t.conflict, now(),
                               $run_id
                        FROM {TABLE} t JOIN sync.links l ON l.connection = $connection AND l.entity = $entity
                                                        AND l.our_key = t.our_key
                        WHERE t.conflict IS NOT NULL AND t.our_key IN (SELECT unnest($keys::VARCHAR[]))""",
                    {**self.scope, "keys": [o.our_key for o in ok], "a": spec.a.system, "b": spec.b.system}
                ).fetchone()
            if failed:
                # a rejected create leaves nothing behind; a rejected update keeps the link as it was
                self.conn.execute(
                    """DELETE FROM sync.links WHERE connection = $connection AND entity = $entity
                       AND our_key IN (SELECT unnest($keys::VARCHAR[])) AND a_hash IS NULL AND b_hash IS NULL""",
                    {"connection": spec.connection, "entity": spec.entity, "keys": failed})
                self.conn.execute(
                    """UPDATE sync.links SET state = 'synced', intent = NULL, run_id = $run_id WHERE connection = $connection
                       AND entity = $entity AND our_key IN (SELECT unnest($keys::VARCHAR[]))""",
                    {**self.scope, "keys": failed})
            self.conn.execute(
                """INSERT INTO sync.log (logged_at, run_id, connection, entity, our_key, action, target_id, dry_run,
                                         message, system)
                   SELECT now(), $run_id, $connection, $entity, unnest($keys::VARCHAR[]), unnest($actions::VARCHAR[]),
                          unnest($targets::VARCHAR[]), false, unnest($messages::VARCHAR[]), $system""",
                {**self.scope, "system": side.system, "keys": [o.our_key for o in outcomes],
                 "actions": [o.action for o in outcomes], "targets": [o.target_id for o in outcomes],
                 "messages": [o.message for o in outcomes]})

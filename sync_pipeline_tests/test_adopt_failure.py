"""A create whose answer was lost, found by the lookup, whose follow-up update then fails: the target id that was
found must be kept, or the next run creates the record a second time (found by test_fault_convergence, flakily)."""

from __future__ import annotations

from sync_pipeline.connectors._http import ServerError
from sync_pipeline.load.apply import apply_plan
from sync_pipeline.load.plan import compute_plan
from sync_pipeline.warehouse.db import connect

DESIRED = "SELECT 'k1' AS our_key, '{\"name\": \"A\"}' AS payload, NULL::VARCHAR AS blocked"


class GhostThenBrokenUpdate:
    """The target stored the create but answered 502; the lookup finds it; every update answers 502."""

    def __init__(self):
        self.stored: list[str] = []

    def create(self, item):
        self.stored.append(item.our_key)
        raise ServerError("502", system="t", endpoint="POST /x", status_code=502)

    def find(self, item):
        return "T1" if item.our_key in self.stored else None

    def update(self, target_id, item):
        raise ServerError("502", system="t", endpoint="PUT /x", status_code=502)


def test_a_found_record_whose_update_fails_keeps_its_target_id_and_is_not_created_again(tmp_path):
    writer = GhostThenBrokenUpdate()
    with connect(tmp_path / "w.duckdb") as conn:
        plan = compute_plan(conn, connection="c", entity="clients", desired_sql=DESIRED, params={})
        result = apply_plan(conn, plan, writer, run_id="r1", dry_run=False, error_budget=10)
        assert result.counts["failed"] == 1
        (target_id,) = conn.execute("SELECT target_id FROM sync.ledger WHERE our_key = 'k1'").fetchone()
        assert target_id == "T1"
        again = compute_plan(conn, connection="c", entity="clients", desired_sql=DESIRED, params={})
        assert dict(again.counts) == {"update": 1}  # an update of T1, never a second create
    assert writer.stored == ["k1"]

"""`sync-pipeline backfill` (issue 10, historical sync), over real HTTP against the sandbox: a 24-month backfill
loads every invoice once and makes one deal per selected invoice; killed half-way (SIGKILL) and run again, it runs
only the missing months and creates only what was missing; each month's materialization counts that month only;
a bad range is refused."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from sync_pipeline.cli import main
from sync_pipeline.config import DEFAULT_DEAL_KINDS, load_settings
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import F_TOKEN, S_TOKEN, TODAY, write_config
from sync_pipeline_tests.test_concurrent_writes import InFlight
from sync_pipeline_tests.test_dead_runs import _cli, home  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e
CONN = "fakturownia_to_sugester"
HISTORY = dg.AssetKey(["fakturownia", "invoice_history"])
FIRST, LAST = "2024-10", "2026-09"  # 24 months inside the demo's 26 (its today is 2026-11-20)
# `2025-03  6 invoices landed; clients: 2 created, 0 updated; deals: 5 created, 0 updated, 1 adopted; 1.9 s`
MONTH_LINE = re.compile(r"^(\d{4}-\d{2})  (\d+) invoices landed; .*deals: (\d+) created, (\d+) updated(?:, \d+ \w+)*; "
                        r"[\d.]+ s$")


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@pytest.fixture
def sandbox():
    """Small, but 26 months deep (a 24-month range needs more months than that)."""
    from sync_pipeline.sandbox.demo_data import DemoSpec
    from sync_pipeline.sandbox.server import Sandbox

    with Sandbox(spec=DemoSpec(seed=11, clients=10, invoices_per_client=12, months=26, today=TODAY),
                 fakturownia_token=F_TOKEN, sugester_token=S_TOKEN) as sb:
        yield sb


@pytest.fixture
def config(tmp_path, sandbox) -> Path:
    return write_config(tmp_path, sandbox.url, history_start="2024-10-01")


def _served(sandbox, first: str = FIRST, last: str = LAST) -> dict[int, dict]:
    """The invoices the Fakturownia simulator serves over HTTP with an issue month in the range."""
    with FakturowniaClient(system="check", base_url=f"{sandbox.url}/fakturownia", api_token=F_TOKEN) as api:
        return {i["id"]: i for page in api.iter_invoice_pages() for i in page if first <= i["issue_date"][:7] <= last}


def _expected_deals(served: dict[int, dict]) -> set[str]:
    return {f"fakturownia:{i}" for i, inv in served.items() if inv["kind"] in DEFAULT_DEAL_KINDS}


def _deal_keys(sandbox) -> list[str]:
    return [d["external_ids"]["sync_pipeline"] for d in sandbox.sugester.deals.values()]


def _deal_posts(sandbox) -> int:
    return sandbox.sugester.request_count("POST", r"/app/deals\.json")


def _month_lines(text: str) -> list[re.Match]:
    return [m for m in map(MONTH_LINE.match, text.splitlines()) if m]


def _backfill(config: Path, *args: str) -> int:
    return main(["backfill", CONN, "--config", str(config), *args])


def _instance(dagster_home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))


def _history_metadata(instance: dg.DagsterInstance, month: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=HISTORY, asset_partitions=[f"{month}-01"]), limit=1).records
    assert records, f"no materialization of {month}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_a_24_month_backfill_killed_half_way_and_resumed_loads_every_invoice_once_and_one_deal_each(
        config, sandbox, home):  # noqa: F811
    """The whole must-show in one 24-month backfill (each month costs a Dagster run: two backfills of 24 months
    doubled the suite's longest test): every invoice once, one deal per invoice of the selected kinds, a line
    and a partition with its own counts per month; SIGKILL half-way, and the same command runs only the
    missing months and creates only what was missing."""
    flight = InFlight(sandbox, 0.03)  # deal creates answer late, as over a network: the kill lands amid writes
    args = ("backfill", CONN, "--from", FIRST, "--to", LAST)
    proc = _cli(config, home, *args)
    printed: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            printed.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, (printed, proc.stderr.read())
        assert time.monotonic() < deadline, f"never got half-way: {printed}"
        done = len(_month_lines("".join(printed)))
        if done >= 14 or (done >= 12 and flight.now >= 1):  # half-way, a deal create in flight when there is one
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=5)
    first = [m.group(1) for m in _month_lines("".join(printed))]
    assert 12 <= len(first) < 24
    posts_before, deals_at_kill = _deal_posts(sandbox), len(sandbox.sugester.deals)

    rerun = _cli(config, home, *args, "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out + err
    summary = json.loads(out)
    again = [m.group(1) for m in _month_lines(err)]  # with --json the month lines go to stderr
    before = [m["month"] for m in summary["months"] if m["status"] == "done_before"]
    assert "resuming" in err and summary["resumed"] and summary["ok"]
    # only the missing months ran: those finished before the kill were skipped, the rest ran once, in order
    assert set(first) <= set(before) and len(before) <= len(first) + 1
    assert again == [m for m in _months(FIRST, LAST) if m not in before]
    assert summary["months_done_before"] + summary["months_run"] == 24 == len(before) + len(again)

    served = _served(sandbox)
    expected = _expected_deals(served)
    keys = _deal_keys(sandbox)
    assert len(keys) == len(set(keys)), "a deal was created twice"
    assert set(keys) == expected
    assert _deal_posts(sandbox) == len(expected) > posts_before  # each deal POSTed once over both commands
    assert summary["loads"]["deals"]["created"] == len(expected) - deals_at_kill  # only what was missing
    with connect(load_settings(config).warehouse_path) as conn:
        raw = conn.execute("SELECT source_id, count(*) FROM raw.fakturownia_invoices GROUP BY 1").fetchall()
        staged, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT invoice_key) FROM staging.invoices").fetchone()
    assert sorted(int(k) for k, _ in raw) == sorted(served) and {n for _, n in raw} == {1}
    assert staged == distinct == len(served)
    assert flight.calls == len(expected)
    assert 0 < len(expected) < len(served)  # proformas and the like are not deals
    assert len(served) > 80 and any(i["issue_date"][:7] > LAST for i in sandbox.fakturownia.invoices.values())
    with connect(load_settings(config).warehouse_path) as conn:
        staged_keys = conn.execute("SELECT invoice_key FROM staging.invoices").fetchall()
    assert sorted(k for (k,) in staged_keys) == sorted(f"fakturownia:{i}" for i in served)  # none outside the range
    per_month = Counter(i["issue_date"][:7] for i in served.values())
    with _instance(home) as instance:  # the run killed mid-month was closed (failed), not left running
        runs = instance.get_run_records(dg.RunsFilter(job_name=f"{CONN}_backfill_job"))
        assert all(r.dagster_run.is_finished for r in runs)
        assert sum(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs) == 24
        assert len({r.dagster_run.tags["sync/backfill"] for r in runs}) == 1  # one backfill over both commands
        assert not any("dagster/backfill" in r.dagster_run.tags for r in runs)  # no backfill record: not its tag
        # each month's partition carries that month's counts
        for month in _months(FIRST, LAST):
            meta = _history_metadata(instance, month)
            assert meta["records_landed"] == meta["records_received"] == per_month[month], month
            assert meta["window"].startswith(f"{month}-01 .. {month}-")


def test_a_range_of_months_in_one_run_gives_each_partition_its_own_counts(config, sandbox, instance):
    """A UI backfill of the history asset runs a range as one run (BackfillPolicy.single_run()): each month's
    materialization still counts that month only."""
    defs = build_definitions(config)
    job = defs.resolve_job_def("fakturownia_history_job")
    result = job.execute_in_process(instance=instance, tags={
        "dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-04-01"})
    assert result.success
    mats = {e.event_specific_data.materialization.partition: e.event_specific_data.materialization.metadata
            for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert sorted(mats) == ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]
    served = _served(sandbox, "2025-01", "2025-04")
    per_month = Counter(i["issue_date"][:7] for i in served.values())
    assert len(set(per_month.values())) > 1  # months differ, so a range-wide figure could not pass
    for key, meta in mats.items():
        month = key[:7]
        assert meta["records_landed"].value == meta["records_received"].value == per_month[month], month
        assert meta["pages_requested"].value >= 1
        assert meta["window"].value.startswith(f"{month}-01 .. {month}-")


def test_json_summary_rerun_restart_and_a_failed_month(config, sandbox, home, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    rng = ("--from", "2025-01", "--to", "2025-03")
    sandbox.fakturownia.fail_next(r"^/invoices\.json$", "html_200", times=3)  # max_attempts: the first month fails
    assert _backfill(config, *rng) == 1
    out = capsys.readouterr().out
    assert re.search(r"^2025-01  FAILED after [\d.]+ s: fakturownia__invoice_history: .*GET /invoices\.json", out,
                     re.M), out
    assert "3 of 3 months are missing. The same command resumes with them." in out

    assert _backfill(config, *rng, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ok"], summary["resumed"], summary["months_run"], summary["months_done_before"]) == \
           (True, True, 3, 0)
    served = _served(sandbox, "2025-01", "2025-03")
    assert summary["invoices_landed"] == len(served)
    assert summary["loads"]["deals"]["created"] == len(_expected_deals(served))
    assert [m["month"] for m in summary["months"]] == ["2025-01", "2025-02", "2025-03"]
    assert all(m["status"] == "done" and m["run_id"] for m in summary["months"])

    assert _backfill(config, *rng, "--json") == 0  # all done: nothing runs
    again = json.loads(capsys.readouterr().out)
    assert (again["months_run"], again["months_done_before"], again["backfill_id"]) == (0, 3, summary["backfill_id"])
    # the months done before carry the counts of the runs that did them
    assert [m["loads"]["deals"] for m in again["months"]] == [m["loads"]["deals"] for m in summary["months"]]
    assert [m["status"] for m in again["months"]] == ["done_before"] * 3

    posts = _deal_posts(sandbox)
    assert _backfill(config, *rng, "--restart", "--json") == 0  # every month again, under a new id; idempotent
    restarted = json.loads(capsys.readouterr().out)
    assert restarted["backfill_id"] != summary["backfill_id"] and restarted["months_run"] == 3
    deals = restarted["loads"]["deals"]
    assert (deals["created"], deals["updated"], deals["failed"]) == (0, 0, 0) and _deal_posts(sandbox) == posts


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "2024-13"), "--from '2024-13': expected a month as YYYY-MM"),
    (("--from", "2025-1"), "--from '2025-1': expected a month as YYYY-MM"),
    (("--from", "2025-03", "--to", "2025-01"), "--from 2025-03 is after --to 2025-01"),
    (("--from", "2024-09", "--to", "2025-01"),
     "--from 2024-09 is before the history_start of connection fakturownia_to_sugester (2024-10-01 in "),
    (("--from", "2025-01", "--to", "2999-01"), "--to 2999-01 is after the current month"),
])
def test_a_bad_range_is_refused_with_exit_2(tmp_path, capsys, args, message):
    config = write_config(tmp_path, "http://127.0.0.1:1", history_start="2024-10-01")
    assert _backfill(config, *args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "warehouse.duckdb").exists()  # refused before anything ran


def test_an_unknown_connection_is_a_configuration_error(tmp_path, capsys):
    config = write_config(tmp_path, "http://127.0.0.1:1")
    assert main(["backfill", "nope", "--config", str(config)]) == 2
    assert "no connection named nope" in capsys.readouterr().err


def test_the_backfill_job_is_the_flow_to_the_loads_with_a_month_of_history_for_the_change_reads(tmp_path):
    defs = build_definitions(write_config(tmp_path, "http://127.0.0.1:1", history_start="2024-10-01"))
    flow = set(defs.resolve_job_def(f"{CONN}_job").asset_layer.selected_asset_keys)
    job = defs.resolve_job_def(f"{CONN}_backfill_job")
    selected = set(job.asset_layer.selected_asset_keys)
    loads = {dg.AssetKey([CONN, "clients"]), dg.AssetKey([CONN, "deals"])}
    assert loads | {HISTORY, dg.AssetKey(["fakturownia", "clients"]), dg.AssetKey(["staging", "invoices"]),
                    dg.AssetKey(["metrics", "account_metrics"])} <= selected
    assert selected - {HISTORY} <= flow and dg.AssetKey(["fakturownia", "invoice_changes"]) not in selected
    assert dg.AssetKey(["staging", "unmatched_accounts"]) not in selected  # reports are left to the next sync
    assert job.partitions_def == defs.resolve_assets_def(HISTORY).partitions_def  # partitioned by the history's months
    assert job.tags["sync/connection"] == CONN
    # the checks that gate the writes run in every month, as in every sync
    assert {"staging_checks", "metrics_checks"} <= set(job.graph.node_dict)  # each layer's checks are one step
    outputs = {o.name for o in job.graph.node_dict["staging_checks"].definition.output_defs}
    assert {"staging__invoices_invoice_key_unique", "staging__invoices_invoice_has_account"} <= outputs

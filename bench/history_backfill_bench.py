"""History backfill benchmark (issue 10): what each month's own metadata costs in a range run, against the ways
Dagster could run the same months.

`<system>/invoice_history` keeps `BackfillPolicy.single_run()`: a UI backfill over N months is one run. Inside it
each month is now read and committed on its own, so that its materialization counts that month only. Measured,
each on a fresh warehouse file and Dagster instance, over the sandbox on 127.0.0.1 (real HTTP):

  split      the range as one run of the history job (the UI's single-run backfill), a landing per month (now)
  one read   the same months landed in one read and one commit, outside Dagster: the data path of a range run
             before (which emitted the same materialization per month, with the range's figures)
  split data the landing per month of `split`, outside Dagster: `split data − one read` is what the split costs
  per month  one run per month (what BackfillPolicy.multi_run(max_partitions_per_run=1) would launch), executed
             in process; under the daemon each run also starts a run worker process (measured: `import`)

    .venv/bin/python bench/history_backfill_bench.py                  # 2,000 clients x 12 invoices, 24 months
    .venv/bin/python bench/history_backfill_bench.py --clients 200    # a smoke run
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from sync_pipeline.defs.build import build_definitions
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.warehouse.db import connect
from sync_pipeline.warehouse.raw import RawLanding

TODAY = date(2026, 11, 20)
FIRST, MONTHS = date(2024, 10, 1), 24
TOKEN, S_TOKEN = "sandbox-token/demo", "sandbox-sugester-token/demo"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _config(folder: Path, url: str) -> Path:
    path = folder / "sync.yaml"
    path.write_text(textwrap.dedent(f"""\
        warehouse: {{path: {folder / 'warehouse.duckdb'}}}
        systems:
          fakturownia: {{type: fakturownia, base_url: {url}/fakturownia, api_token: "${{BENCH_F:-{TOKEN}}}"}}
          sugester: {{type: sugester, base_url: {url}/sugester, api_token: "${{BENCH_S:-{S_TOKEN}}}"}}
        connections:
          fakturownia_to_sugester: {{source: fakturownia, target: sugester, history_start: {FIRST.isoformat()}}}
        """))
    return path


def _keys() -> list[str]:
    keys, month = [], FIRST
    for _ in range(MONTHS):
        keys.append(month.isoformat())
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return keys


def _pages(events) -> int:
    return sum(e.event_specific_data.materialization.metadata["pages_requested"].value
               for e in events if e.event_type_value == "ASSET_MATERIALIZATION")


def split_run(url: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d, dg.instance_for_test() as instance:
        job = build_definitions(_config(Path(d), url)).resolve_job_def("fakturownia_history_job")
        keys = _keys()
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, run_config=QUIET, tags={
            "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})
        took = time.perf_counter() - started
        assert result.success
        return took, _pages(result.all_events)


def per_month_runs(url: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d, dg.instance_for_test() as instance:
        job = build_definitions(_config(Path(d), url)).resolve_job_def("fakturownia_history_job")
        started, pages = time.perf_counter(), 0
        for key in _keys():
            result = job.execute_in_process(instance=instance, run_config=QUIET, partition_key=key)
            assert result.success
            pages += _pages(result.all_events)
        return time.perf_counter() - started, pages


def _month_end(key: str) -> date:
    start = date.fromisoformat(key)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1) - timedelta(days=1)


def _land(url: str, windows: list[tuple[date, date]]) -> tuple[float, int]:
    from sync_pipeline.connectors.fakturownia.client import FakturowniaClient

    with tempfile.TemporaryDirectory() as d, connect(Path(d) / "warehouse.duckdb") as conn, \
            FakturowniaClient(system="fakturownia", base_url=f"{url}/fakturownia", api_token=TOKEN) as api:
        started = time.perf_counter()
        for first, last in windows:
            landing = RawLanding(conn, system="fakturownia", entity="invoices", run_id="bench")
            for page in api.iter_invoice_pages_issued_between(date_from=first, date_to=last):
                landing.add_page(page)
            landing.commit(window=(first, last))
        return time.perf_counter() - started, api.pages_requested


def one_read(url: str) -> tuple[float, int]:
    return _land(url, [(FIRST, _month_end(_keys()[-1]))])


def split_data(url: str) -> tuple[float, int]:
    return _land(url, [(date.fromisoformat(k), _month_end(k)) for k in _keys()])


def run_worker_start() -> float:
    """What a run worker process spends before its first step: start Python, import and load the definitions."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dagster, sync_pipeline.definitions as d; d.defs()"], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spec = DemoSpec(seed=5, clients=args.clients, invoices_per_client=12, months=26, today=TODAY)
    with Sandbox(spec=spec, fakturownia_token=TOKEN, sugester_token=S_TOKEN) as sb:
        invoices = len(sb.fakturownia.invoices)
        variants = {"split": split_run, "one read": one_read, "split data": split_data, "per month": per_month_runs}
        rows: dict[str, list[tuple[float, int]]] = {name: [] for name in variants}
        for _ in range(args.rounds):  # interleaved, so a busy moment of the shared machine hits every variant
            for name, measure in variants.items():
                rows[name].append(measure(sb.url))
    worker = min(run_worker_start() for _ in range(3))
    print(f"{MONTHS} months, {invoices} invoices in the sandbox ({args.clients} clients x 12), "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"dagster {dg.__version__}, {date.today()}")
    print("| variant | median s | min s | pages |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        secs = sorted(v[0] for v in values)
        print(f"| {name} | {secs[len(secs) // 2]:.2f} | {secs[0]:.2f} | {values[0][1]} |")
    print(f"run worker start (python + import + definitions, best of 3): {worker:.2f} s per run; "
          f"{MONTHS} runs under the daemon add about {MONTHS * worker:.0f} s to 'per month'")


if __name__ == "__main__":
    main()

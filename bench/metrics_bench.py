"""Metrics benchmark: the metrics stage over 1M invoices and 100k accounts (issue 3).

Requirement: "metrics over 1M invoices and 100k accounts complete in under 2 s of DuckDB time on
this machine, median of 3."

Setup (timed and reported, not the measured figure): the product's own demo generator builds native
Fakturownia clients and invoices, RawLanding lands them into a DuckDB file in a temp directory, and
rebuild_staging stages them. Measured: every function the metrics stage runs, in the order the
Dagster assets run them, 3 repetitions, each step timed separately and in total; the median counts.
The headline figure is taken on a fresh connection to the file (each asset opens its own); the same
runs on the setup connection, right after staging, are reported beside it.

    .venv/bin/python bench/metrics_bench.py            # full size, writes bench/results/metrics_<date>.md
    .venv/bin/python bench/metrics_bench.py --quick    # 1,000 clients, a smoke run
    .venv/bin/python bench/metrics_bench.py --keep-db  # keep the warehouse for profiling; --db PATH reuses one

Speed and memory are measured here, never in unit tests (bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from sync_pipeline.config import DEFAULT_ALERT_RULES, HealthSettings, MetricsSettings, WarehouseSettings
from sync_pipeline.sandbox.demo_data import DemoSpec, generate_fakturownia, paused_gc
from sync_pipeline.transform.metrics import (
    evaluate_risk_alerts,
    load_fx_rates,
    rebuild_account_metrics,
    rebuild_financial_health,
    rebuild_reporting_rollup,
)
from sync_pipeline.transform.staging import SourceSystemRef, rebuild_staging
from sync_pipeline.warehouse.db import connect
from sync_pipeline.warehouse.raw import RawLanding

TARGET_SECONDS = 2.0
REPETITIONS = 3
TODAY = date(2026, 11, 20)  # the generator's "today" and the metrics' as-of date
PAGE = 50_000               # records per RawLanding.add_page call
BENCH_DIR = Path(__file__).resolve().parent
STEPS = ("load_fx_rates", "rebuild_account_metrics", "rebuild_reporting_rollup", "rebuild_financial_health",
         "evaluate_risk_alerts")


# -- machine and process figures ------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def machine() -> dict[str, str]:
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    return {
        "nproc": nproc,
        "cpu": model,
        "memory": f"{mem_kib / 2**20:.1f} GiB",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_kib(field: str) -> int | None:
    for line in _read("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


_PEAK_BEFORE_RESETS = 0.0


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so a later read is the peak of one phase only. This also
    resets ru_maxrss, so the peak so far is kept first (process_peak_mib)."""
    global _PEAK_BEFORE_RESETS
    _PEAK_BEFORE_RESETS = max(_PEAK_BEFORE_RESETS, peak_rss_mib())
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def process_peak_mib() -> float:
    """Peak RSS of the whole run, across high-water-mark resets."""
    return max(_PEAK_BEFORE_RESETS, peak_rss_mib())


def hwm_mib() -> float | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def db_size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists()) / 2**20


def source_version() -> str:
    """The commit, and which files the measured code depends on differ from it (read-only git calls)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never let git rewrite the index
    root = BENCH_DIR.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", "sync_pipeline/transform",
                                  "sync_pipeline/warehouse", "sync_pipeline/config.py",
                                  "sync_pipeline/sandbox/demo_data.py"],
                                 cwd=root, env=env, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(f'`{c}`' for c in changed)}" if changed
                               else ", measured code unchanged from it")


def sql_fingerprint() -> str:
    """Digest of the metrics module and its SQL, read at call time: shows whether they changed mid-run."""
    root = Path(rebuild_account_metrics.__code__.co_filename).parent
    h = hashlib.sha256()
    for f in sorted([root / "metrics.py", *(root / "sql").glob("*.sql")]):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:12]


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# -- setup -----------------------------------------------------------------------------------------

def land(conn, entity: str, records: list[dict]) -> tuple[float, int]:
    """Land `records` in pages, emptying the list as it goes so memory is freed page by page."""
    received = len(records)
    t0 = time.perf_counter()
    landing = RawLanding(conn, system="fakturownia", entity=entity, run_id="bench")
    with paused_gc():
        while records:
            landing.add_page(records[:PAGE])
            del records[:PAGE]
    stats = landing.commit()
    elapsed = time.perf_counter() - t0
    if stats.landed != received:
        raise SystemExit(f"landing {entity}: {received} records, {stats.landed} landed")
    return elapsed, stats.landed


def setup(conn, db_path: Path, clients: int, per_client: int, log) -> dict:
    out: dict = {}
    t0 = time.perf_counter()
    data = generate_fakturownia(DemoSpec(seed=1, clients=clients, invoices_per_client=per_client, today=TODAY))
    out["generate_s"] = time.perf_counter() - t0
    out["generated_clients"], out["generated_invoices"] = len(data.clients), len(data.invoices)
    out["rss_after_generate_mib"] = rss_mib()
    out["peak_after_generate_mib"] = peak_rss_mib()
    log(f"generated {len(data.clients):,} clients, {len(data.invoices):,} invoices in {out['generate_s']:.1f} s "
        f"(RSS {out['rss_after_generate_mib']:,.0f} MiB)")

    out["land_clients_s"], _ = land(conn, "clients", data.clients)
    log(f"landed clients in {out['land_clients_s']:.1f} s")
    out["land_invoices_s"], _ = land(conn, "invoices", data.invoices)
    log(f"landed invoices in {out['land_invoices_s']:.1f} s")
    del data
    gc.collect()
    out["rss_after_landing_mib"] = rss_mib()

    t0 = time.perf_counter()
    stats = rebuild_staging(conn, [SourceSystemRef("fakturownia", "fakturownia", "source_id")], run_id="bench")
    out["staging_s"] = time.perf_counter() - t0
    out["quarantined"] = stats.total("clients", "quarantined") + stats.total("invoices", "quarantined")
    conn.execute("CHECKPOINT")
    out["db_after_staging_mib"] = db_size_mib(db_path)
    log(f"staged in {out['staging_s']:.1f} s; DuckDB file {out['db_after_staging_mib']:,.0f} MiB")
    return out


# -- the measured part -------------------------------------------------------------------------------

def metrics_once(conn, base_dir: Path) -> tuple[dict[str, float], float, dict]:
    """Every function of the metrics stage once, in the order the assets run them."""
    settings = MetricsSettings(fx_rates={"EUR": Decimal("4.30"), "USD": Decimal("3.95")})
    health = HealthSettings()
    # rebuild_financial_health takes `as_of` in newer versions of the module; pass it when accepted
    health_kw = {"as_of": TODAY} if "as_of" in inspect.signature(rebuild_financial_health).parameters else {}
    calls = (
        ("load_fx_rates", lambda: load_fx_rates(conn, settings, base_dir)),
        ("rebuild_account_metrics", lambda: rebuild_account_metrics(conn, as_of=TODAY)),
        ("rebuild_reporting_rollup", lambda: rebuild_reporting_rollup(conn, reporting_currency="PLN")),
        ("rebuild_financial_health", lambda: rebuild_financial_health(conn, reporting_currency="PLN", health=health,
                                                                          **health_kw)),
        ("evaluate_risk_alerts", lambda: evaluate_risk_alerts(conn, as_of=TODAY, rules=DEFAULT_ALERT_RULES)),
    )
    times, results = {}, {}
    start = time.perf_counter()
    for name, call in calls:
        t0 = time.perf_counter()
        results[name] = call()
        times[name] = time.perf_counter() - t0
    total = time.perf_counter() - start
    return times, total, results


def fresh_alerts_once(conn) -> tuple[float, dict]:
    conn.execute("DELETE FROM marts.risk_alerts")
    t0 = time.perf_counter()
    counts = evaluate_risk_alerts(conn, as_of=TODAY, rules=DEFAULT_ALERT_RULES)
    return time.perf_counter() - t0, counts


def row_counts(conn) -> dict[str, int]:
    queries = {
        "staging.invoices": "SELECT count(*) FROM staging.invoices",
        "staging.accounts": "SELECT count(*) FROM staging.accounts",
        "staging.quarantine": "SELECT count(*) FROM staging.quarantine",
        "marts.account_metrics (account × currency)": "SELECT count(*) FROM marts.account_metrics",
        "marts.account_metrics_reporting": "SELECT count(*) FROM marts.account_metrics_reporting",
        "marts.financial_health": "SELECT count(*) FROM marts.financial_health",
        "marts.risk_alerts, open": "SELECT count(*) FROM marts.risk_alerts WHERE status = 'open'",
        "marts.risk_alerts, all rows": "SELECT count(*) FROM marts.risk_alerts",
    }
    return {label: conn.execute(q).fetchone()[0] for label, q in queries.items()}


# -- one measured phase ------------------------------------------------------------------------------

def measure(conn, base_dir: Path, label: str, log) -> dict:
    """REPETITIONS runs of the whole metrics stage, then REPETITIONS risk-alert evaluations on an emptied
    marts.risk_alerts. Run 1 starts with marts.risk_alerts empty."""
    conn.execute("DELETE FROM marts.risk_alerts")
    gc.collect()
    ph = {"label": label, "rss_before": rss_mib(), "hwm_reset": reset_peak_rss(), "load_before": loadavg(),
          "reps": [], "totals": [], "results": [], "fresh": []}
    for i in range(REPETITIONS):
        times, total, res = metrics_once(conn, base_dir)
        ph["reps"].append(times)
        ph["totals"].append(total)
        ph["results"].append(res)
        log(f"{label}, run {i + 1}: total {total:.3f} s; " + ", ".join(f"{s} {times[s]:.3f}" for s in STEPS))
    for i in range(REPETITIONS):
        t, ph["fresh_counts"] = fresh_alerts_once(conn)
        ph["fresh"].append(t)
        log(f"{label}, risk alerts on an emptied table {i + 1}: {t:.3f} s ({ph['fresh_counts']})")
    ph["load_after"] = loadavg()
    ph["hwm"] = hwm_mib() if ph["hwm_reset"] else None
    ph["rss_after"] = rss_mib()
    ph["medians"] = {s: statistics.median(r[s] for r in ph["reps"]) for s in STEPS}
    ph["total_median"] = statistics.median(ph["totals"])
    ph["fresh_median"] = statistics.median(ph["fresh"])
    ph["fresh_total"] = sum(ph["medians"][s] for s in STEPS if s != "evaluate_risk_alerts") + ph["fresh_median"]
    return ph


# -- report ----------------------------------------------------------------------------------------

def fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


def phase_table(ph: dict) -> list[str]:
    reps, L = ph["reps"], []
    L.append("| step | " + " | ".join(f"run {i + 1}" for i in range(len(reps))) + " | median |")
    L.append("|---|" + "---:|" * (len(reps) + 1))
    for s in STEPS:
        L.append(f"| `{s}` | " + " | ".join(fmt(r[s]) for r in reps) + f" | **{fmt(ph['medians'][s])}** |")
    L.append("| **total** | " + " | ".join(fmt(t) for t in ph["totals"]) + f" | **{fmt(ph['total_median'])}** |")
    L.append("")
    r1, r2 = ph["results"][0]["evaluate_risk_alerts"], ph["results"][-1]["evaluate_risk_alerts"]
    L.append(f"Risk alerts: run 1 evaluates {TODAY} on an empty `marts.risk_alerts` (opened {r1['opened']:,}); "
             f"runs 2 and 3 re-evaluate the same date with those alerts already open (opened {r2['opened']:,}, "
             f"open {r2['open']:,}: the UPDATE path, as on the next day's run). "
             f"On an emptied `marts.risk_alerts` (`DELETE FROM marts.risk_alerts` before each, not timed): "
             + ", ".join(fmt(f) for f in ph["fresh"]) + f" s, median **{fmt(ph['fresh_median'])} s** "
             f"(opened {ph['fresh_counts']['opened']:,}); the total with that figure in place of the alerts "
             f"median is {fmt(ph['fresh_total'])} s.")
    L.append("")
    L.append(f"Load average (1/5/15 min) before: {ph['load_before']}; after: {ph['load_after']}.")
    L.append("")
    return L


def verdict(ph: dict) -> str:
    ok = ph["total_median"] < TARGET_SECONDS
    return (f"**{'PASS' if ok else 'FAIL'}** ({ph['label']}): total median {fmt(ph['total_median'])} s "
            f"{'<' if ok else '>='} {TARGET_SECONDS:g} s")


def report(args, info: dict, setup_out: dict | None, phases: list[dict], counts: dict[str, int], duck: dict,
           mem: dict, expected: tuple[int, int]) -> tuple[str, bool]:
    main = phases[-1]  # the fresh connection: how the Dagster assets run
    passed = main["total_median"] < TARGET_SECONDS
    exp_invoices, exp_accounts = expected
    sizes_ok = counts["staging.invoices"] == exp_invoices and counts["staging.accounts"] == exp_accounts
    cmd = "python " + shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    L = []
    L.append(f"# Metrics benchmark, {date.today().isoformat()}")
    L.append("")
    L.append("Requirement (issue 3): metrics over 1M invoices and 100k accounts complete in under "
             f"{TARGET_SECONDS:g} s of DuckDB time on this machine, median of {REPETITIONS}.")
    L.append("")
    L.append(verdict(main) + f" target ({counts['staging.invoices']:,} invoices, {counts['staging.accounts']:,} "
             f"accounts{'' if sizes_ok else f'; NOT the requested {exp_invoices:,} / {exp_accounts:,}'}).")
    for ph in phases[:-1]:
        L.append("")
        L.append(verdict(ph) + ".")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- date: {date.today().isoformat()} (run started {info['started']} UTC)")
    L.append(f"- CPUs (`nproc`): {info['nproc']}; model: {info['cpu']}")
    L.append(f"- memory: {info['memory']}; {info['os']}")
    L.append(f"- Python {info['python']}, duckdb {info['duckdb']} (threads={duck['threads']}, "
             f"memory_limit={duck['memory_limit']})")
    L.append(f"- code: {info['source']}")
    if info["fingerprint"][0] != info["fingerprint"][-1]:
        L.append(f"- WARNING: `transform/metrics.py` or `transform/sql/*.sql` changed during the run "
                 f"({info['fingerprint'][0]} → {info['fingerprint'][-1]}); the timings may mix two versions")
    L.append("- the machine is shared: other work may run at the same time (load averages below)")
    L.append("")
    L.append("## Command")
    L.append("")
    L.append(f"    {cmd}")
    L.append("")
    if setup_out is not None:
        L.append(f"Input: `generate_fakturownia(DemoSpec(seed=1, clients={args.clients:_}, "
                 f"invoices_per_client={args.invoices_per_client}, today=date(2026, 11, 20)))`, landed with "
                 f"`RawLanding` in pages of {PAGE:,}, staged with `rebuild_staging`.")
    else:
        L.append("Input: the existing warehouse given with `--db` (setup skipped).")
    L.append(f"Metrics as of {TODAY}, FX rates EUR 4.30 and USD 3.95 (reporting currency PLN), `HealthSettings()`, "
             "`DEFAULT_ALERT_RULES`; each call timed with `time.perf_counter()` (the functions are thin Python "
             "around DuckDB SQL, so this is DuckDB time).")
    L.append("")
    for n, ph in enumerate(reversed(phases)):
        if n == 0:
            L.append("## Measured: the metrics stage on a fresh connection (seconds)")
            L.append("")
            L.append("The setup connection is closed and the file reopened with `connect(path)`, as each Dagster "
                     "metrics asset opens its own connection. Run 1 therefore also reads `staging.invoices` "
                     "from the file into DuckDB's buffer pool.")
        else:
            L.append("## For comparison: the same stage on the setup connection (seconds)")
            L.append("")
            L.append("Measured right after staging on the connection that landed and staged the data "
                     "(its temp tables and buffers still alive), before the fresh connection above.")
        L.append("")
        L.extend(phase_table(ph))
    L.append("## Sizes")
    L.append("")
    L.append("| table | rows |")
    L.append("|---|---:|")
    for label, n in counts.items():
        L.append(f"| {label} | {n:,} |")
    L.append("")
    missing = sum(v["accounts"] for v in main["results"][-1]["rebuild_reporting_rollup"].missing_rates.values())
    if setup_out is not None:
        L.append(f"Generated {setup_out['generated_clients']:,} clients and {setup_out['generated_invoices']:,} "
                 f"invoices; quarantined at staging: {setup_out['quarantined']:,}.")
    L.append(f"Accounts with an amount left out of the rollup for want of an FX rate: {missing:,}.")
    L.append("")
    L.append("## Memory and disk")
    L.append("")
    L.append(f"- peak RSS of the process (`resource.getrusage`, whole run including setup): "
             f"**{process_peak_mib():,.0f} MiB**")
    if setup_out is not None:
        L.append(f"  - after generation: RSS {setup_out['rss_after_generate_mib']:,.0f} MiB "
                 f"(peak so far {setup_out['peak_after_generate_mib']:,.0f} MiB); after landing and freeing the "
                 f"Python lists: RSS {setup_out['rss_after_landing_mib']:,.0f} MiB")
    for ph in phases:
        if ph["hwm"] is not None:
            L.append(f"  - measured part, {ph['label']}: peak RSS {ph['hwm']:,.0f} MiB (VmHWM reset before it); "
                     f"RSS before {ph['rss_before']:,.0f} MiB, after {ph['rss_after']:,.0f} MiB")
    if setup_out is not None:
        L.append(f"- DuckDB file: {setup_out['db_after_staging_mib']:,.0f} MiB after staging (raw JSON payloads + "
                 f"staging, after `CHECKPOINT`), {mem['db_after_metrics']:,.0f} MiB after the metrics runs")
    else:
        L.append(f"- DuckDB file: {mem['db_after_metrics']:,.0f} MiB after the metrics runs")
    L.append("")
    if setup_out is not None:
        L.append("## Setup (not the measured figure)")
        L.append("")
        L.append("| phase | seconds |")
        L.append("|---|---:|")
        L.append(f"| `generate_fakturownia` | {setup_out['generate_s']:.1f} |")
        L.append(f"| land clients (`RawLanding.add_page` + `commit`) | {setup_out['land_clients_s']:.1f} |")
        L.append(f"| land invoices (`RawLanding.add_page` + `commit`) | {setup_out['land_invoices_s']:.1f} |")
        L.append(f"| `rebuild_staging` | {setup_out['staging_s']:.1f} |")
        L.append("")
    return "\n".join(L), passed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--invoices-per-client", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="1,000 clients: a smoke run (report not written)")
    p.add_argument("--out", type=Path, help="where to write the report (default bench/results/metrics_<date>.md; "
                                            "other sizes get a _<clients>x<per client> suffix)")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--keep-db", action="store_true", help="keep the temp DuckDB file (path printed) for profiling")
    p.add_argument("--db", type=Path, help="measure an existing staged warehouse instead (setup skipped; "
                                           "its marts are rebuilt; report not written unless --out)")
    args = p.parse_args(argv)
    if args.quick:
        args.clients = 1_000
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    info = machine()
    info["source"] = source_version()
    info["fingerprint"] = [sql_fingerprint()]
    info["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    tmp = Path(tempfile.mkdtemp(prefix="metrics_bench_"))
    db_path = args.db or tmp / "warehouse.duckdb"
    phases, setup_out = [], None
    try:
        if args.db is None:
            with connect(db_path) as conn:
                setup_out = setup(conn, db_path, args.clients, args.invoices_per_client, log)
                phases.append(measure(conn, tmp, "setup connection", log))
                conn.execute("CHECKPOINT")
        # the measured connection is opened as a run opens it: with the warehouse's memory limit (sync.yaml default)
        with connect(db_path, config={"memory_limit": WarehouseSettings().memory_limit}) as conn:
            duck = {k: conn.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in ("threads", "memory_limit")}
            phases.append(measure(conn, tmp, "fresh connection", log))
            info["fingerprint"].append(sql_fingerprint())
            counts = row_counts(conn)
            conn.execute("CHECKPOINT")
        mem = {"db_after_metrics": db_size_mib(db_path)}
        text, passed = report(args, info, setup_out, phases, counts, duck, mem,
                              (args.clients * args.invoices_per_client, args.clients))
    finally:
        if args.keep_db and args.db is None:
            log(f"kept {db_path}")
        for f in tmp.iterdir():
            if not (args.keep_db and f == db_path):
                f.unlink()
        if not any(tmp.iterdir()):
            tmp.rmdir()

    print(text)
    if args.out or not (args.no_write or args.quick or args.db):
        default = args.clients == 100_000 and args.invoices_per_client == 10
        suffix = "" if default else f"_{args.clients}x{args.invoices_per_client}"
        out = args.out or BENCH_DIR / "results" / f"metrics_{date.today().isoformat()}{suffix}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        log(f"wrote {out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

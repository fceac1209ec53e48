"""Scale benchmark (`make bench`): Fakturownia → Sugester at scale, side by side with the floor and dlt.

One sandbox process serves the data (the product's demo generator, Fakturownia shape, `per_page` 100, loopback
HTTP). Each contestant runs as its own process; its wall time and peak RSS (ru_maxrss from wait4) are taken.
Rounds are interleaved (floor, ours, dlt, … then again), so a slow minute of a shared machine hits all of them.

Contestants, each round:
  floor          bench/scale/floor.py: every page our extract reads, downloaded and thrown away
  ours_initial   `sync-pipeline run --dry-run` on an empty warehouse: extract + staging + metrics + plan
  ours_nothing   the same again, nothing changed
  ours_1pct      after 1 % of the invoices changed (payments)
  dlt_parquet    dlt's rest_api source into DuckDB, parquet loader (bench/scale/dlt_run.py, its own venv)
  dlt_default    the same with dlt's default loader
Per-step times of our runs (extract, staging, metrics, plan) are read from the Dagster event log.
Then, once: a real load of the deals into the Sugester simulator, with write concurrency 1 and the default,
counted in the simulator (deals, distinct keys).

    .venv/bin/python bench/scale_bench.py --clients 100000 --invoices-per-client 10 --rounds 3
    .venv/bin/python bench/scale_bench.py --clients 2000 --invoices-per-client 10 --rounds 1   # a quick look

Results: appended to bench/RESULTS.md (one section per run: machine, date, commit, command) and the raw
figures to bench/results/scale_<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
DLT_VENV = REPO / "bench" / ".venv-dlt"


class Server:
    def __init__(self, clients: int, per_client: int, seed: int, write_latency_ms: float = 0.0):
        self.proc = subprocess.Popen(
            [PY, str(REPO / "bench/scale/serve.py"), "--clients", str(clients), "--invoices-per-client",
             str(per_client), "--seed", str(seed), "--write-latency-ms", str(write_latency_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.info = json.loads(self.proc.stdout.readline())

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self.ask("quit")
        except Exception:
            pass
        self.proc.wait(timeout=60)


def measure_rss(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run `cmd`: its wall time, its own peak RSS from wait4 (the child only, not the sandbox), its stdout."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    # read the pipes while it runs, so it never blocks on a full pipe
    import threading

    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def pump(stream, key):
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    threads = [threading.Thread(target=pump, args=(proc.stdout, "out")),
               threading.Thread(target=pump, args=(proc.stderr, "err"))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = b"".join(chunks["out"]).decode(), b"".join(chunks["err"]).decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))}… failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": round(wall, 2), "rss_mib": round(usage.ru_maxrss / 1024), "stdout": out}


class Ours:
    """A project directory with a sync.yaml pointing at the bench server, and its own Dagster home."""

    def __init__(self, root: Path, server: Server, *, write_concurrency: int | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        url = server.info["url"]
        sugester = {"type": "sugester", "base_url": f"{url}/sugester", "api_token": "${BENCH_SUGESTER_TOKEN}"}
        if write_concurrency is not None:
            sugester["write_concurrency"] = write_concurrency
        doc = {
            "warehouse": {"path": str(root / "warehouse.duckdb")},
            "metrics": {"reporting_currency": "PLN",
                        "fx_rates_csv": str(REPO / "sync_pipeline/sandbox/fx_rates.csv")},
            "systems": {
                "fakturownia": {"type": "fakturownia", "base_url": f"{url}/fakturownia",
                                "api_token": "${BENCH_FAKTUROWNIA_TOKEN}", "per_page": 100,
                                "timeout_seconds": 120},
                "sugester": sugester,
            },
            "connections": {"fakturownia_to_sugester": {"source": "fakturownia", "target": "sugester",
                                                        "schedule": "manual", "error_budget": 1000}},
        }
        (root / "sync.yaml").write_text(json.dumps(doc, indent=2))  # JSON is YAML
        shutil.copyfile(REPO / "dagster.yaml", root / "dagster.yaml")
        self.env = {"DAGSTER_HOME": str(root / "dagster_home"), "BENCH_FAKTUROWNIA_TOKEN": server.info["fakturownia_token"],
                    "BENCH_SUGESTER_TOKEN": server.info["sugester_token"]}

    def launch(self, *, dry_run: bool) -> dict:
        """The connection job as the UI starts it: submitted to the instance, executed by a run worker process
        (`dagster api execute_run`) loading the code location; timed from the run's creation to its end."""
        home = Path(self.env["DAGSTER_HOME"])
        ui_home = home.parent / "ui_home"  # the default run coordinator launches at once (no daemon to dequeue)
        ui_home.mkdir(exist_ok=True)
        # the project's instance settings (pools), with runs launched at once instead of queued for a daemon
        (ui_home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text().replace(
            "class: QueuedRunCoordinator", "class: DefaultRunCoordinator"))
        env = {**self.env, "DAGSTER_HOME": str(ui_home), "SYNC_PIPELINE_CONFIG": str(self.root / "sync.yaml")}
        config = {"resources": {"run_options": {"config": {"dry_run": dry_run}}}}
        code = (
            "import json, subprocess, sys, time, dagster as dg\n"
            "t = time.monotonic()\n"
            "subprocess.run([sys.argv[1], 'job', 'launch', '-w', sys.argv[2], '-j', 'fakturownia_to_sugester_job',"
            " '--config-json', sys.argv[3]], check=True, capture_output=True)\n"
            "inst = dg.DagsterInstance.get()\n"
            "while True:\n"
            "    run = inst.get_runs(limit=1)[0]\n"
            "    if run.is_finished: break\n"
            "    if time.monotonic() - t > 1800: sys.exit(f'run {run.run_id} still {run.status.value} after 30 min')\n"
            "    time.sleep(0.05)\n"
            "rec = inst.get_run_records(limit=1)[0]\n"
            "# from the run's creation (the click in the UI) to its end; the launching CLI's own start-up is not\n"
            "# part of the UI's path (the webserver has the code loaded already)\n"
            "took = rec.end_time - rec.create_timestamp.timestamp()\n"
            "print(json.dumps({'seconds': round(took, 2), 'status': run.status.value}))\n")
        started = time.monotonic()
        out = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code, str(REPO / ".venv/bin/dagster"),
                              str(REPO / "workspace.yaml"), json.dumps(config)], env={**os.environ, **env},
                             cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"UI-style launch failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["wall"] = round(time.monotonic() - started, 2)
        return result

    def run(self, *, dry_run: bool) -> dict:
        cmd = [str(REPO / ".venv/bin/sync-pipeline"), "run", "--json", "--config", str(self.root / "sync.yaml")]
        if dry_run:
            cmd.append("--dry-run")
        result = measure_rss(cmd, env=self.env, cwd=self.root)
        summary = json.loads(result.pop("stdout"))
        if not summary["ok"]:
            raise RuntimeError(f"our run failed: {summary['connections']}")
        conn = summary["connections"]["fakturownia_to_sugester"]
        result["deals"] = {k: conn["deals"][k] for k in ("created", "updated", "unchanged", "failed", "unknown")}
        result["invoices_extracted"] = summary["systems"]["fakturownia"]["invoices"]["extracted"]
        result["steps"] = step_times(self.env["DAGSTER_HOME"], conn["run_id"])
        return result


def step_times(home: str, run_id: str) -> dict:
    """Seconds per stage of a run, from its step events (read in a child: the instance is the product's)."""
    code = (
        "import json, sys, dagster as dg\n"
        "inst = dg.DagsterInstance.from_config(sys.argv[1])\n"
        "t = {}\n"
        "for r in inst.all_logs(sys.argv[2], of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}):\n"
        "    t.setdefault(r.step_key, []).append(r.timestamp)\n"
        "print(json.dumps({k: max(v) - min(v) for k, v in t.items()}))\n")
    out = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code, home, run_id], capture_output=True, text=True,
                         check=True).stdout
    steps = json.loads(out)
    stage = {"extract": 0.0, "staging": 0.0, "metrics": 0.0, "plan": 0.0}
    for key, seconds in steps.items():
        if key.startswith("fakturownia__"):
            stage["extract"] += seconds
        elif key.startswith("staging"):
            stage["staging"] += seconds
        elif key.startswith("metrics__"):
            stage["metrics"] += seconds
        elif key.startswith("fakturownia_to_sugester__"):
            stage["plan"] += seconds
    return {k: round(v, 2) for k, v in stage.items()}


def dlt_run(root: Path, server: Server, loader: str) -> dict:
    py = DLT_VENV / "bin" / "python"
    if not py.exists():
        raise FileNotFoundError(f"no dlt environment at {DLT_VENV}: make bench creates it")
    root.mkdir(parents=True, exist_ok=True)
    cmd = [str(py), str(REPO / "bench/scale/dlt_run.py"), server.info["url"] + "/fakturownia",
           server.info["fakturownia_token"], str(root), loader]
    result = measure_rss(cmd, cwd=root)
    result["rows"] = json.loads(result.pop("stdout").strip().splitlines()[-1])
    return result


def summarise(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "n": len(values)}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, Python {platform.python_version()}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--invoices-per-client", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", default="floor,ours,dlt_parquet,dlt_default",
                   help="comma-separated contestants (floor, ours, dlt_parquet, dlt_default)")
    p.add_argument("--write-clients", type=int, default=1_000,
                   help="clients (×10 invoices, about 9 deals each) for the real-write phase; 0 skips it")
    p.add_argument("--write-latency-ms", type=float, default=20.0,
                   help="round-trip latency of the Sugester simulator in the real-write phase")
    p.add_argument("--write-concurrency", default="1,4,8",
                   help="write_concurrency values to compare in the real-write phase (4 is the default)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = p.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    started = datetime.now(timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"generating {args.clients * args.invoices_per_client:,} invoices for {args.clients:,} clients…", flush=True)
    t = time.monotonic()
    server = Server(args.clients, args.invoices_per_client, args.seed)
    print(f"  serving {server.info['invoices']:,} invoices at {server.info['url']} "
          f"({time.monotonic() - t:.0f} s to generate)", flush=True)
    rows: dict[str, list[dict]] = {}
    try:
        for n in range(1, args.rounds + 1):
            if "floor" in only:
                r = measure_rss([PY, str(REPO / "bench/scale/floor.py"), server.info["url"] + "/fakturownia",
                                 server.info["fakturownia_token"]])
                r.update(json.loads(r.pop("stdout")))
                rows.setdefault("floor", []).append(r)
                print(f"round {n} floor: {r['seconds']} s, {r['rss_mib']} MiB, {r['pages']} pages", flush=True)
            if "ours" in only:
                ours = Ours(tmp / f"ours_{n}", server)
                for phase, prepare in (("ours_initial", None), ("ours_nothing", None), ("ours_1pct", "touch 0.01")):
                    if prepare:
                        server.ask(prepare)
                    r = ours.run(dry_run=True)
                    rows.setdefault(phase, []).append(r)
                    print(f"round {n} {phase}: {r['seconds']} s, {r['rss_mib']} MiB, steps {r['steps']}, "
                          f"deals {r['deals']}", flush=True)
                if not args.keep:
                    shutil.rmtree(ours.root, ignore_errors=True)
            for loader in ("parquet", "default"):
                if f"dlt_{loader}" in only:
                    r = dlt_run(tmp / f"dlt_{loader}_{n}", server, loader)
                    rows.setdefault(f"dlt_{loader}", []).append(r)
                    print(f"round {n} dlt_{loader}: {r['seconds']} s, {r['rss_mib']} MiB, rows {r['rows']}", flush=True)
                    if not args.keep:
                        shutil.rmtree(tmp / f"dlt_{loader}_{n}", ignore_errors=True)
    finally:
        server.close()

    writes, ui_vs_cli = [], []
    if args.write_clients and "ours" in only:
        server = Server(args.write_clients, 10, args.seed + 1, args.write_latency_ms)
        try:
            for concurrency in [int(c) for c in args.write_concurrency.split(",")]:
                server.ask("reset_sugester")
                ours = Ours(tmp / f"write_{concurrency}", server, write_concurrency=concurrency)
                r = ours.run(dry_run=False)
                r["counts"] = server.ask("counts")
                r["write_concurrency"] = concurrency
                r["latency_ms"] = args.write_latency_ms
                writes.append(r)
                print(f"real load, write concurrency {concurrency}: {r['seconds']} s "
                      f"(plan+writes {r['steps']['plan']} s), {r['counts']}", flush=True)
            # a small connection from the UI versus the CLI, nothing changed, dry run, alternating
            ours = Ours(tmp / "ui_vs_cli", server)
            ours.run(dry_run=True)
            for _ in range(args.rounds):
                cli = ours.run(dry_run=True)["seconds"]
                ui = ours.launch(dry_run=True)
                if ui["status"] != "SUCCESS":
                    raise RuntimeError(f"UI-style run ended {ui['status']}")
                ui_vs_cli.append({"cli": cli, "ui": ui["seconds"]})
                print(f"UI-style launch {ui['seconds']} s, CLI {cli} s", flush=True)
        finally:
            server.close()

    report = {"date": started.isoformat(timespec="seconds"), "commit": commit, "machine": machine(),
              "command": " ".join(sys.argv), "invoices": args.clients * args.invoices_per_client,
              "clients": args.clients, "rows": rows, "writes": writes,
              "ui_vs_cli": ui_vs_cli}
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"scale_{started:%Y-%m-%dT%H%M}.json").write_text(json.dumps(report, indent=2))
    text = render(report)
    print(text)
    results = REPO / "bench" / "RESULTS.md"
    previous = results.read_text() if results.exists() else _HEADER
    results.write_text(previous.rstrip() + "\n\n" + text + "\n")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


_HEADER = """# Scale benchmark results

`make bench` (bench/scale_bench.py) appends one section per run; older sections stay, so the history shows.
Medians of interleaved rounds with min and max; ratios are per round (ours ÷ floor of the same round), then
the median of those. Peak RSS is the contestant's own process.
"""


def render(report: dict) -> str:
    rows = report["rows"]
    lines = [f"## {report['date']} — {report['invoices']:,} invoices, {report['clients']:,} clients",
             "", f"Machine: {report['machine']}. Commit {report['commit']}. Command: `{report['command']}`.", "",
             "| contestant | median s | min–max s | × floor (paired) | peak RSS MiB (max) | stages (median s) |",
             "|---|---|---|---|---|---|"]
    floor = [r["seconds"] for r in rows.get("floor", [])]
    for name, runs in rows.items():
        secs = [r["seconds"] for r in runs]
        s = summarise(secs)
        ratio = "-"
        if floor and name != "floor":
            pairs = [a / b for a, b in zip(secs, floor)]
            ratio = f"{statistics.median(pairs):.2f}"
        stages = "-"
        if runs and "steps" in runs[0]:
            stages = ", ".join(f"{k} {statistics.median(r['steps'][k] for r in runs):.1f}" for k in runs[0]["steps"])
        lines.append(f"| {name} | {s['median']} | {s['min']}–{s['max']} | {ratio} | "
                     f"{max(r['rss_mib'] for r in runs)} | {stages} |")
    if "ours_initial" in rows:
        for peer in ("dlt_parquet", "dlt_default"):
            if peer in rows:
                pairs = [b["seconds"] / a["seconds"] for a, b in zip(rows["ours_initial"], rows[peer])]
                lines.append(f"\n{peer} ÷ ours_initial (paired, median): {statistics.median(pairs):.2f}")
    writes = report.get("writes", [])
    if writes:
        lines += ["", f"Real load into the Sugester simulator ({writes[0]['latency_ms']:g} ms round trip per answer):", "",
                  "| write_concurrency | run s | plan + writes s | × one at a time | deals created | deals in simulator "
                  "| distinct keys |", "|---|---|---|---|---|---|---|"]
        one = next((w for w in writes if w["write_concurrency"] == 1), None)
        for w in writes:
            speed = f"{one['steps']['plan'] / w['steps']['plan']:.1f}" if one else "-"
            lines.append(f"| {w['write_concurrency']} | {w['seconds']} | {w['steps']['plan']} | {speed} | "
                         f"{w['deals']['created']} | {w['counts']['deals']} | {w['counts']['distinct_deal_keys']} |")
    pairs = report.get("ui_vs_cli", [])
    if pairs:
        ratio = statistics.median(p["ui"] / p["cli"] for p in pairs)
        lines.append(f"\nThe connection job launched as the UI does (run worker process, code location loaded), nothing "
                     f"changed, dry run: median {statistics.median(p['ui'] for p in pairs):.2f} s against "
                     f"{statistics.median(p['cli'] for p in pairs):.2f} s from the CLI; × CLI (paired, median) "
                     f"{ratio:.2f}.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

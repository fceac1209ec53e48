"""Fault soak: the default demo data served fault-free and with faults on every simulator, for several seeds.
Each round runs both connections until a run has nothing left to write, then compares every target field
by field with the fault-free twin: an initial load, then a round of payments and new edits applied to both.

    .venv/bin/python bench/reliability/fault_soak.py [--seeds 5] [--out bench/results]

Results: bench/results/fault_soak_<date>.json and .md (runs needed, faults injected by kind and simulator,
duplicates, differences). Exit code 1 when any round did not converge to the fault-free result.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sync_pipeline.cli.run import run_connections, summarize  # noqa: E402
from sync_pipeline.sandbox.demo_data import DemoSpec  # noqa: E402
from sync_pipeline.sandbox.faults import FaultPlan  # noqa: E402
from sync_pipeline.sandbox.server import Sandbox  # noqa: E402
from sync_pipeline.sandbox.snapshot import differences, duplicates, target_records  # noqa: E402
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace import sync_yaml  # noqa: E402

TODAY = date(2026, 11, 20)
MAX_RUNS = 10
SHARES = dict(server_error=0.10, rate_limit=0.10, reset=0.05, ghost_write=0.02, html=0.02, truncated=0.02,
              empty_page=0.05)


def _config(folder: Path, url: str) -> Path:
    """The shipped configuration against this sandbox, with small pages (many pages: more page faults)."""
    folder.mkdir(parents=True, exist_ok=True)
    retry = {"max_attempts": 6, "base_delay": 0.2, "max_delay": 5, "total_budget": 120}
    systems = {name: {"retry": retry} for name in ("fakturownia", "sugester", "zoho", "customersuccessbox")}
    systems["fakturownia"]["per_page"] = 25
    systems["zoho"]["per_page"] = 50
    path = folder / "sync.yaml"
    path.write_text(sync_yaml(folder / "warehouse.duckdb", url=url, systems=systems), encoding="utf-8")
    return path


def _sandbox(faults: FaultPlan | None) -> Sandbox:
    return Sandbox(spec=DemoSpec(seed=42, today=TODAY), zoho_spec=ZohoDemoSpec(today=TODAY), malformed_invoices=3,
                   faults={"*": faults} if faults else None)


def _settled(summary: dict) -> bool:
    return summary["ok"] and all(
        entity[k] == 0 for conn in summary["connections"].values() for entity in conn.values()
        if isinstance(entity, dict) and "created" in entity for k in ("created", "updated", "unknown", "failed"))


def _converge(config: Path, instance: dg.DagsterInstance) -> list[str]:
    """Run both connections until one run has nothing left to write; the outcome of each run."""
    outcomes = []
    for _ in range(MAX_RUNS):
        runs = run_connections(config, instance=instance, as_of=TODAY, notice=lambda line: None,
                               log_level="CRITICAL")
        summary = summarize(runs, config)
        outcomes.append("settled" if _settled(summary) else "; ".join(r.error or "ok, wrote" for r in runs))
        if outcomes[-1] == "settled":
            break
    return outcomes


def _change_sources(sandbox: Sandbox) -> None:
    """The same edits on both twins: payments on both sources, renamed clients."""
    f = sandbox.fakturownia
    for invoice_id in sorted(i for i, inv in f.invoices.items() if inv["status"] in ("issued", "sent"))[:15]:
        f.pay_invoice(invoice_id)
    for client_id in sorted(f.clients)[:5]:
        f.clients[client_id]["name"] += " (renamed)"
        f._touch(f.clients[client_id])
    z = sandbox.zoho
    for invoice_id in sorted(i for i, inv in z.invoices.items() if inv["status"] in ("sent", "overdue", "viewed"))[:15]:
        z.pay_invoice(invoice_id)


def soak(seed: int, work: Path) -> dict:
    plan = FaultPlan(**SHARES, retry_after=1, seed=seed)
    result = {"seed": seed, "rounds": []}
    with dg.DagsterInstance.ephemeral() as instance, _sandbox(None) as clean, _sandbox(plan) as faulty:
        clean_cfg, faulty_cfg = _config(work / f"clean_{seed}", clean.url), _config(work / f"faulty_{seed}", faulty.url)
        for round_name in ("initial load", "payments and renames"):
            if round_name != "initial load":
                _change_sources(clean)
                _change_sources(faulty)
            started = time.monotonic()
            clean_outcomes = _converge(clean_cfg, instance)
            faulty_outcomes = _converge(faulty_cfg, instance)
            expected, got = target_records(clean), target_records(faulty)
            result["rounds"].append({
                "round": round_name, "seconds": round(time.monotonic() - started, 1),
                "runs_fault_free": len(clean_outcomes), "runs_with_faults": len(faulty_outcomes),
                "outcomes": faulty_outcomes, "converged": faulty_outcomes[-1] == "settled",
                "records_compared": sum(len(v) for v in expected.values()),
                "duplicates": duplicates(got), "differences": differences(expected, got),
            })
        result["faults_injected"] = {name: dict(sim.faults_injected) for name, sim in faulty.simulators.items()
                                     if sim.faults_injected}
    return result


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    import os
    return f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def markdown(results: list[dict], when: str, machine: str) -> str:
    total = Counter()
    for r in results:
        for counts in r["faults_injected"].values():
            total.update(counts)
    lines = [f"# Fault soak, {when}", "", f"Machine: {machine}.", "",
             "Faults on every simulator, each request: " + ", ".join(f"{k} {v:.0%}" for k, v in SHARES.items())
             + " (Retry-After 1 s); page sizes 25 (Fakturownia) and 50 (Zoho), so listings have many pages. "
             "Twins: the same demo data fault-free.", "",
             "| seed | round | runs to settle (fault-free / faults) | records compared | duplicates | differences | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for rd in r["rounds"]:
            lines.append(f"| {r['seed']} | {rd['round']} | {rd['runs_fault_free']} / {rd['runs_with_faults']}"
                         f"{'' if rd['converged'] else ' (did not settle)'} | {rd['records_compared']} | "
                         f"{sum(len(v) for v in rd['duplicates'].values())} | {len(rd['differences'])} | {rd['seconds']} |")
    lines += ["", "Faults injected, all seeds: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # retries are counted in the results, not printed
    warnings.filterwarnings("ignore")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    results = []
    with tempfile.TemporaryDirectory(prefix="fault_soak_") as tmp:
        for seed in range(1, args.seeds + 1):
            r = soak(seed, Path(tmp))
            results.append(r)
            for rd in r["rounds"]:
                print(f"seed {seed} {rd['round']}: {rd['runs_with_faults']} runs, converged {rd['converged']}, "
                      f"{rd['records_compared']} records, {len(rd['differences'])} differences, "
                      f"{sum(len(v) for v in rd['duplicates'].values())} duplicates, {rd['seconds']} s", flush=True)
    machine = _machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fault_soak_{when}.json").write_text(json.dumps({"machine": machine, "date": when, "shares": SHARES,
                                                                 "results": results}, indent=2, default=str))
    text = markdown(results, when, machine)
    (args.out / f"fault_soak_{when}.md").write_text(text)
    print(text)
    ok = all(rd["converged"] and not rd["duplicates"] and not rd["differences"] for r in results for rd in r["rounds"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

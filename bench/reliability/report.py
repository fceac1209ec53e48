"""The results: every trial as JSON, and a Markdown summary per connection and mode."""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from runs import PHASES


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": model or platform.processor(), "cores": os.cpu_count()}


def failed(trial: dict) -> bool:
    """A trial counts against the pipeline when it saw a duplicate, a loss, a hang, a run that failed after
    the kill, or a check run that wrote something."""
    return bool(trial["duplicates"] or trial["missing"] or trial["hang"] or trial.get("run_failed")
                or trial["check_writes"])


def _fmt_phases(counter: Counter) -> str:
    order = [*PHASES, "after_run", "finished"]
    return ", ".join(f"{p} {counter[p]}" for p in order if counter.get(p)) or "-"


def summary_rows(trials: list[dict]) -> list[dict]:
    rows = []
    for key in sorted({(t["connection"], t["mode"]) for t in trials}):
        group = [t for t in trials if (t["connection"], t["mode"]) == key]
        rows.append({
            "connection": key[0], "mode": key[1], "trials": len(group),
            "kills": sum(1 for t in group if t["killed"]),
            "phases": Counter(t["phase"] if t["killed"] else "finished" for t in group),
            "triggers": Counter(t["trigger"] for t in group),
            "scopes": Counter(t["scope"] for t in group if t.get("scope")),
            "duplicates": sum(1 for t in group if t["duplicates"]),
            "losses": sum(1 for t in group if t["missing"]),
            "hangs": sum(1 for t in group if t["hang"]),
            "run_failed": sum(1 for t in group if t.get("run_failed")),
            "check_writes": sum(1 for t in group if t["check_writes"]),
            "seconds": round(sum(t["seconds"] for t in group) / len(group), 1),
            "dead_run_closed_s": [t["dead_run_closed_s"] for t in group if t.get("dead_run_closed_s") is not None],
            "slot_freed_s": [t["slot_freed_s"] for t in group if t.get("slot_freed_s") is not None],
            "closed_by": Counter(t["closed_by"] for t in group if t.get("closed_by")),
        })
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Crash trials, {result['date']}", "",
             f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores. Seed {result['seed']}; "
             f"{result['elapsed_s'] / 60:.1f} min in all. Re-run: `{result['make']}` "
             f"(or `{result['command']}`).", "",
             "| connection | mode | trials | kills by phase hit (trigger) | duplicates | losses | hangs | "
             "runs failed after | check run wrote | s/trial |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary_rows(result["trials"]):
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(r["triggers"].items()))
        if r["scopes"]:
            triggers += "; killed: " + ", ".join(f"{k} {v}" for k, v in sorted(r["scopes"].items()))
        lines.append(f"| {r['connection']} | {r['mode']} | {r['trials']} | {_fmt_phases(r['phases'])} ({triggers}) | "
                     f"{r['duplicates']} | {r['losses']} | {r['hangs']} | {r['run_failed']} | {r['check_writes']} | "
                     f"{r['seconds']} |")
    for r in summary_rows(result["trials"]):
        closed, freed = r["dead_run_closed_s"], r["slot_freed_s"]
        if closed:
            by = ", ".join(f"{k} {v}" for k, v in r["closed_by"].items())
            lines += ["", f"{r['connection']} under `dagster dev`: killed runs marked failed after "
                          f"{_range(closed)} s (by {by}); pool slot free after {_range(freed) if freed else '-'} s."]
    bad = [t for t in result["trials"] if failed(t) or t.get("unexpected") or t.get("quarantined_expected")
           or t.get("check_writes_excused")]
    if bad:
        lines += ["", "## Trials with findings", ""]
        for t in bad:
            lines.append(f"- {t['connection']} {t['mode']} #{t['trial']} ({t['trigger']}, {t['phase']}, "
                         f"killed run {str(t.get('killed_run'))[:8]}): " + "; ".join(_findings(t)))
    if result.get("harness_errors"):
        lines += ["", "## Harness errors (the trials above are those that ran)", ""]
        lines += [f"- {e.strip().splitlines()[-1] if e.strip() else e}" for e in result["harness_errors"]]
    lines += ["", "Faults injected: SIGKILL of the `sync-pipeline run` process (CLI) or of a scheduled run's worker "
                  "and, in some trials, its step processes (dev), at a random moment: uniformly over the whole run, "
                  "within a randomly chosen stage (extract, staging, metrics, writing: timed from that stage's "
                  "first step), or right after the target stored the k-th write of the run, before its answer "
                  "left (trigger `write`). Before each trial the sources change: new clients, contacts and "
                  "invoices, payments, renames."]
    return "\n".join(lines) + "\n"


def _range(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.0f}–{ordered[-1]:.0f} (median {ordered[len(ordered) // 2]:.0f})"


def _findings(t: dict) -> list[str]:
    out = []
    for what in ("duplicates", "missing"):
        for entity, keys in (t[what] or {}).items():
            out.append(f"{what} {entity}: {len(keys)} ({', '.join(keys[:5])})")
    if t["hang"]:
        out.append(f"hang: {t['hang']}")
    if t.get("run_failed"):
        out.append(f"run failed: {t['run_failed']}")
    if t["check_writes"]:
        out.append(f"check run wrote: {t['check_writes']}")
    for what in ("unexpected", "quarantined_expected"):
        for entity, keys in (t.get(what) or {}).items():
            out.append(f"{what} {entity}: {len(keys)} ({', '.join(list(keys)[:5])})")
    if t.get("check_writes_excused"):
        out.append(f"check run wrote, excused: {t['check_writes_excused']}")
    return out


def write_results(result: dict, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"reliability_{result['date']}"
    n = 1
    while (directory / f"{stem}.json").exists():  # never overwrite an earlier run of the same day
        n += 1
        stem = f"reliability_{result['date']}_{n}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path


def today() -> str:
    return datetime.now(UTC).date().isoformat()

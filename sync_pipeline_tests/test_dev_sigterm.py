"""Issue 13, "Sandbox lost on SIGTERM": `sync-pipeline dev` stopped with SIGTERM saves the sandbox's state and stops
every child process (`dagster dev`, its webserver and daemon), like Ctrl-C does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # a zombie is gone


def test_sigterm_saves_the_sandbox_and_stops_every_child(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("sync.yaml", "workspace.yaml", "dagster.yaml"):
        shutil.copy(REPO / name, project / name)
    text = (project / "sync.yaml").read_text().replace("sync_pipeline/sandbox/fx_rates.csv",
                                                       str(REPO / "sync_pipeline/sandbox/fx_rates.csv"))
    (project / "sync.yaml").write_text(text)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SYNC_SANDBOX_URL", "SYNC_PIPELINE_CONFIG")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen([sys.executable, "-m", "sync_pipeline.cli", "dev", "--config", str(project / "sync.yaml"),
                             "--port", str(port)], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the webserver answers: everything is up
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError("dagster dev did not come up")
        children = _descendants(proc.pid)
        assert len(children) >= 2, children  # dagster dev, its webserver and daemon
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = project / "var" / "sandbox_state.json"
    assert state.exists(), out
    saved = json.loads(state.read_text())
    assert saved["simulators"]["fakturownia"]["invoices"], "the sandbox's data was saved"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in children):
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)], f"left running: {[p for p in children if _alive(p)]}\n{out}"

"""Child processes of the harness: each in its own session (process group), always cleaned up.

Every child is started with start_new_session=True and remembered; `kill_all` (registered with atexit,
and called from the harness's finally) kills whatever is left, group by group.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path

_CHILDREN: list[subprocess.Popen] = []


def spawn(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, log: Path | None = None,
          capture: bool = True) -> subprocess.Popen:
    """Start `cmd` in a new session. stdout is piped when `capture` (the CLI's JSON), else appended to
    `log` with stderr; stderr goes to `log` or is dropped."""
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed right after the start
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE if capture else err, stderr=err,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    if log:
        err.close()  # the child has its own copy
    _CHILDREN.append(proc)
    return proc


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the child's whole process group (the child is its group leader)."""
    if proc.returncode is None:
        _signal_group(proc.pid, sig)


def stop_group(proc: subprocess.Popen, *, grace: float = 30.0) -> int | None:
    """SIGTERM the group, wait up to `grace` seconds, then SIGKILL what is left. Returns the exit code."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)  # grandchildren (dagster's daemon, webserver, code server) stop after the leader
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def kill_all() -> None:
    for proc in _CHILDREN:
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    _CHILDREN.clear()


atexit.register(kill_all)


# -- /proc -----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # fields from 3 on (state, ppid, pgrp, ...)


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for p in _all_pids():
        fields = _stat(p)
        if fields and fields[0] not in ("Z", "X"):
            parents.setdefault(int(fields[1]), []).append(p)
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (what is left of a child's session)."""
    out = []
    for p in _all_pids():
        fields = _stat(p)
        if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            out.append(p)
    return out


def kill_pids(pids: list[int]) -> list[int]:
    """SIGKILL each pid that is still there; returns those signalled."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            done.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return done


def with_environment(name: str, value: str) -> list[int]:
    """Live processes whose environment has `name=<value>...` (e.g. a DAGSTER_HOME under our directory):
    what a process that left its session would otherwise hide."""
    wanted = f"{name}={value}".encode()
    out = []
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(wanted) for var in environ.split(b"\0")) and alive(pid):
            out.append(pid)
    return out


def parent_of(pid: int) -> tuple[int | None, str]:
    """(parent pid, its command line, shortened): who would notice this process die."""
    fields = _stat(pid)
    if not fields:
        return None, ""
    ppid = int(fields[1])
    try:
        cmd = Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return ppid, cmd[:120]

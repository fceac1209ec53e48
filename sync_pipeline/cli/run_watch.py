"""Watch an in-process run from a side thread while Dagster executes it in the main thread.

Dagster waits for a pool slot in a loop that swallows SIGINT and SIGTERM, silently. The watcher says
who holds the slot, closes the holder if its process died meanwhile, and turns a swallowed Ctrl-C or
SIGTERM into a KeyboardInterrupt in the main thread, so the run stops and gives its place back.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import dagster as dg
from dagster._utils import interrupts as dagster_interrupts

from sync_pipeline.dead_runs import close_dead_runs

POLL_SECONDS = 1.0
WAIT_BEFORE_TELLING = 2.0     # a slot freed within this time needs no message
INTERRUPT_GRACE = 1.0         # Dagster acts on a captured interrupt itself between steps; give it this long


def _raise_in_thread(thread_id: int, exc: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


class RunWatch:
    def __init__(self, instance: dg.DagsterInstance, run_id: str, *, say: Callable[[str], None]):
        self.instance, self.run_id, self.say = instance, run_id, say
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{run_id[:8]}", daemon=True)
        self._told: set[tuple[str, str]] = set()
        self.interrupted = False

    def __enter__(self) -> RunWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        interrupt_seen: float | None = None
        while not self._stop.wait(POLL_SECONDS):
            try:
                if dagster_interrupts.check_captured_interrupt():
                    interrupt_seen = interrupt_seen or time.monotonic()
                    if time.monotonic() - interrupt_seen >= INTERRUPT_GRACE and self._main is not None:
                        self.interrupted = True
                        self.say(f"sync-pipeline: stopping run {self.run_id[:8]} while it waits for a pool slot")
                        _raise_in_thread(self._main, KeyboardInterrupt)
                        return
                else:
                    interrupt_seen = None
                self._check_waiting()
            except Exception as exc:  # the watcher must never take the run down
                self.say(f"sync-pipeline: run watcher: {type(exc).__name__}: {exc}")
                return

    def _check_waiting(self) -> None:
        storage = self.instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            return
        now = datetime.now(timezone.utc)
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            waiting = [p for p in info.pending_steps if p.run_id == self.run_id and p.assigned_timestamp is None
                       and (now - p.enqueued_timestamp).total_seconds() >= WAIT_BEFORE_TELLING]
            if not waiting:
                continue
            holders = sorted({slot.run_id for slot in info.claimed_slots if slot.run_id != self.run_id})
            if close_dead_runs(self.instance, say=self.say, exclude=[self.run_id]):
                continue  # a dead holder was closed: its slot is free now
            for holder in holders:
                if (key, holder) in self._told:
                    continue
                self._told.add((key, holder))
                self.say(f"sync-pipeline: waiting for pool {key!r}: {_describe(self.instance, holder)} holds it "
                         "(Ctrl-C stops waiting)")


def _describe(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]), limit=1)
    if not records:
        return f"run {run_id[:8]}"
    rec = records[0]
    run = rec.dagster_run
    trigger = run.tags.get("sync/trigger") or ("schedule" if run.tags.get("dagster/schedule_name") else "ui/daemon")
    since = (datetime.fromtimestamp(rec.start_time, timezone.utc).strftime("%H:%M:%S UTC") if rec.start_time
             else "not started")
    return f"run {run_id[:8]} ({run.tags.get('sync/connection', run.job_name)}, {trigger}, since {since})"

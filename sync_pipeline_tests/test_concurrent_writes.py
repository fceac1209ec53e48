"""Writes go to a target several at a time (issue 9), and a run killed in the middle of them loses nothing and
duplicates nothing: intent before send holds per record, whatever else is in flight."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from sync_pipeline_tests.conftest import run_sync, write_config
from sync_pipeline_tests.test_dead_runs import _cli, home  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


class InFlight:
    """Wraps a simulator's request handling: each request `matches` selects (by default a Sugester deal create)
    answers `seconds` late, as over a real network (outside the simulator's lock), and the most in flight at
    once is counted."""

    def __init__(self, sandbox_or_sim, seconds: float, matches=lambda req: req.method == "POST" and "deals" in req.path):
        sim = getattr(sandbox_or_sim, "sugester", sandbox_or_sim)
        self.handle, self.seconds, self.matches = sim.handle, seconds, matches
        self.now = self.most = self.calls = 0
        self.lock = threading.Lock()
        sim.handle = self

    def __call__(self, req):
        if not self.matches(req):
            return self.handle(req)
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.seconds)
            return self.handle(req)
        finally:
            with self.lock:
                self.now -= 1


def _deal_keys(sandbox) -> list[str]:
    return [d["external_ids"]["sync_pipeline"] for d in sandbox.sugester.deals.values()]


def test_creates_go_out_several_at_a_time_and_each_once(tmp_path, sandbox, instance):
    flight = InFlight(sandbox, 0.02)
    config = write_config(tmp_path, sandbox.url)
    runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    keys = _deal_keys(sandbox)
    assert len(keys) == len(set(keys)) == summary["connections"]["fakturownia_to_sugester"]["deals"]["created"] > 100
    assert flight.most == 8 and flight.calls == len(keys)  # write_concurrency defaults to 8


def test_a_run_killed_in_the_middle_of_concurrent_writes_loses_and_duplicates_nothing(tmp_path, sandbox, home):  # noqa: F811
    flight = InFlight(sandbox, 0.05)
    config = write_config(tmp_path, sandbox.url)
    proc = _cli(config, home, "run")
    deadline = time.monotonic() + 120
    # well into the deals, past the first chunks, at a moment when several creates are in flight
    while len(sandbox.sugester.deals) < 60 or flight.now < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got to the deals"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = len(sandbox.sugester.deals)

    rerun = _cli(config, home, "run")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out + err
    keys = _deal_keys(sandbox)
    assert len(keys) == len(set(keys)), "a deal was created twice"
    # nothing lost: every invoice that should be a deal is one
    served = sandbox.fakturownia.invoices.values()
    expected = {f"fakturownia:{i['id']}" for i in served
                if i["kind"] in ("vat", "vat_margin", "advance", "final", "receipt")}
    assert set(keys) == expected and written_before < len(expected)
    assert flight.most == 8

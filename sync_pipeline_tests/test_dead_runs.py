"""A run that died (SIGKILL) must never block the next one; a waiting run stops on SIGTERM (issue 7, defect 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from dagster._core.instance.ref import InstanceRef

from sync_pipeline.dead_runs import PID_STARTED_TAG, PID_TAG, HOST_TAG, close_dead_runs, find_dead_runs, process_started_at
from sync_pipeline_tests.conftest import TODAY, write_config

pytestmark = pytest.mark.e2e


def _cli(config: Path, home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("SYNC_SANDBOX_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sync_pipeline.cli", *args, "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _claimed_slots(home: Path) -> list:
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        storage = instance.event_log_storage
        return [slot for key in storage.get_concurrency_keys() for slot in storage.get_concurrency_info(key).claimed_slots]


def _wait_for_slot(home: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if _claimed_slots(home):
            return
        time.sleep(0.1)
    raise AssertionError("the run never claimed a pool slot")


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(Path(__file__).parents[1].joinpath("dagster.yaml").read_text())
    _claimed_slots(home)  # create the instance's storage now, not in two processes at once
    return home


def _slow_invoice_lists(sandbox, seconds: float, times: int | None = None):
    """Invoice lists answer `seconds` late (the first `times` of them, or all), so a run is reliably inside
    its extract step, holding the slot."""
    route = next(r for r in sandbox.fakturownia._routes if r.method == "GET" and r.pattern.pattern == r"/invoices\.json")
    handler = route.handler
    slowed = []

    def slow(req):
        if times is None or len(slowed) < times:
            slowed.append(1)
            time.sleep(seconds)
        return handler(req)

    route.handler = slow
    return sandbox


@pytest.fixture
def slow_sandbox(sandbox):
    return _slow_invoice_lists(sandbox, 3)


@pytest.fixture
def very_slow_sandbox(sandbox):
    return _slow_invoice_lists(sandbox, 15, times=1)


def test_a_run_killed_inside_a_step_does_not_block_the_next_run(tmp_path, slow_sandbox, home):
    config = write_config(tmp_path, slow_sandbox.url)
    killed = _cli(config, home, "run", "--as-of", TODAY.isoformat())
    _wait_for_slot(home, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert _claimed_slots(home), "the kill should have left the dead run's slot claimed"

    again = _cli(config, home, "run", "--as-of", TODAY.isoformat())
    try:
        out, err = again.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        again.kill()
        pytest.fail("the run after a killed run hung waiting for the dead run's pool slot")
    assert again.returncode == 0, err
    dead_lines = [line for line in err.splitlines() if "died without finishing" in line]
    assert len(dead_lines) == 1 and "marked it failed and freed its pool slots" in dead_lines[0]
    assert _claimed_slots(home) == []
    status = _cli(config, home, "status")
    out, _ = status.communicate(timeout=60)
    assert "Running" not in out


def test_sigterm_stops_a_run_waiting_for_a_slot_and_gives_its_place_back(tmp_path, very_slow_sandbox, home):
    config = write_config(tmp_path, very_slow_sandbox.url)
    holder = _cli(config, home, "run", "--as-of", TODAY.isoformat(), "--connection", "fakturownia_to_sugester")
    _wait_for_slot(home, holder)
    # The holder is alive, and slow: 15 s for its first page of invoices. The waiter must wait, and say for whom.
    waiter = _cli(config, home, "run", "--as-of", TODAY.isoformat())
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = waiter.stderr.readline()
        lines.append(line)
        if "waiting for pool 'duckdb'" in line:
            break
    assert "holds it" in lines[-1], lines
    waiter.send_signal(signal.SIGTERM)
    try:
        out, err = waiter.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        waiter.kill()
        pytest.fail("a run waiting for a pool slot ignored SIGTERM")
    assert waiter.returncode == 130, err
    assert "Traceback" not in err and "Stack Trace" not in err
    out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    assert _claimed_slots(home) == []


def _run_with_tags(instance: dg.DagsterInstance, tags: dict[str, str], at: float | None = None) -> dg.DagsterRun:
    @dg.op
    def noop():
        return None

    @dg.job
    def job():
        noop()

    run = instance.create_run_for_job(job, tags=tags)
    instance.handle_new_event(dg.EventLogEntry(  # what a run worker records when it starts
        error_info=None, level="DEBUG", user_message="", run_id=run.run_id, timestamp=at or time.time(),
        dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=os.getpid()),
    ))
    return instance.get_run_by_id(run.run_id)


def test_a_live_process_is_alive_and_a_reused_pid_is_not(instance):
    me = os.getpid()
    started = process_started_at(me)
    assert started is not None and started <= time.time()
    host = os.uname().nodename
    alive = _run_with_tags(instance, {HOST_TAG: host, PID_TAG: str(me), PID_STARTED_TAG: f"{started:.2f}"})
    assert alive.status == dg.DagsterRunStatus.STARTED
    assert find_dead_runs(instance) == []

    # The same pid recorded long before this process started belonged to another, gone process.
    reused = _run_with_tags(instance, {HOST_TAG: host, PID_TAG: str(me), PID_STARTED_TAG: "1000.00"}, at=1000.0)
    dead = find_dead_runs(instance)
    assert [d.run_id for d in dead] == [reused.run_id]
    said = []
    close_dead_runs(instance, say=said.append)
    assert instance.get_run_by_id(reused.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    assert len(said) == 1 and reused.run_id[:8] in said[0]


def test_runs_on_another_machine_are_left_alone(instance):
    other = _run_with_tags(instance, {HOST_TAG: "some-other-host", PID_TAG: "1", PID_STARTED_TAG: "1000.00"})
    assert find_dead_runs(instance) == []
    assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.STARTED


def test_the_sensor_closes_dead_runs_started_by_the_daemon(instance):
    from sync_pipeline.defs.sensors import close_dead_runs_sensor

    # A daemon-launched run has no pid tag: its run worker is known from its RUN_START event.
    dead = _run_with_tags(instance, {}, at=1000.0)
    result = close_dead_runs_sensor(dg.build_sensor_context(instance=instance))
    assert dead.run_id[:8] in result.skip_message
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert "no dead run" in close_dead_runs_sensor(dg.build_sensor_context(instance=instance)).skip_message


def test_recover_closes_a_named_run_by_hand(instance, monkeypatch, capsys, tmp_path):
    from sync_pipeline.dead_runs import force_close

    other = _run_with_tags(instance, {HOST_TAG: "some-other-host", PID_TAG: "1", PID_STARTED_TAG: "1000.00"})
    assert "marked failed, pool slots freed" in force_close(instance, other.run_id[:8])
    assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.FAILURE
    assert "no unfinished run" in force_close(instance, other.run_id[:8])


def test_two_first_ever_commands_at_once_both_work(tmp_path):
    # Defect 7c: two first-ever runs on an empty DAGSTER_HOME raced to create its SQLite storage and one
    # crashed with a raw sqlite3 error.
    config = write_config(tmp_path, "http://127.0.0.1:1")
    for attempt in range(3):
        home = tmp_path / f"fresh_home_{attempt}"
        procs = [_cli(config, home, "status") for _ in range(3)]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "Traceback" not in err and "sqlite3" not in err, err


def test_slots_of_a_finished_run_are_kept_while_an_orphaned_step_process_still_works(instance):
    # The worker was killed and the run marked failed by its parent, but its step process goes on writing
    # DuckDB: freeing its slot now would let another run's step in beside it.
    from sync_pipeline.dead_runs import _free_slots_of_finished_runs

    storage = instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    run = _run_with_tags(instance, {}, at=1000.0)  # the worker's RUN_START: a long gone process
    step = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        instance.handle_new_event(dg.EventLogEntry(
            error_info=None, level="DEBUG", user_message="", run_id=run.run_id, timestamp=time.time(),
            dagster_event=dg.DagsterEvent(dg.DagsterEventType.STEP_START.value, job_name=run.job_name,
                                          step_key="noop", pid=step.pid),
        ))
        assert storage.claim_concurrency_slot("duckdb", run.run_id, "noop").is_claimed
        instance.report_run_failed(run, "its worker was killed")
        _free_slots_of_finished_runs(instance)
        assert [s.run_id for s in storage.get_concurrency_info("duckdb").claimed_slots] == [run.run_id]
    finally:
        step.kill()
        step.wait()
    _free_slots_of_finished_runs(instance)
    assert storage.get_concurrency_info("duckdb").claimed_slots == []

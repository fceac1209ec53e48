"""When to kill: calibrated stage timings, and a trigger inside the target simulators.

`Calibration` keeps, per connection and mode, how long each stage of a clean run took (from the run's
own STEP_START events), so a kill can be aimed anywhere in the run or inside a chosen stage.
`WriteTrigger` kills from inside the target simulator, right after it stored the k-th write of the run
and before the answer leaves: the moment a create is most likely to be duplicated by the next run.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

from runs import PHASES, StepTimes, phase_of

STAGES = PHASES[1:]  # a kill is aimed at one of these; "startup" is only ever hit by chance
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Calibration:
    def __init__(self) -> None:
        self._obs: dict[tuple[str, str], list[dict[str, float]]] = {}

    def observe(self, connection: str, mode: str, times: StepTimes, start: float, end: float) -> None:
        """`start`: when the process was spawned (cli) or the run started (dev); `end`: when it ended."""
        starts = times.phase_starts(connection)
        if not starts:
            return
        order = [p for p in STAGES if p in starts]
        obs = {"total": end - start, "startup": starts[order[0]] - start}
        for i, phase in enumerate(order):
            nxt = starts[order[i + 1]] if i + 1 < len(order) else end
            obs[phase] = max(0.01, nxt - starts[phase])
        self._obs.setdefault((connection, mode), []).append(obs)

    def _median(self, connection: str, mode: str, what: str, default: float) -> float:
        values = [o[what] for o in self._obs.get((connection, mode), [])[-10:] if what in o]
        return statistics.median(values) if values else default

    def total(self, connection: str, mode: str) -> float:
        return self._median(connection, mode, "total", 5.0)

    def stage(self, connection: str, mode: str, stage: str) -> float:
        return self._median(connection, mode, stage, 0.3)

    def as_dict(self) -> dict:
        return {f"{c}/{m}": {k: round(statistics.median(o[k] for o in obs if k in o), 3)
                             for k in ("total", "startup", *STAGES) if any(k in o for o in obs)}
                for (c, m), obs in self._obs.items()}


def arm_at_write(trigger: "WriteTrigger", rng, target: str, change, kill: Callable[[], None]) -> str:
    """Arm `trigger` at a random write of the coming run (half the time: a random create); returns the aim."""
    creates = sum(change.created.values())
    if creates and rng.random() < 0.5:
        k = rng.randint(1, creates)
        trigger.arm(target, k, kill, creates_only=True)
        return f"POST {k}"
    k = rng.randint(1, max(1, creates + change.paid + change.renamed))
    trigger.arm(target, k, kill)
    return f"write {k}"


def first_step_of(times: StepTimes, connection: str, stage: str) -> float | None:
    return next((at for key, at, _ in times.steps if phase_of(key, connection) == stage), None)


class WriteTrigger:
    """Wraps the `handle` of the Sugester and CustomerSuccessBox simulators (instance attributes shadow
    the method), so arming it costs nothing to other requests."""

    def __init__(self, sandbox) -> None:
        self._lock = threading.Lock()
        # target → (writes left, kill, methods counted)
        self._armed: dict[str, tuple[list[int], Callable[[], None], frozenset[str]]] = {}
        self._fired: dict[str, str] = {}
        for target, sim in (("sugester", sandbox.sugester), ("customersuccessbox", sandbox.csb)):
            sim.handle = self._wrap(target, sim.handle)

    def _wrap(self, target: str, handle):
        def wrapped(req):
            response = handle(req)
            if req.method in _WRITES:
                with self._lock:
                    armed = self._armed.get(target)
                    if armed is not None and req.method in armed[2]:
                        armed[0][0] -= 1
                        if armed[0][0] <= 0:
                            del self._armed[target]
                            armed[1]()  # stored, answer not sent yet
                            self._fired[target] = f"{req.method} {req.path} at {time.time():.3f}"
            return response

        return wrapped

    def arm(self, target: str, k: int, kill: Callable[[], None], *, creates_only: bool = False) -> None:
        """Kill at the k-th write to `target` (only POSTs, the creates, when `creates_only`)."""
        with self._lock:
            self._armed[target] = ([max(1, k)], kill, frozenset({"POST"}) if creates_only else _WRITES)
            self._fired.pop(target, None)

    def fired(self, target: str) -> str | None:
        with self._lock:
            return self._fired.get(target)

    def disarm(self, target: str) -> str | None:
        with self._lock:
            self._armed.pop(target, None)
            return self._fired.pop(target, None)

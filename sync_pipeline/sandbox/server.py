"""The sandbox: one local HTTP server hosting every vendor simulator, optionally persisted to a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

from ._http_sim import HttpHost, Request, Simulator
from .demo_data import DemoSpec, generate_fakturownia
from .fakturownia_sim import FakturowniaSim
from .sugester_sim import SugesterSim

_STATE_VERSION = 1


class _Meta(Simulator):
    """`/_sandbox/health` and `/_sandbox/stats`: unauthenticated, never rate-limited."""

    name = "_sandbox"

    def __init__(self, simulators: dict[str, Simulator]):
        super().__init__()
        self.route("GET", r"/health", lambda req: {"ok": True}, auth=False)
        self.route("GET", r"/stats", self._stats, auth=False)
        self._simulators = simulators

    def _stats(self, req: Request) -> dict[str, Any]:
        return {name: sim.stats() for name, sim in self._simulators.items()}


def malformed_fakturownia_invoices(invoices: list[dict], count: int) -> list[dict]:
    """Records real exports do contain, so the demo shows the quarantine at work: an impossible date,
    an amount with a comma and a currency sign, an invoice with no id (cycled up to `count`)."""
    if not invoices:
        return []
    breakers = [
        lambda inv, n: inv | {"id": 990_000_000 + n, "number": f"BAD/{n}/DATE", "issue_date": "2025-02-30"},
        lambda inv, n: inv | {"id": 990_000_000 + n, "number": f"BAD/{n}/AMOUNT", "price_gross": "1 230,00 zł"},
        lambda inv, n: {k: v for k, v in inv.items() if k != "id"} | {"number": f"BAD/{n}/NOID"},
    ]
    return [breakers[n % len(breakers)](dict(invoices[n % len(invoices)]), n) for n in range(count)]


class Sandbox:
    """Fakturownia and Sugester simulators on one 127.0.0.1 port; state survives restarts via `state_file`."""

    def __init__(self, *, spec: DemoSpec | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_rps: float | None = None, fakturownia_token: str = "sandbox-token/demo",
                 sugester_token: str = "sandbox-sugester-token/demo", state_file: Path | None = None,
                 malformed_invoices: int = 0):
        self.spec = spec or DemoSpec()
        self.state_file = Path(state_file) if state_file else None
        restoring = self.state_file is not None and self.state_file.exists()
        data = None if restoring else generate_fakturownia(self.spec)  # don't generate what the file replaces
        self.fakturownia = FakturowniaSim(api_token=fakturownia_token, data=data, max_rps=max_rps,
                                          account_prefix=self.spec.account_prefix)
        self.sugester = SugesterSim(api_token=sugester_token, max_rps=max_rps, clock_start=self.fakturownia.clock)
        self.simulators: dict[str, Simulator] = {"fakturownia": self.fakturownia, "sugester": self.sugester}
        if data is not None:
            for raw in malformed_fakturownia_invoices(data.invoices, malformed_invoices):
                self.fakturownia.inject_invoice(raw)
        # With a state file, come back on the port of last time when it is free: the invoices'
        # view_url links embed it, and links that change on every run would update every deal.
        self._preferred_port = self._load(self.state_file) if restoring and port == 0 else None
        mounts = {f"/{name}": sim for name, sim in self.simulators.items()}
        self._host = HttpHost({**mounts, "/_sandbox": _Meta(self.simulators)}, host=host, port=port)
        self.url = ""
        self._running = False

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; `url` is valid afterwards."""
        if self._preferred_port:
            try:
                self._host.port = self._preferred_port
                self.url = self._host.start()
            except OSError:  # taken: any free port will do
                self._host.port = 0
                self.url = self._host.start()
        else:
            self.url = self._host.start()
        self.fakturownia.public_base_url = f"{self.url}/fakturownia"
        self._running = True
        return self

    def stop(self) -> None:
        """Stop serving and, with a `state_file`, save every simulator's state."""
        if not self._running:
            return
        self._running = False
        self._host.stop()
        if self.state_file is not None:
            self.save(self.state_file)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def system_urls(self) -> dict[str, str]:
        """Base URL of each vendor, e.g. {"fakturownia": "http://127.0.0.1:PORT/fakturownia", ...}."""
        return {name: f"{self.url}/{name}" for name in self.simulators}

    def save(self, path: Path) -> None:
        """Write all simulator state as JSON (atomically, so a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with ExitStack() as locks:  # snapshots reference live records: hold writers off while dumping
            for sim in self.simulators.values():
                locks.enter_context(sim.lock)
            port = int(self.url.rsplit(":", 1)[1]) if self.url else None
            state = {"version": _STATE_VERSION, "port": port, "simulators": {n: s.snapshot() for n, s in self.simulators.items()}}
            with tmp.open("w", encoding="utf-8") as fh:
                json.dump(state, fh, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, path)

    def _load(self, path: Path) -> int | None:
        """Restore every simulator; return the port the state was served on."""
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        for name, sim_state in state.get("simulators", {}).items():
            if name in self.simulators:  # simulators added later start fresh
                self.simulators[name].restore(sim_state)
        return state.get("port")


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM), printing URLs and tokens."""
    parser = argparse.ArgumentParser(prog="python -m sync_pipeline.sandbox.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--invoices-per-client", type=int, default=6)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD; default: today (UTC)")
    parser.add_argument("--max-rps", type=float, default=None)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)

    spec = DemoSpec(seed=args.seed, clients=args.clients, invoices_per_client=args.invoices_per_client,
                    today=args.today)
    sandbox = Sandbox(spec=spec, host=args.host, port=args.port, max_rps=args.max_rps,
                      state_file=args.state_file).start()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored)
        signal.signal(signum, lambda *_: stopping.set())
    print(f"Sandbox running at {sandbox.url}")
    for name, url in sandbox.system_urls().items():
        print(f"  {name:<12} {url}  api_token={sandbox.simulators[name].api_token}")  # type: ignore[attr-defined]
    print(f"  health       {sandbox.url}/_sandbox/health   stats: {sandbox.url}/_sandbox/stats")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stopping.wait(0.5):  # a timed wait keeps signal handling responsive
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

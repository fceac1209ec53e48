"""The sandbox: one local HTTP server hosting every vendor simulator, optionally persisted to a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ._http_sim import HttpError, HttpHost, Request, Simulator
from .csb_sim import CsbSim
from .demo_data import DemoSpec, generate_fakturownia, sugester_demo_clients
from .fakturownia_sim import FakturowniaSim
from .faults import FAULT_KINDS, FaultPlan, parse_fault_specs, plans_from_mapping
from .billy_demo import generate_billy
from .billy_sim import BillySim
from .options import add_sandbox_arguments
from .simply_demo import generate_simply
from .simply_sim import SimplySim
from .sugester_sim import SugesterSim
from .zapier_sim import ZapierSim
from .zoho_demo import ZohoDemoSpec, generate_zoho
from .zoho_sim import ZohoAccountsSim, ZohoInvoiceSim

_STATE_VERSION = 1
_MOUNTS = {"zoho_accounts": "/zoho-accounts"}  # URL prefix per simulator where it is not "/<name>"


class _Meta(Simulator):
    """`/_sandbox/health`, `/_sandbox/stats` and `/_sandbox/faults`: unauthenticated, never rate-limited,
    never faulty."""

    name = "_sandbox"
    fault_eligible = False

    def __init__(self, sandbox: Sandbox):
        super().__init__()
        self.route("GET", r"/health", lambda req: {"ok": True}, auth=False)
        self.route("GET", r"/stats", self._stats, auth=False)
        self.route("GET", r"/faults", self._get_faults, auth=False)
        self.route("POST", r"/faults", self._post_faults, auth=False)
        self._sandbox = sandbox

    def _stats(self, req: Request) -> dict[str, Any]:
        return {name: sim.stats() for name, sim in self._sandbox.simulators.items()}

    def _get_faults(self, req: Request) -> dict[str, Any]:
        return {name: plan.to_dict() for name, plan in self._sandbox.fault_plans.items()}

    def _post_faults(self, req: Request) -> dict[str, Any]:
        """Replace every plan: `{"*": {"server_error": 0.1}, "sugester": {...}}`; `{}` clears them."""
        if not isinstance(req.json, dict):
            raise HttpError(400, 'expected a JSON object: {"<simulator or *>": {"<fault kind>": share, ...}}')
        try:
            self._sandbox.set_faults(req.json)
        except ValueError as exc:
            raise HttpError(422, str(exc)) from None
        return self._get_faults(req)


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
    """Every vendor simulator (Fakturownia, Sugester, Zoho accounts + Invoice, CustomerSuccessBox, Billy, Simply CRM) on one
    127.0.0.1 port; state survives restarts via `state_file`."""

    def __init__(self, *, spec: DemoSpec | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_rps: float | None = None, fakturownia_token: str = "sandbox-token/demo",
                 sugester_token: str = "sandbox-sugester-token/demo", state_file: Path | None = None,
                 malformed_invoices: int = 0, zoho_client_id: str = "sandbox-zoho-client",
                 zoho_client_secret: str = "sandbox-zoho-secret", zoho_refresh_token: str = "sandbox-zoho-refresh",
                 zoho_organization_id: str = "20240001", csb_api_key: str = "sandbox-csb-key",
                 zoho_spec: ZohoDemoSpec | None = None, sugester_clients: int = 0,
                 simply_access_key: str = "sandbox-simply-key", billy_token: str = "sandbox-billy-token",
                 faults: Mapping[str, FaultPlan | Mapping[str, Any]] | None = None):
        self.spec = spec or DemoSpec()
        self.zoho_spec = zoho_spec or ZohoDemoSpec(today=self.spec.today)  # one "today" for every vendor
        self.state_file = Path(state_file) if state_file else None
        restoring = self.state_file is not None and self.state_file.exists()
        state = json.loads(self.state_file.read_text(encoding="utf-8")) if restoring else {}
        saved = state.get("simulators", {})
        data = None if restoring else generate_fakturownia(self.spec)  # don't generate what the file replaces
        self.fakturownia = FakturowniaSim(api_token=fakturownia_token, data=data, max_rps=max_rps,
                                          account_prefix=self.spec.account_prefix)
        self.sugester = SugesterSim(api_token=sugester_token, max_rps=max_rps, clock_start=self.fakturownia.clock)
        self.zoho_accounts = ZohoAccountsSim(client_id=zoho_client_id, client_secret=zoho_client_secret,
                                             refresh_token=zoho_refresh_token, max_rps=max_rps)
        # A state file from before the Zoho simulator existed has no Zoho data: generate it then.
        zoho_data = None if "zoho" in saved else generate_zoho(self.zoho_spec)
        self.zoho = ZohoInvoiceSim(accounts=self.zoho_accounts, organization_id=zoho_organization_id,
                                   data=zoho_data, max_rps=max_rps)
        self.csb = CsbSim(api_key=csb_api_key, max_rps=max_rps, clock_start=self.zoho.clock)
        # simulators added later start with their demo data under a state file saved before they existed
        self.billy = BillySim(access_token=billy_token, max_rps=max_rps, clock_start=self.fakturownia.clock,
                              data=None if "billy" in saved else generate_billy(self.spec.seed,
                                                                                self.spec.resolved_today()))
        self.simply = SimplySim(access_key=simply_access_key, max_rps=max_rps, clock_start=self.fakturownia.clock,
                                data=None if "simply" in saved else generate_simply(self.spec.seed, self.spec.resolved_today()))
        self.zapier = ZapierSim(clock_start=self.fakturownia.clock)  # catch hooks feeding an Invoice2go account
        self.simulators: dict[str, Simulator] = {"fakturownia": self.fakturownia, "sugester": self.sugester,
                                                 "zoho_accounts": self.zoho_accounts, "zoho": self.zoho,
                                                 "csb": self.csb, "billy": self.billy, "simply": self.simply,
                                                 "zapier": self.zapier}
        self.fault_plans: dict[str, FaultPlan] = {}
        self.set_faults(faults)
        if data is not None:
            for raw in malformed_fakturownia_invoices(data.invoices, malformed_invoices):
                self.fakturownia.inject_invoice(raw)
            for client in sugester_demo_clients(data.clients, sugester_clients):
                self.sugester.user_add_client(**client)
        # With a state file, come back on the port of last time when it is free: the invoices'
        # view_url links embed it, and links that change on every run would update every deal.
        # (An explicit port used to skip the restore altogether, leaving Fakturownia empty.)
        saved_port = self._load(state) if restoring else None
        self._preferred_port = saved_port if port == 0 else None
        mounts = {_MOUNTS.get(name, f"/{name}"): sim for name, sim in self.simulators.items()}
        self._host = HttpHost({**mounts, "/_sandbox": _Meta(self)}, host=host, port=port)
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
        self.zoho.public_base_url = f"{self.url}/zoho"
        self.zoho_accounts.api_domain = f"{self.url}/zoho"  # token responses point clients at this API host
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

    def set_faults(self, faults: Mapping[str, FaultPlan | Mapping[str, Any]] | None) -> None:
        """Replace the fault plans: `{"fakturownia": FaultPlan(...), "*": FaultPlan(...)}`, where "*" is
        for every simulator without its own plan; values may also be mappings of FaultPlan fields.
        None or `{}` clears every plan. Raises ValueError (and changes nothing) on a bad name or share."""
        plans = plans_from_mapping(faults or {})
        for name, sim in self.simulators.items():
            sim.set_faults(plans.get(name, plans.get("*")))
        self.fault_plans = plans

    def system_urls(self) -> dict[str, str]:
        """Base URL of each vendor, e.g. {"fakturownia": "http://127.0.0.1:PORT/fakturownia", ...}.

        "zoho" is the API domain (the Invoice API is at `<zoho>/invoice/v3`), "zoho_accounts" the accounts
        server (`<zoho_accounts>/oauth/v2/token`)."""
        return {name: f"{self.url}{_MOUNTS.get(name, f'/{name}')}" for name in self.simulators}

    def credentials(self) -> dict[str, dict[str, str]]:
        """What a client of each simulator needs besides its URL (sandbox values, safe to show)."""
        accounts = self.zoho_accounts
        return {"fakturownia": {"api_token": self.fakturownia.api_token},
                "sugester": {"api_token": self.sugester.api_token},
                "zoho_accounts": {"client_id": accounts.client_id, "client_secret": accounts.client_secret,
                                  "refresh_token": accounts.refresh_token},
                "zoho": {"organization_id": self.zoho.organization_id},
                "csb": {"api_key": self.csb.api_key},
                "billy": {"access_token": self.billy.access_token},
                "simply": {"username": self.simply.username, "access_key": self.simply.access_key}}

    def target_counts(self) -> dict[str, dict[str, int]]:
        """Records each target simulator holds now: {"Sugester": {"clients": 40, ...}, ...}."""
        return {"Sugester": self.sugester.record_counts(), "CustomerSuccessBox": self.csb.record_counts(),
                "Simply CRM": self.simply.record_counts(), "Invoice2go": self.zapier.record_counts()}

    def describe_counts(self) -> str:
        """One line for people: what the target simulators hold."""
        parts = [f"{label} holds " + (" and ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "nothing")
                 for label, counts in self.target_counts().items()]
        return "; ".join(parts)

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

    def _load(self, state: dict[str, Any]) -> int | None:
        """Restore every simulator from a saved state; return the port the state was served on."""
        for name, sim_state in state.get("simulators", {}).items():
            if name in self.simulators:  # simulators added later start fresh
                self.simulators[name].restore(sim_state)
        return state.get("port")


def sandbox_from_args(args: argparse.Namespace) -> Sandbox:
    """The (not yet started) sandbox the arguments of `add_sandbox_arguments` describe."""
    spec = DemoSpec(seed=args.seed, clients=args.clients, invoices_per_client=args.invoices_per_client,
                    today=args.today)
    return Sandbox(spec=spec, host=args.host, port=args.port, max_rps=args.max_rps, state_file=args.state_file,
                   faults=parse_fault_specs(args.faults))


def serve(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM), printing URLs and tokens."""
    sandbox = sandbox_from_args(args).start()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored)
        signal.signal(signum, lambda *_: stopping.set())
    print(f"Sandbox running at {sandbox.url}")
    credentials = sandbox.credentials()
    for name, url in sandbox.system_urls().items():
        extra = "  ".join(f"{k}={v}" for k, v in credentials.get(name, {}).items())
        print(f"  {name:<14} {url}  {extra}")
    print(f"  health         {sandbox.url}/_sandbox/health   stats: {sandbox.url}/_sandbox/stats")
    for name, plan in sandbox.fault_plans.items():
        shares = ", ".join(f"{k}={getattr(plan, k)}" for k in FAULT_KINDS if getattr(plan, k)) or "none"
        print(f"  faults for {name:<9} {shares} (seed {plan.seed})")
    print(f"  faults         GET/POST {sandbox.url}/_sandbox/faults to read or change them")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stopping.wait(0.5):  # a timed wait keeps signal handling responsive
            pass
    finally:
        sandbox.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m sync_pipeline.sandbox.server`: the same arguments as `sync-pipeline sandbox`."""
    parser = argparse.ArgumentParser(prog="python -m sync_pipeline.sandbox.server", description=__doc__)
    return serve(add_sandbox_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Serve the sandbox at bench scale in its own process, with a control channel on stdin.

Prints one JSON line {"url", "fakturownia_token", "sugester_token", "invoices", "clients"} once serving.
Commands on stdin, one per line, each answered with one JSON line:
  touch SHARE     change SHARE of the invoices (paid, with a new updated_at), as payments would
  counts          {"deals": n, "distinct_deal_keys": n, "clients": n} in the Sugester simulator
  reset_sugester  forget every Sugester client and deal (the next real load starts from nothing)
  quit
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date

from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--invoices-per-client", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 30))
    p.add_argument("--write-latency-ms", type=float, default=0.0,
                   help="round-trip latency of the Sugester simulator's answers (a real API is 50-300 ms away)")
    args = p.parse_args()
    spec = DemoSpec(clients=args.clients, invoices_per_client=args.invoices_per_client, seed=args.seed,
                    today=args.today)
    with Sandbox(spec=spec) as sb:
        sb.sugester.latency = args.write_latency_ms / 1000
        creds = sb.credentials()
        fak = sb.fakturownia
        print(json.dumps({"url": sb.url, "fakturownia_token": creds["fakturownia"]["api_token"],
                          "sugester_token": creds["sugester"]["api_token"], "invoices": len(fak.invoices),
                          "clients": len(fak.clients)}), flush=True)
        rng = random.Random(args.seed)
        for line in sys.stdin:
            cmd, *rest = line.split()
            if cmd == "touch":
                share = float(rest[0])
                ids = rng.sample(sorted(fak.invoices), round(len(fak.invoices) * share))
                with fak.lock:
                    for i in ids:
                        inv = fak.invoices[i]
                        inv["status"] = "paid" if inv.get("status") != "paid" else "issued"
                        fak._touch(inv)
                fak.changed()
                answer = {"touched": len(ids)}
            elif cmd == "counts":
                deals = sb.sugester.deals.values()
                keys = {(d.get("external_ids") or {}).get("sync_pipeline") for d in deals}
                answer = {"deals": len(deals), "distinct_deal_keys": len(keys), "clients": len(sb.sugester.clients)}
            elif cmd == "reset_sugester":
                with sb.sugester.lock:
                    sb.sugester.clients.clear()
                    sb.sugester.deals.clear()
                answer = {"ok": True}
            elif cmd == "quit":
                break
            else:
                answer = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the sandbox's targets hold, in a form two sandboxes can be compared by: keyed by our key, with
what the target assigns itself (its ids, timestamps, tokens, links to this sandbox's port) taken out.

Used by the fault-convergence test and the crash harness: "exactly one record per key, the same
fields as a fault-free run".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_ASSIGNED = frozenset({"id", "created_at", "updated_at", "token"})


def _unlinked(value: Any, base: str) -> Any:
    """Links into this sandbox without its host and port (two sandboxes serve on different ports)."""
    if isinstance(value, str) and base and value.startswith(base):
        return "<sandbox>" + value[len(base):]
    return value


def _clean(record: dict, base: str) -> dict:
    return {k: _unlinked(v, base) for k, v in record.items() if k not in _ASSIGNED}


def target_records(sandbox) -> dict[str, dict[str, list[dict]]]:
    """entity → our key → the records the target holds for it (a list: more than one is a duplicate)."""
    base = sandbox.url
    out: dict[str, dict[str, list[dict]]] = {"sugester/clients": {}, "sugester/deals": {},
                                             "customersuccessbox/accounts": {}, "customersuccessbox/invoices": {}}
    with sandbox.sugester.lock:
        clients = {c["id"]: c for c in sandbox.sugester.clients.values()}
        for client in clients.values():
            key = str((client.get("external_ids") or {}).get("sync_pipeline") or client.get("external_id"))
            out["sugester/clients"].setdefault(key, []).append(_clean(client, base))
        for deal in sandbox.sugester.deals.values():
            record = _clean(deal, base)
            owner = clients.get(deal.get("client_id"))
            record["client_id"] = owner.get("external_id") if owner else deal.get("client_id")
            key = str((deal.get("external_ids") or {}).get("sync_pipeline"))
            out["sugester/deals"].setdefault(key, []).append(record)
    with sandbox.csb.lock:
        for name, store, key_field in (("accounts", sandbox.csb.accounts, "account_id"),
                                       ("invoices", sandbox.csb.invoices, "invoice_id")):
            for record in store.values():
                out[f"customersuccessbox/{name}"].setdefault(str(record[key_field]), []).append(_clean(record, base))
    return out


def duplicates(records: dict[str, dict[str, list[dict]]]) -> dict[str, list[str]]:
    """entity → our keys held more than once."""
    return {entity: sorted(k for k, v in by_key.items() if len(v) > 1) for entity, by_key in records.items()
            if any(len(v) > 1 for v in by_key.values())}


def write_counts(sandbox) -> Counter:
    """Writes (POST/PUT/PATCH/DELETE) each target received so far, by target."""
    return Counter({name: sum(sim.request_count(method) for method in ("POST", "PUT", "PATCH", "DELETE"))
                    for name, sim in (("sugester", sandbox.sugester), ("customersuccessbox", sandbox.csb))})


def differences(a: dict[str, dict[str, list[dict]]], b: dict[str, dict[str, list[dict]]],
                limit: int = 10) -> list[str]:
    """Field-by-field differences between two snapshots, in words (empty when they hold the same)."""
    out: list[str] = []
    for entity in sorted(set(a) | set(b)):
        left, right = a.get(entity, {}), b.get(entity, {})
        for key in sorted(set(left) - set(right))[:limit]:
            out.append(f"{entity} {key}: only in the first")
        for key in sorted(set(right) - set(left))[:limit]:
            out.append(f"{entity} {key}: only in the second")
        for key in sorted(set(left) & set(right)):
            if left[key] != right[key]:
                if len(left[key]) != len(right[key]):
                    out.append(f"{entity} {key}: held {len(left[key])} times vs {len(right[key])}")
                    continue
                for x, y in zip(left[key], right[key]):
                    fields = sorted(f for f in set(x) | set(y) if x.get(f) != y.get(f))
                    out.append(f"{entity} {key}: " + ", ".join(f"{f} {x.get(f)!r} vs {y.get(f)!r}" for f in fields[:5]))
            if len(out) >= 4 * limit:
                return out
    return out

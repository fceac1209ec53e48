"""Give each trial real work (new records, payments, renames) and say what every target should hold.

Fakturownia records are created over HTTP (its POST /clients.json and /invoices.json); Zoho, whose
simulator has no create routes, gets new contacts and invoices in process, cloned from its own records.
The expected keys are derived from the simulators' own data, never from the pipeline's warehouse.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import httpx

from sync_pipeline.config import DEFAULT_DEAL_KINDS
from sync_pipeline.sandbox.demo_data import token_for
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.zoho_demo import custom_field, custom_field_hash, zoho_time

ID_FIELD = "cf_account_id"
# What the demo data and our creates use; a status outside these would be quarantined by staging.
_FAKTUROWNIA_STATUSES = {"issued", "sent", "paid", "partial", "rejected"}
_NEW_KINDS = ("vat",) * 6 + ("proforma", "receipt", "advance", "final")


@dataclass
class Change:
    """What one trial did to the sources (for the trial's record)."""

    created: dict[str, int] = field(default_factory=dict)
    paid: int = 0
    renamed: int = 0

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n

    def as_dict(self) -> dict:
        return {"created": self.created, "paid": self.paid, "renamed": self.renamed}


class SourceChanger:
    def __init__(self, sandbox: Sandbox, rng: random.Random, *, first: int = 0):
        self.sb, self.rng = sandbox, rng
        self._n = first  # numbers new names and account ids; changers used side by side start apart
        token = sandbox.fakturownia.api_token
        self._http = httpx.Client(base_url=f"{sandbox.url}/fakturownia", timeout=10,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def change(self, connection: str) -> Change:
        if connection == "fakturownia_to_sugester":
            return self.change_fakturownia()
        return self.change_zoho()

    # -- Fakturownia, over HTTP -------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        r = self._http.post(path, json=body)
        r.raise_for_status()
        return r.json()

    def _fakturownia_invoice(self, client_id: int) -> None:
        rng = self.rng
        positions = [{"name": rng.choice(("Abonament Standard (miesiąc)", "Wdrożenie", "Szkolenie", "Licencja")),
                      "quantity": rng.randint(1, 3), "tax": 23,
                      "price_gross": f"{rng.randint(50, 5000)}.{rng.randint(0, 99):02d}"}
                     for _ in range(rng.randint(1, 2))]
        body = {"kind": rng.choice(_NEW_KINDS), "client_id": client_id, "positions": positions,
                "currency": rng.choice(("PLN", "PLN", "PLN", "EUR")), "payment_to_kind": rng.choice((7, 14, 30))}
        if rng.random() < 0.25:
            body["status"] = "paid"
        self._post("/invoices.json", {"invoice": body})

    def change_fakturownia(self) -> Change:
        rng, sim, ch = self.rng, self.sb.fakturownia, Change()
        for _ in range(rng.randint(1, 3)):  # new clients, most with invoices
            self._n += 1
            n = self._n
            client = self._post("/clients.json", {"client": {
                "name": f"Nowa Firma {n} Sp. z o.o.", "tax_no": f"{7_770_000_000 + n}",
                "email": f"biuro{n}@nowafirma{n}.pl", "city": "Poznań", "post_code": "60-001", "country": "PL"}})
            ch.add("clients")
            for _ in range(rng.randint(0, 3)):
                self._fakturownia_invoice(client["id"])
                ch.add("invoices")
        with sim.lock:
            existing = sorted(sim.clients)
            payable = sorted(i for i, inv in sim.invoices.items()
                             if inv["status"] in ("issued", "sent", "partial") and not inv.get("cancelled"))
        for client_id in rng.sample(existing, k=min(len(existing), rng.randint(1, 3))):
            self._fakturownia_invoice(client_id)
            ch.add("invoices")
        for invoice_id in rng.sample(payable, k=min(len(payable), rng.randint(1, 3))):
            sim.pay_invoice(invoice_id)
            ch.paid += 1
        if rng.random() < 0.5:
            client_id = rng.choice(existing)
            r = self._http.put(f"/clients/{client_id}.json", json={"client": {"name": f"Klient {client_id} (zm. {self._n})"}})
            r.raise_for_status()
            ch.renamed += 1
        return ch

    # -- Zoho, in process -------------------------------------------------------------------------
    def change_zoho(self) -> Change:
        rng, sim, ch = self.rng, self.sb.zoho, Change()
        with sim.lock:
            new_contacts = []
            for _ in range(rng.randint(1, 3)):
                self._n += 1
                new_contacts.append(self._zoho_contact(with_id=rng.random() < 0.85))
                ch.add("contacts")
            contacts = sorted(sim.contacts)
            for contact_id in new_contacts + rng.sample(contacts, k=min(len(contacts), rng.randint(1, 3))):
                for _ in range(rng.randint(0, 2) if contact_id in new_contacts else 1):
                    self._zoho_invoice(contact_id)
                    ch.add("invoices")
            # a contact without an account id gets one now and then: its held-back invoices must follow
            without = [c for c in contacts if not account_id_of(sim.contacts[c])]
            if without and rng.random() < 0.3:
                self._n += 1
                sim.set_contact_field(rng.choice(without), ID_FIELD, f"ACC-H{self._n:05d}")
                ch.add("account_ids")
            if rng.random() < 0.5:
                contact = sim.contacts[rng.choice(contacts)]
                contact["contact_name"] = contact["company_name"] = f"{contact['contact_name'].split(' (')[0]} ({self._n})"
                sim._touch(contact)
                ch.renamed += 1
            payable = sorted(i for i, inv in sim.invoices.items()
                             if inv["status"] in ("sent", "viewed", "overdue", "partially_paid") and inv["balance"] > 0)
        for invoice_id in rng.sample(payable, k=min(len(payable), rng.randint(1, 3))):
            sim.pay_invoice(invoice_id)
            ch.paid += 1
        return ch

    def _zoho_contact(self, *, with_id: bool) -> str:
        sim, n = self.sb.zoho, self._n
        template = sim.contacts[min(sim.contacts)]
        contact = copy.deepcopy(template)
        contact_id = str(max(int(c) for c in sim.contacts) + 7)
        name = f"Harness Trial {n} GmbH"
        fields = [custom_field(ID_FIELD, f"ACC-H{n:05d}")] if with_id else []
        now = zoho_time(sim.tick())
        contact.update({"contact_id": contact_id, "contact_name": name, "company_name": name,
                        "email": f"billing@trial{n}.eu", "outstanding_receivable_amount": 0.0,
                        "created_time": now, "last_modified_time": now,
                        "custom_fields": fields, "custom_field_hash": custom_field_hash(fields)})
        sim.contacts[contact_id] = contact
        return contact_id

    def _zoho_invoice(self, contact_id: str) -> None:
        sim, rng = self.sb.zoho, self.rng
        contact = sim.contacts[contact_id]
        invoice = copy.deepcopy(sim.invoices[max(sim.invoices, key=int)])
        invoice_id = str(max(int(i) for i in sim.invoices) + rng.randint(1, 5))
        number = max(int(i["invoice_number"].split("-")[1]) for i in sim.invoices.values()) + 1
        cents = rng.randint(4_900, 480_000)
        total = cents / 100
        issued = sim.today - timedelta(days=rng.randint(0, 40))
        due = issued + timedelta(days=contact["payment_terms"])
        now = zoho_time(sim.tick())
        invoice.update({
            "invoice_id": invoice_id, "customer_id": contact_id, "customer_name": contact["contact_name"],
            "status": "overdue" if due < sim.today else "sent", "invoice_number": f"INV-{number:06d}",
            "date": issued.isoformat(), "due_date": due.isoformat(), "payment_terms": contact["payment_terms"],
            "payment_terms_label": contact["payment_terms_label"], "currency_code": contact["currency_code"],
            "sub_total": total, "total": total, "payment_made": 0.0, "balance": total, "last_payment_date": "",
            "is_emailed": True, "created_time": now, "last_modified_time": now,
            "invoice_url": f"https://invoice.zoho.eu/SecurePayment?CInvoiceID={token_for(f'harness-{invoice_id}', 48)}",
            "line_items": [{**invoice["line_items"][0], "rate": total, "quantity": 1.0, "item_total": total}],
        })
        sim.invoices[invoice_id] = invoice
        sim._update_receivables(contact_id)


def account_id_of(contact: dict) -> str | None:
    value = (contact.get("custom_field_hash") or {}).get(f"{ID_FIELD}_unformatted")
    if value is None:
        value = next((f["value"] for f in contact.get("custom_fields") or () if f["api_name"] == ID_FIELD), None)
    return (value or "").strip() or None


def expected_keys(sandbox: Sandbox, connection: str, deal_kinds=DEFAULT_DEAL_KINDS) -> dict[str, set[str]]:
    """target entity → the keys it must hold, from the sources' own data. The records the sandbox serves
    malformed on purpose (`FakturowniaSim.injected`) are not in `invoices`, so they are left out."""
    if connection == "fakturownia_to_sugester":
        sim = sandbox.fakturownia
        with sim.lock:
            clients = {f"fakturownia:{cid}" for cid, c in sim.clients.items() if str(c.get("name") or "").strip()}
            deals = {f"fakturownia:{iid}" for iid, inv in sim.invoices.items()
                     if inv.get("kind") in deal_kinds and inv.get("income", True) is not False
                     and inv.get("status") in _FAKTUROWNIA_STATUSES and _amount(inv.get("price_gross"))
                     and f"fakturownia:{inv.get('client_id')}" in clients}
        return {"sugester/clients": clients, "sugester/deals": deals}
    sim = sandbox.zoho
    with sim.lock:
        accounts = {cid: account_id_of(c) for cid, c in sim.contacts.items()}
        invoices = {f"zoho:{iid}" for iid, inv in sim.invoices.items() if accounts.get(inv["customer_id"])}
    return {"customersuccessbox/accounts": {a for a in accounts.values() if a},
            "customersuccessbox/invoices": invoices}


def _amount(text) -> bool:
    try:
        Decimal(str(text))
        return True
    except ArithmeticError:
        return False

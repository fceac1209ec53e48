"""Simply CRM demo content (Danish organisations, contacts, products, invoices) and the value formats the Simply
simulator shares with it: composite ids, vtiger's decimal strings, auto numbers, invoice totals."""

from __future__ import annotations

import calendar
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .demo_data import default_today

# Module id prefixes of this instance. They vary per instance [V]: a client must read them from describe.
ID_PREFIXES = {"Accounts": "11", "Contacts": "12", "Products": "14", "Invoice": "16", "Users": "19",
               "Currency": "21"}
ADMIN_ID = "19x1"
BASE_CURRENCY_ID = "21x1"  # the instance's base currency (DKK) in the Currency entity [I]
# module -> (auto number field, its prefix): CON347, ACC12, PRO5, INV1021 [V]
AUTO_NUMBERS = {"Accounts": ("account_no", "ACC"), "Contacts": ("contact_no", "CON"),
                "Products": ("product_no", "PRO"), "Invoice": ("invoice_no", "INV")}
CREDIT_STATUS = "Credit Invoice"


# -- value formats ---------------------------------------------------------------------------------------------

def vtiger_time(moment: datetime) -> str:
    """vtiger's "YYYY-MM-DD HH:MM:SS" (server time; the simulator's server runs on UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def unix_of(text: str) -> int:
    """Unix seconds of a vtiger time string (UTC); 0 when empty or unparseable."""
    try:
        return calendar.timegm(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timetuple())
    except (TypeError, ValueError):
        return 0


def as_decimal(value: Any) -> Decimal:
    """A number from any wire value; MySQL casts text that is no number to 0, and so does this [I]."""
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def decimal_text(value: Any, places: int = 8) -> str:
    """vtiger answers decimals padded: unit_price "1000.00000000", quantity "2.000" [O]; "" stays ""."""
    if value is None or str(value).strip() == "":
        return ""
    return format(as_decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP) + 0, "f")  # no "-0"


def record_number(record_id: str) -> int:
    """The numeric part of "12x345" (345); -1 for anything else."""
    prefix, sep, number = str(record_id).partition("x")
    return int(number) if sep and prefix.isdigit() and number.isdigit() else -1


def normalise_lines(lines: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Line items as vtiger answers them: numbered, quantity with 3 decimals, listprice with 8."""
    return [{"productid": str(line.get("productid") or ""), "sequence_no": str(i),
             "quantity": decimal_text(line.get("quantity") or 0, 3),
             "listprice": decimal_text(line.get("listprice") or 0, 8),
             "comment": str(line.get("comment") or "")} for i, line in enumerate(lines, start=1)]


def apply_invoice_totals(invoice: dict) -> dict:
    """hdnSubTotal and hdnGrandTotal from the line items (no taxes, discounts or adjustment are modelled);
    `received`/`balance` (newer builds [I]) follow the status: all received once Paid."""
    total = sum((as_decimal(l["quantity"]) * as_decimal(l["listprice"]) for l in invoice.get("LineItems", [])),
                Decimal(0))
    invoice["hdnSubTotal"] = invoice["hdnGrandTotal"] = decimal_text(total)
    paid = invoice.get("invoicestatus") == "Paid"
    invoice["received"] = decimal_text(total if paid else 0)
    invoice["balance"] = decimal_text(0 if paid else total)
    return invoice


# -- generated content ------------------------------------------------------------------------------------------

@dataclass
class SimplyData:
    """One instance's records per module, ids assigned; invoices carry their `LineItems`."""

    accounts: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)

    def by_module(self) -> dict[str, list[dict]]:
        return {"Accounts": self.accounts, "Contacts": self.contacts, "Products": self.products,
                "Invoice": self.invoices}


# Names of our own, so nothing collides with the Billy demo's Danish companies.
_COMPANIES = (
    ("Fjordlys Rådgivning A/S", "fjordlys-raadgivning.dk", "Søndergade 14", "Aarhus C", "8000", "86"),
    ("Kattegat Maskinfabrik A/S", "kattegat-maskin.dk", "Havnevej 3", "Aalborg", "9000", "98"),
    ("Limfjord Emballage A/S", "limfjord-emballage.dk", "Industrivej 22", "Skive", "7800", "97"),
    ("Vadehav Software A/S", "vadehav-software.dk", "Torvegade 41", "Esbjerg", "6700", "75"),
    ("Storebælt Ventilation A/S", "storebaelt-vent.dk", "Vestergade 8", "Nyborg", "5800", "65"),
    ("Mols Bjerge Tekstil A/S", "molsbjerge-tekstil.dk", "Strandvejen 110", "Ebeltoft", "8400", "87"),
)
_PEOPLE = (("Mette", "Kjær"), ("Søren", "Mortensen"), ("Line", "Bach"), ("Jesper", "Lund"),
           ("Camilla", "Holm"), ("Anders", "Vestergaard"), ("Rikke", "Dalsgaard"))
_HOMES = (("Nørrebrogade 55", "København N", "2200"), ("Vesterbro 12", "Odense C", "5000"),
          ("Borgergade 7", "Vejle", "7100"))
_PRODUCTS = (  # (name, code, DKK list price)
    ("Konsulenttime", "KT-100", "950"), ("Serviceaftale (måned)", "SA-200", "1500"),
    ("Installationspakke", "IP-300", "7500"), ("Årslicens CRM-integration", "AL-400", "12000"),
    ("Kursusdag (pr. deltager)", "KD-500", "3200"),
)
_STATUSES = ("Created", "Approved", "Sent", "Paid")


def generate_simply(seed: int = 42, today: date | None = None) -> SimplyData:
    """About 4 organisations, 5 contacts (3 in an organisation), 4 products and 4 invoices plus one credit
    invoice, each invoice with an organisation and a contact of that organisation. Identical output for an
    identical seed and `today` (None: yesterday in UTC, so nothing lies in the future)."""
    rng = random.Random(seed)
    today = today or default_today()
    start = datetime.combine(today - timedelta(days=60), datetime.min.time(), UTC) + timedelta(hours=8)
    ids = iter(range(100 + rng.randrange(200), 10_000))
    data = SimplyData()

    def stamp(day: int) -> tuple[str, str]:
        created = start + timedelta(days=day, minutes=rng.randrange(480), seconds=rng.randrange(60))
        modified = min(created + timedelta(days=rng.randrange(4), minutes=rng.randrange(120)),
                       datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=17))
        return vtiger_time(created), vtiger_time(modified)

    def new(module: str, fields: dict, day: int) -> dict:
        number_field, number_prefix = AUTO_NUMBERS[module]
        created, modified = stamp(day)
        store = data.by_module()[module]
        return {"id": f"{ID_PREFIXES[module]}x{next(ids)}", **fields,
                number_field: f"{number_prefix}{len(store) + 1}", "assigned_user_id": ADMIN_ID,
                "createdtime": created, "modifiedtime": modified}

    for name, domain, street, city, code, area in rng.sample(_COMPANIES, 4):
        data.accounts.append(new("Accounts", {
            "accountname": name, "website": f"https://www.{domain}", "phone": f"+45 {area} {rng.randrange(10, 99)} "
            f"{rng.randrange(10, 99)} {rng.randrange(10, 99)}", "email1": f"info@{domain}", "bill_street": street,
            "bill_city": city, "bill_code": code, "bill_country": "Denmark", "description": ""},
            rng.randrange(10)))
    for i, (first, last) in enumerate(rng.sample(_PEOPLE, 5)):
        account = data.accounts[i] if i < 3 else None
        if account is not None:
            domain = account["email1"].split("@", 1)[1]
            street, city, code = account["bill_street"], account["bill_city"], account["bill_code"]
        else:
            domain = "gmail.com"
            street, city, code = _HOMES[i - 3]
        data.contacts.append(new("Contacts", {
            "firstname": first, "lastname": last,
            "email": f"{_ascii(first)}.{_ascii(last)}@{domain}".lower(), "phone": "",
            "mobile": f"+45 {rng.randrange(20, 60)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} "
                      f"{rng.randrange(10, 99)}",
            "account_id": account["id"] if account else "", "mailingstreet": street, "mailingcity": city,
            "mailingzip": code, "mailingcountry": "Denmark", "description": ""}, 10 + rng.randrange(10)))
    for name, code, price in rng.sample(_PRODUCTS, 4):
        data.products.append(new("Products", {
            "productname": name, "productcode": code, "unit_price": decimal_text(price), "description": "",
            "discontinued": "1"}, rng.randrange(5)))
    people = [c for c in data.contacts if c["account_id"]]
    statuses = [*rng.sample(_STATUSES, 4), CREDIT_STATUS]
    for n, status in enumerate(statuses):
        contact = people[n % len(people)] if status != CREDIT_STATUS else rng.choice(people)
        account = next(a for a in data.accounts if a["id"] == contact["account_id"])
        day = 25 + 7 * n
        issued = (start + timedelta(days=day)).date()
        lines = [{"productid": p["id"], "quantity": rng.choice((1, 1, 2, 3, 5)), "listprice": p["unit_price"],
                  "comment": ""} for p in rng.sample(data.products, rng.randint(1, 3))]
        credit = status == CREDIT_STATUS
        invoice = new("Invoice", {
            "subject": ("Kreditnota: " if credit else "Faktura: ") + account["accountname"],
            "account_id": account["id"], "contact_id": contact["id"], "invoicedate": issued.isoformat(),
            "duedate": (issued + timedelta(days=14)).isoformat(), "invoicestatus": status,
            "currency_id": BASE_CURRENCY_ID, "bill_street": account["bill_street"],
            "bill_city": account["bill_city"], "bill_code": account["bill_code"], "bill_country": "Denmark",
            "ship_street": account["bill_street"], "description": "", "LineItems": normalise_lines(lines)}, day)
        data.invoices.append(apply_invoice_totals(invoice))
    return data


def _ascii(name: str) -> str:
    return name.translate(str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa"}))

"""Billy demo content (a Danish cleaning company's customers, products, invoices and credit notes) and the value
formats the Billy simulator shares with it: ids, times, JSON-number amounts, 25 % VAT totals (VENDOR_APIS §3)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .demo_data import default_today, token_for

CURRENCY = "DKK"
VAT = Decimal("0.25")  # Danish VAT on every line; the simulator keeps no per-product tax rules [I]
TAX_RATE_ID = token_for("billy:taxRate:salesVat25", 22)  # "25 % salgsmoms" [I]
REVENUE_ACCOUNT_ID = token_for("billy:account:1000", 22)  # the "Salg af varer/ydelser" account [I]
SALES_TAX_RULESET_ID = token_for("billy:salesTaxRuleset:standard", 22)
CENT = Decimal("0.01")


# -- value formats ------------------------------------------------------------------------------------------------

def billy_id(seed: str) -> str:
    """An opaque 22-character base64-ish id like `cSHBqWWITexZvQy29lqpYg` [O], derived from `seed`."""
    return token_for(seed, 22)


def billy_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` in UTC, no zone [O]."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def as_decimal(value: Any) -> Decimal | None:
    """A number from a JSON number or a numeric string; None for anything else (booleans included)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def number(value: Decimal) -> int | float:
    """An amount as Billy answers it: a JSON number [O], rounded to øre; integral amounts without decimals."""
    rounded = value.quantize(CENT, ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def line_totals(quantity: Decimal, unit_price: Decimal, tax_mode: str = "excl") -> tuple[Decimal, Decimal]:
    """(amount, tax) of one line: net amount and 25 % VAT; with taxMode "incl" the unit price includes VAT [I]."""
    gross_or_net = (quantity * unit_price).quantize(CENT, ROUND_HALF_UP)
    if tax_mode == "incl":
        amount = (gross_or_net / (1 + VAT)).quantize(CENT, ROUND_HALF_UP)
        return amount, gross_or_net - amount
    return gross_or_net, (gross_or_net * VAT).quantize(CENT, ROUND_HALF_UP)


def price_line(line: dict, tax_mode: str) -> dict:
    """`line` with `amount` and `tax` computed from its quantity and unitPrice (both numbers already)."""
    amount, tax = line_totals(as_decimal(line["quantity"]), as_decimal(line["unitPrice"]), tax_mode)
    return {**line, "amount": number(amount), "tax": number(tax)}


def invoice_totals(lines: list[dict]) -> tuple[Decimal, Decimal]:
    """(amount, tax) of priced lines."""
    amount = sum((as_decimal(line["amount"]) for line in lines), Decimal(0))
    tax = sum((as_decimal(line["tax"]) for line in lines), Decimal(0))
    return amount, tax


def due_date(entry: date, mode: str, days: int) -> date:
    """`net`: entry date + days; `netEndOfMonth`: the end of the entry month + days [O]."""
    if mode == "netEndOfMonth":
        end = (entry.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return end + timedelta(days=days)
    return entry + timedelta(days=days)


def default_organization(seed: int = 42) -> dict:
    """The token's organisation (GET /v2/organization) [O shape]."""
    return {"id": billy_id(f"billy-demo:{seed}:organization"), "name": "Nordlys Demo ApS", "countryId": "DK",
            "baseCurrencyId": CURRENCY, "street": "Vestergade 21", "zipcodeText": "8000", "cityText": "Aarhus C",
            "registrationNo": "DK38274615", "email": "faktura@nordlys-demo.dk", "phone": "+45 70 20 30 40",
            "localeId": "da_DK", "createdTime": "2021-03-01T09:00:00"}


@dataclass
class BillyData:
    """One organisation's records as a list read with embedding answers them: contacts with `contactPersons`,
    products with `prices`, invoices and credit notes with `lines`."""

    organization: dict = field(default_factory=default_organization)
    contacts: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)


# -- demo content --------------------------------------------------------------------------------------------------

# (name, e-mail domain, street, city, post code, phone area). "ApS" names: the Simply CRM demo has "A/S" ones.
_COMPANIES = (
    ("Nordhavn Bageri ApS", "nordhavnbageri.dk", "Nordhavnsvej 4", "København Ø", "2100", "35"),
    ("Skovlund Tømrer ApS", "skovlund-toemrer.dk", "Skovvej 18", "Silkeborg", "8600", "86"),
    ("Havbris Café ApS", "havbris-cafe.dk", "Strandgade 9", "Helsingør", "3000", "49"),
    ("Klitgaard Revision ApS", "klitgaard-revision.dk", "Kongensgade 31", "Odense C", "5000", "66"),
    ("Lysholm Arkitekter ApS", "lysholm-ark.dk", "Jernbanegade 12", "Roskilde", "4000", "46"),
    ("Egeskov Dyreklinik ApS", "egeskov-dyreklinik.dk", "Bygaden 2", "Kværndrup", "5772", "62"),
    ("Bølgen Surfshop ApS", "boelgen-surf.dk", "Klitvej 77", "Thisted", "7700", "97"),
    ("Granly Tandklinik ApS", "granly-tand.dk", "Sct. Mathias Gade 5", "Viborg", "8800", "86"),
)
_PRIMARY = (("Ditte", "Ravn"), ("Bo", "Skovlund"), ("Signe", "Winther"), ("Kasper", "Klitgaard"),
            ("Trine", "Lysholm"), ("Morten", "Egeberg"), ("Nanna", "Bech"), ("Ulrik", "Granly"))
_PERSONS = (("Karen Thygesen", "Møllevej 3", "Randers C", "8900"), ("Mikkel Brandt", "Åboulevarden 60",
            "Aarhus C", "8000"), ("Sofie Krogh", "Algade 14", "Næstved", "4700"))
_PRODUCTS = (  # (name, product no, description, DKK price)
    ("Vinduespudsning", "VP-01", "Udvendig og indvendig, pr. besøg", 450),
    ("Kontorrengøring (time)", "KR-02", "Fast ugentlig rengøring, pr. time", 395),
    ("Hovedrengøring", "HR-03", "Grundig rengøring af lokaler op til 200 m²", 2800),
    ("Måtteservice (måned)", "MS-04", "Udskiftning af måtter hver 14. dag", 325),
    ("Graffitifjernelse", "GF-05", "Fjernelse og imprægnering, pr. opgave", 1750),
)
_APPROVED, _DRAFTS, _TERMS = 24, 2, 14


def generate_billy(seed: int = 42, today: date | None = None) -> BillyData:
    """8 company contacts (a primary contact person each), 3 person contacts, 5 products, 24 approved invoices to
    the companies over the last 6 months (paid, open and not yet due, overdue, one partly paid), 2 drafts and 2
    credit notes crediting paid invoices. Every time lies before `today` (None: yesterday in UTC), so nothing is in
    the future of a simulator whose clock starts on `today`. Identical output for identical arguments."""
    rng = random.Random(seed)
    today = today or default_today()
    org = default_organization(seed)
    data = BillyData(organization=org)
    counter = iter(range(1, 100_000))

    def new_id(kind: str) -> str:
        return billy_id(f"billy-demo:{seed}:{kind}:{next(counter)}")

    def moment(day: date, earliest: int = 8, latest: int = 16) -> datetime:
        return datetime.combine(day, time(earliest), UTC) + timedelta(minutes=rng.randrange((latest - earliest) * 60),
                                                                      seconds=rng.randrange(60))

    for n, ((name, domain, street, city, code, area), (first, last)) in enumerate(zip(_COMPANIES, _PRIMARY)):
        cid = new_id("contact")
        data.contacts.append({
            **_contact(cid, org["id"], "company", name, street, city, code),
            "phone": f"+45 {area} {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
            "registrationNo": f"DK{rng.randrange(10_000_000, 99_999_999)}",
            "createdTime": billy_time(moment(today - timedelta(days=200 - n))),
            "contactPersons": [{"id": new_id("contactPerson"), "contactId": cid, "name": f"{first} {last}",
                                "email": f"{_ascii(first).lower()}@{domain}", "isPrimary": True}]})
    for n, (name, street, city, code) in enumerate(_PERSONS):
        data.contacts.append({
            **_contact(new_id("contact"), org["id"], "person", name, street, city, code),
            "phone": f"+45 {rng.randrange(20, 60)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} "
                     f"{rng.randrange(10, 99)}",
            "createdTime": billy_time(moment(today - timedelta(days=150 - 20 * n))), "contactPersons": []})
    for n, (name, number_, description, price) in enumerate(_PRODUCTS):
        pid = new_id("product")
        data.products.append({
            "id": pid, "organizationId": org["id"], "name": name, "description": description,
            "accountId": REVENUE_ACCOUNT_ID, "productNo": number_, "suppliersProductNo": None,
            "salesTaxRulesetId": SALES_TAX_RULESET_ID, "isArchived": False, "isInInventory": False,
            "createdTime": billy_time(moment(today - timedelta(days=210 - n))),
            "prices": [{"id": new_id("productPrice"), "productId": pid, "unitPrice": price, "currencyId": CURRENCY}]})

    companies = [c for c in data.contacts if c["type"] == "company"]
    # 4 of the 24 issued in the last 13 days (open, not yet due), the rest 14-180 days ago
    ages = sorted([rng.randint(14, 180) for _ in range(_APPROVED - 4)] + [rng.randint(1, 13) for _ in range(4)],
                  reverse=True)
    customers = companies + [rng.choice(companies) for _ in range(_APPROVED - len(companies))]
    rng.shuffle(customers)
    old = [n for n, age in enumerate(ages) if age >= 14]
    unpaid = set(rng.sample(old, 4))  # overdue; the first of them partly paid
    partly = min(unpaid)
    documents: list[dict] = []
    for n, (age, contact) in enumerate(zip(ages, customers)):
        invoice = _invoice(new_id, org, contact, today - timedelta(days=age), rng, moment, data.products)
        if n in unpaid or age < 14:
            paid = (as_decimal(invoice["grossAmount"]) * Decimal("0.4")).quantize(CENT) if n == partly else 0
        else:
            paid = as_decimal(invoice["grossAmount"])
        _settle(invoice, paid)
        documents.append(invoice)
    credited = rng.sample([i for i in documents if i["isPaid"]], 2)
    for original in credited:
        entry = min(date.fromisoformat(original["entryDate"]) + timedelta(days=rng.randint(3, 20)),
                    today - timedelta(days=1))
        contact = next(c for c in companies if c["id"] == original["contactId"])
        line = original["lines"][0]
        credit = _invoice(new_id, org, contact, entry, rng, moment, data.products,
                          lines=[{"productId": line["productId"], "description": f"Kreditering: {line['description']}",
                                  "quantity": 1, "unitPrice": line["unitPrice"]}])
        credit |= {"type": "creditNote", "creditedInvoiceId": original["id"]}
        _settle(credit, as_decimal(credit["grossAmount"]))  # refunded
        documents.append(credit)
    # invoice numbers follow the approvals, credit notes included [I]
    for no, document in enumerate(sorted(documents, key=lambda d: d["approvedTime"]), start=1001):
        document["invoiceNo"] = str(no)
    for document in documents:
        if document["type"] == "creditNote":
            original = next(i for i in documents if i["id"] == document["creditedInvoiceId"])
            document["lineDescription"] = f"Kreditnota til faktura {original['invoiceNo']}"
    for _ in range(_DRAFTS):
        draft = _invoice(new_id, org, rng.choice(companies), today - timedelta(days=rng.randint(1, 5)), rng, moment,
                         data.products)
        draft |= {"state": "draft", "sentState": "unsent", "invoiceNo": None, "approvedTime": None, "balance": 0,
                  "isPaid": False}
        documents.append(draft)
    data.invoices = sorted(documents, key=lambda d: d["createdTime"])
    return data


def _contact(cid: str, org_id: str, kind: str, name: str, street: str, city: str, code: str) -> dict:
    return {"id": cid, "organizationId": org_id, "type": kind, "name": name, "countryId": "DK", "street": street,
            "cityId": None, "cityText": city, "stateText": None, "zipcodeId": None, "zipcodeText": code,
            "contactNo": None, "phone": None, "fax": None, "currencyId": CURRENCY, "registrationNo": None,
            "ean": None, "localeId": "da_DK", "isCustomer": True, "isSupplier": False, "paymentTermsMode": "net",
            "paymentTermsDays": _TERMS, "isArchived": False, "isSalesTaxExempt": False}


def _invoice(new_id, org: dict, contact: dict, entry: date, rng: random.Random, moment, products: list[dict],
             lines: list[dict] | None = None) -> dict:
    """An approved, sent, unpaid invoice to `contact` of 1-3 of `products` (or `lines`), created on its entry date
    (its number is given later, by approval order)."""
    iid = new_id("invoice")
    if lines is None:
        lines = [{"productId": p["id"], "description": p["name"], "quantity": rng.choice((1, 1, 2, 3, 4, 6)),
                  "unitPrice": p["prices"][0]["unitPrice"]} for p in rng.sample(products, rng.randint(1, 3))]
    priced = [price_line({"id": new_id("invoiceLine"), "invoiceId": iid, **line, "taxRateId": TAX_RATE_ID,
                          "priority": n}, "excl") for n, line in enumerate(lines, start=1)]
    amount, tax = invoice_totals(priced)
    created = moment(entry)
    person = next(iter(contact["contactPersons"]), None)
    return {
        "id": iid, "organizationId": org["id"], "type": "invoice", "createdTime": billy_time(created),
        "approvedTime": billy_time(created + timedelta(minutes=rng.randint(1, 30))), "contactId": contact["id"],
        "attContactPersonId": person["id"] if person else None, "entryDate": entry.isoformat(),
        "paymentTermsMode": "net", "paymentTermsDays": _TERMS,
        "dueDate": due_date(entry, "net", _TERMS).isoformat(), "state": "approved", "sentState": "sent",
        "invoiceNo": None, "taxMode": "excl", "amount": number(amount), "tax": number(tax),
        "grossAmount": number(amount + tax), "currencyId": CURRENCY, "exchangeRate": 1, "balance": 0,
        "isPaid": False, "creditedInvoiceId": None, "contactMessage": None,
        "lineDescription": priced[0]["description"] + (" m.m." if len(priced) > 1 else ""), "externalId": None,
        "orderNo": None, "lines": priced}


def _settle(invoice: dict, paid: Decimal | int) -> None:
    balance = as_decimal(invoice["grossAmount"]) - Decimal(paid)
    invoice["balance"] = number(balance)
    invoice["isPaid"] = balance <= 0


def _ascii(name: str) -> str:
    return name.translate(str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa"}))

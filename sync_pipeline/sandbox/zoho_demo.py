"""Deterministic Zoho Invoice demo data (contacts, invoices, credit notes) in the native v3 shapes."""

from __future__ import annotations

import random
import re
from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .demo_data import default_today, paused_gc, rails_time, warsaw_offset

# The demo organisation's time zone is Europe/Berlin: the same EU DST rule as Warsaw, so the shared helpers apply.
ORG_TIME_ZONE = "Europe/Berlin"
# Ids are numeric strings with an organisation-specific prefix, as on the real service.
_CONTACT_ID0 = 4_600_000_010_000_000
_PERSON_ID0 = 4_600_000_020_000_000
_INVOICE_ID0 = 4_600_000_030_000_000
_CREDITNOTE_ID0 = 4_600_000_040_000_000
_LINE_ITEM_ID0 = 4_600_000_050_000_000
_ITEM_ID0 = 4_600_000_000_099_000
CUSTOMFIELD_ID = "4600000000000911"
_SPACE_OFFSET = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")


def zoho_time(moment: datetime) -> str:
    """A Zoho timestamp in the organisation's zone: 2025-06-12T10:14:03+0200."""
    text = rails_time(moment)  # 2025-06-12T10:14:03.000+02:00, same zone rule
    return text[:19] + text[-6:].replace(":", "")


def parse_zoho_time(text: str) -> datetime:
    """Parse a Zoho timestamp (+0200, +02:00 or Z offsets); ValueError when it is not one."""
    # An unencoded '+' in a query string arrives as a space: "…T00:00:00 0000".
    moment = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", text.strip()))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return moment


def field_label(api_name: str) -> str:
    """Label of a custom field from its api_name: cf_account_id -> Account ID."""
    words = api_name.removeprefix("cf_").split("_")
    return " ".join("ID" if w.lower() == "id" else w.capitalize() for w in words if w)


def custom_field(api_name: str, value: str, *, index: int = 1, customfield_id: str = CUSTOMFIELD_ID) -> dict:
    """One entry of a record's `custom_fields`, as Zoho returns it on read."""
    return {"customfield_id": customfield_id, "index": index, "label": field_label(api_name), "api_name": api_name,
            "data_type": "string", "value": value, "value_formatted": value}


def custom_field_hash(fields: list[dict]) -> dict:
    """The `custom_field_hash` that accompanies `custom_fields` on read."""
    out: dict[str, str] = {}
    for f in fields:
        out[f["api_name"]] = f.get("value_formatted", f["value"])
        out[f"{f['api_name']}_unformatted"] = f["value"]
    return out


@dataclass(frozen=True)
class ZohoDemoSpec:
    """What to generate; the remainder after the status shares is open and not yet due (sent or viewed)."""

    seed: int = 11
    customers: int = 30
    invoices_per_customer: int = 5
    months: int = 14
    today: date | None = None  # None -> yesterday in UTC (see resolved_today)
    share_paid: float = 0.5
    share_partial: float = 0.1
    share_overdue: float = 0.2
    share_void: float = 0.05
    share_draft: float = 0.05
    share_without_account_id: float = 0.1
    currencies: tuple[tuple[str, float], ...] = (("EUR", 0.6), ("USD", 0.3), ("GBP", 0.1))
    account_id_field: str = "cf_account_id"

    def __post_init__(self) -> None:
        shares = (self.share_paid, self.share_partial, self.share_overdue, self.share_void, self.share_draft)
        if any(s < 0 for s in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError("status shares must be >= 0 and sum to at most 1")
        if not 0 <= self.share_without_account_id <= 1:
            raise ValueError("share_without_account_id must be between 0 and 1")
        if self.customers < 0 or self.invoices_per_customer < 0 or self.months < 1:
            raise ValueError("customers and invoices_per_customer must be >= 0, months >= 1")
        pairs = tuple(self.currencies.items()) if isinstance(self.currencies, Mapping) else tuple(
            (str(c), float(w)) for c, w in self.currencies)
        if not pairs or any(w < 0 for _, w in pairs) or sum(w for _, w in pairs) <= 0:
            raise ValueError("currencies need positive weights")
        object.__setattr__(self, "currencies", pairs)
        if not self.account_id_field.startswith("cf_"):
            raise ValueError("account_id_field must be a custom field api_name (cf_...)")

    def resolved_today(self) -> date:
        """`today`, or when None yesterday's UTC date, so no timestamp is later than the real time
        (records of "today" are stamped up to 18:00 Berlin time)."""
        return self.today or default_today()


@dataclass
class ZohoData:
    """Generated Zoho Invoice organisation content."""

    contacts: list[dict]
    invoices: list[dict]
    creditnotes: list[dict]
    today: date | None = None  # the generator's "today", so overdue statuses agree with the data


# -- reference tables ----------------------------------------------------------------------------

# currency -> (country, legal form, street, ((city, zip), ...)), several per currency
_PLACES = {
    "EUR": (("Germany", "GmbH", "Friedrichstraße", (("Berlin", "10117"), ("Hamburg", "20095"), ("Köln", "50667"))),
            ("France", "SAS", "Rue Oberkampf", (("Paris", "75011"), ("Lyon", "69002"))),
            ("Netherlands", "B.V.", "Herengracht", (("Amsterdam", "1015 BZ"), ("Rotterdam", "3011 AD"))),
            ("Ireland", "Ltd", "Baggot Street", (("Dublin", "D02 X285"), ("Cork", "T12 RX82"))),
            ("Spain", "S.L.", "Calle de Alcalá", (("Madrid", "28014"), ("Valencia", "46002")))),
    "USD": (("U.S.A.", "Inc.", "Market Street", (("San Francisco", "94105"), ("Denver", "80202"))),
            ("U.S.A.", "LLC", "Congress Avenue", (("Austin", "78701"), ("Chicago", "60601")))),
    "GBP": (("United Kingdom", "Ltd", "Old Street", (("London", "EC1V 9HX"), ("Leeds", "LS1 4DY"))),),
}
_STATES = {"San Francisco": "CA", "Denver": "CO", "Austin": "TX", "Chicago": "IL"}
_DIAL = {"Germany": 49, "France": 33, "Netherlands": 31, "Ireland": 353, "Spain": 34, "U.S.A.": 1,
         "United Kingdom": 44}
_NAME_WORDS = ("Nordlys", "Bluebird", "Harbor", "Summit", "Atlas", "Orion", "Keystone", "Riverside", "Lumen",
               "Cobalt", "Juniper", "Maple", "Granite", "Beacon", "Falcon", "Evergreen", "Quarry", "Meridian",
               "Pioneer", "Sterling", "Willow", "Aurora", "Redwood", "Kestrel")
_NAME_TRADES = ("Logistics", "Analytics", "Studios", "Labs", "Consulting", "Foods", "Robotics", "Health",
                "Systems", "Media", "Energy", "Travel")
_FIRST = ("Anna", "Lukas", "Marie", "Tom", "Sofia", "James", "Emma", "Noah", "Lea", "Oliver", "Clara", "Hugo")
_LAST = ("Schmidt", "Dubois", "de Vries", "Murphy", "García", "Miller", "Taylor", "Becker", "Martin", "Walsh")
# (name, unit rate in EUR cents); other currencies scale by _FX
_CATALOG = (
    ("Starter plan (monthly)", 4900), ("Growth plan (monthly)", 14900), ("Scale plan (monthly)", 39900),
    ("Enterprise licence (annual)", 480000), ("Onboarding package", 120000), ("Premium support (quarter)", 90000),
    ("Additional seats (10)", 9000), ("Consulting hour", 15000),
)
_FX = {"EUR": (100, 100), "USD": (108, 100), "GBP": (85, 100)}  # rate * num / den
_TERMS = ((15, "Net 15"), (30, "Net 30"), (30, "Net 30"), (45, "Net 45"), (14, "Net 14"), (7, "Net 7"))
_OFFSETS = {"+02:00": "+0200", "+01:00": "+0100"}


def _stamp(day: date, seconds: int) -> str:
    """Local business-hours timestamp (08:00 + seconds) with the day's Berlin offset."""
    seconds = min(seconds, 10 * 3600 - 1)
    h, rest = divmod(8 * 3600 + seconds, 3600)
    return f"{day.isoformat()}T{h:02d}:{rest // 60:02d}:{rest % 60:02d}{_OFFSETS[warsaw_offset(day)]}"


def _amount(cents: int) -> float:
    return round(cents / 100, 2)


# -- generator -----------------------------------------------------------------------------------


def generate_zoho(spec: ZohoDemoSpec) -> ZohoData:
    """Contacts, invoices and credit notes of one Zoho Invoice organisation; identical output for an identical spec."""
    rng = random.Random(spec.seed)
    today = spec.resolved_today()
    window = max(1, round(spec.months * 30.437))
    with paused_gc():
        contacts = _contacts(spec, rng, today, window)
        invoices = _invoices(spec, rng, today, window, contacts)
        creditnotes = _creditnotes(spec, rng, today, contacts, invoices)
        _receivables(contacts, invoices, creditnotes)
    return ZohoData(contacts=contacts, invoices=invoices, creditnotes=creditnotes, today=today)


def _contacts(spec: ZohoDemoSpec, rng: random.Random, today: date, window: int) -> list[dict]:
    cum, names = [], []
    total = sum(w for _, w in spec.currencies)
    for code, weight in spec.currencies:
        cum.append((cum[-1] if cum else 0.0) + weight / total)
        names.append(code)
    cum[-1] = 1.0
    # Customers exist at least 60 days before "today", so every status (overdue on a 45-day term) fits.
    created = sorted((rng.randint(-window - 365, -60), rng.randrange(36_000)) for _ in range(spec.customers))
    used: set[str] = set()
    contacts = []
    next_id = _CONTACT_ID0
    for i, (offset, t) in enumerate(created):
        next_id += rng.randint(1, 40)  # ids are shared with other entities on the real service, hence gaps
        currency = names[bisect(cum, rng.random())]
        country, form, street, places = rng.choice(_PLACES.get(currency, _PLACES["EUR"]))
        city, zip_code = rng.choice(places)
        base = f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_TRADES)}"
        name = f"{base} {form}"
        n = 2
        while name in used:
            name, n = f"{base} {n} {form}", n + 1
        used.add(name)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = "".join(ch for ch in base.lower() if ch.isalnum()) + (".com" if currency == "USD" else ".eu")
        email = f"{rng.choice(('billing', 'accounts', 'finance'))}@{domain}"
        phone = f"+{_DIAL[country]} {rng.randint(10**8, 10**9 - 1)}"
        terms, label = rng.choice(_TERMS)
        day = today + timedelta(days=offset)
        created_time = modified_time = _stamp(day, t)
        if rng.random() < 0.3:  # some contacts were edited later
            m_day = min(today, day + timedelta(days=rng.randint(1, 300)))
            modified_time = _stamp(m_day, rng.randrange(36_000) if m_day > day else t + 60)
        fields = []
        if rng.random() >= spec.share_without_account_id:
            fields = [custom_field(spec.account_id_field, f"ACC-{i + 1:05d}")]
        address = {"attention": "", "address": f"{street} {rng.randint(1, 180)}", "street2": "", "city": city,
                   "state": _STATES.get(city, ""), "zip": zip_code, "country": country, "phone": "", "fax": ""}
        contacts.append({
            "contact_id": str(next_id), "contact_name": name, "company_name": name, "contact_type": "customer",
            "customer_sub_type": "business", "status": "active", "first_name": first, "last_name": last,
            "email": email, "phone": phone, "mobile": "", "website": f"https://www.{domain}",
            "currency_code": currency, "payment_terms": terms, "payment_terms_label": label,
            "outstanding_receivable_amount": 0.0, "unused_credits_receivable_amount": 0.0,
            "billing_address": address, "shipping_address": dict(address),
            "contact_persons": [{"contact_person_id": str(_PERSON_ID0 + i), "first_name": first, "last_name": last,
                                 "email": email, "phone": phone, "is_primary_contact": True}],
            "notes": "", "created_time": created_time, "last_modified_time": modified_time,
            "custom_fields": fields, "custom_field_hash": custom_field_hash(fields),
        })
    return contacts


def _invoices(spec: ZohoDemoSpec, rng: random.Random, today: date, window: int, contacts: list[dict]) -> list[dict]:
    s_paid = spec.share_paid
    s_partial = s_paid + spec.share_partial
    s_overdue = s_partial + spec.share_overdue
    s_void = s_overdue + spec.share_void
    s_draft = s_void + spec.share_draft
    rand = rng.random

    # Pass 1: what decides the order (category, issue day, time), so ids and numbers follow creation time.
    skel = []
    for ci, contact in enumerate(contacts):
        since = (date.fromisoformat(contact["created_time"][:10]) - today).days
        lo = max(since, -window)
        term = contact["payment_terms"]
        for _ in range(spec.invoices_per_customer):
            r = rand()
            created = None  # day offset of creation, when it differs from the issue day
            if s_partial <= r < s_overdue:  # overdue: due strictly before today
                hi = -term - 1
                day, cat = (hi if hi < lo else rng.randint(lo, hi)), "overdue"
            elif s_void <= r < s_draft:  # drafts are recent
                day, cat = rng.randint(max(lo, -30), 0), "draft"
            elif r >= s_draft:  # open, not yet due; some are dated in the future
                if rand() < 0.2:
                    day, cat = rng.randint(1, 20), "future"
                    created = rng.randint(-10, 0)
                else:
                    day, cat = rng.randint(max(lo, -term), 0), "open"
            else:
                day = rng.randint(lo, 0)
                cat = "paid" if r < s_paid else "partial" if r < s_partial else "void"
            created = day if created is None else created
            skel.append((created, rng.randrange(36_000), day, ci, cat))
    skel.sort()

    invoices = []
    next_id, next_line = _INVOICE_ID0, _LINE_ITEM_ID0
    for n, (c_off, t, day_off, ci, cat) in enumerate(skel, start=1):
        contact = contacts[ci]
        next_id += 1 if rand() < 0.7 else rng.randint(2, 30)
        currency = contact["currency_code"]
        num, den = _FX.get(currency, (100, 100))
        issued, created_day = today + timedelta(days=day_off), today + timedelta(days=c_off)
        due = issued + timedelta(days=contact["payment_terms"])
        lines, total = [], 0
        for _ in range(1 if (r := rand()) < 0.6 else 2 if r < 0.9 else 3):
            pi = rng.randrange(len(_CATALOG))
            name, rate_eur = _CATALOG[pi]
            rate = rate_eur * num // den
            qty = 1 if rand() < 0.7 else rng.randint(2, 12)
            next_line += 1
            lines.append({"line_item_id": str(next_line), "item_id": str(_ITEM_ID0 + pi), "name": name,
                          "description": "", "rate": _amount(rate), "quantity": float(qty), "discount": 0.0,
                          "tax_id": "", "tax_name": "", "tax_percentage": 0.0, "item_total": _amount(rate * qty)})
            total += rate * qty
        paid, last_payment, status = 0, "", {"overdue": "overdue", "draft": "draft", "future": "sent"}.get(cat)
        created_time = _stamp(created_day, t)
        modified_time = _stamp(created_day, t + 2)
        if cat in ("paid", "partial"):
            delay = rng.randint(0, contact["payment_terms"]) if rand() < 0.8 else rng.randint(1, 45) + \
                contact["payment_terms"]
            p_day = min(today, issued + timedelta(days=delay))
            paid = total if cat == "paid" else total * rng.randint(10, 90) // 100
            status = "paid" if cat == "paid" else "partially_paid"
            last_payment = p_day.isoformat()
            modified_time = _stamp(p_day, rng.randrange(36_000) if p_day > issued else t + 60 + rng.randrange(600))
        elif cat == "void":
            v_day = min(today, issued + timedelta(days=rng.randint(0, 10)))
            status = "void"
            modified_time = _stamp(v_day, rng.randrange(36_000) if v_day > issued else t + 60)
        elif cat == "open":
            status = "viewed" if rand() < 0.5 else "sent"
            modified_time = _stamp(created_day, t + 60 + rng.randrange(3600))
        elif cat in ("overdue", "future"):
            modified_time = _stamp(created_day, t + 60 + rng.randrange(3600))
        token = rng.randbytes(24).hex()
        invoices.append({
            "invoice_id": str(next_id), "customer_id": contact["contact_id"], "customer_name": contact["contact_name"],
            "status": status, "invoice_number": f"INV-{n:06d}", "reference_number": "",
            "date": issued.isoformat(), "due_date": due.isoformat(), "payment_terms": contact["payment_terms"],
            "payment_terms_label": contact["payment_terms_label"], "currency_code": currency, "exchange_rate": 1.0,
            "sub_total": _amount(total), "tax_total": 0.0, "discount_total": 0.0, "total": _amount(total),
            "payment_made": _amount(paid), "credits_applied": 0.0, "write_off_amount": 0.0,
            "balance": _amount(total - paid), "last_payment_date": last_payment, "is_emailed": cat != "draft",
            "created_time": created_time, "last_modified_time": modified_time,
            "invoice_url": f"https://invoice.zoho.eu/SecurePayment?CInvoiceID={token}",
            "custom_fields": [], "line_items": lines,
        })
    return invoices


def _creditnotes(spec: ZohoDemoSpec, rng: random.Random, today: date, contacts: list[dict],
                 invoices: list[dict]) -> list[dict]:
    """About one credit note per ten customers, each against an issued invoice of its customer."""
    candidates = [inv for inv in invoices if inv["status"] not in ("draft", "void") and inv["date"] <= str(today)]
    count = min(len(candidates), round(spec.customers / 10))
    picked = sorted(rng.sample(candidates, count), key=lambda inv: (inv["date"], inv["invoice_id"]))
    names = {c["contact_id"]: c["contact_name"] for c in contacts}
    notes = []
    next_id = _CREDITNOTE_ID0
    for n, inv in enumerate(picked, start=1):
        next_id += rng.randint(1, 20)
        issued = date.fromisoformat(inv["date"])
        day = min(today, issued + timedelta(days=rng.randint(1, 30)))
        total = round(inv["total"] * rng.randint(10, 50) / 100, 2)
        r = rng.random()
        # Drafts are real too: a credit note being prepared, not yet issued (it lowers nothing until opened).
        status = "open" if r < 0.45 else "closed" if r < 0.82 else "void" if r < 0.9 else "draft"
        t = rng.randrange(36_000)
        notes.append({
            "creditnote_id": str(next_id), "creditnote_number": f"CN-{n:05d}", "customer_id": inv["customer_id"],
            "customer_name": names[inv["customer_id"]], "status": status, "reference_number": inv["invoice_number"],
            "date": day.isoformat(), "currency_code": inv["currency_code"], "exchange_rate": 1.0, "total": total,
            "balance": 0.0 if status == "closed" else total, "created_time": _stamp(day, t),
            "last_modified_time": _stamp(day, t + 120 if status == "open" else t + 3600),
        })
    return notes


OPEN_STATUSES = frozenset({"sent", "viewed", "overdue", "partially_paid"})


def _receivables(contacts: list[dict], invoices: list[dict], creditnotes: list[dict]) -> None:
    by_id = {c["contact_id"]: c for c in contacts}
    for inv in invoices:
        if inv["status"] in OPEN_STATUSES:
            contact = by_id[inv["customer_id"]]
            contact["outstanding_receivable_amount"] = round(
                contact["outstanding_receivable_amount"] + inv["balance"], 2)
    for note in creditnotes:
        if note["status"] == "open":
            contact = by_id[note["customer_id"]]
            contact["unused_credits_receivable_amount"] = round(
                contact["unused_credits_receivable_amount"] + note["balance"], 2)

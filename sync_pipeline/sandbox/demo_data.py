"""Deterministic demo data in native vendor shapes (Fakturownia clients, invoices, products)."""

from __future__ import annotations

import base64
import gc
import hashlib
import random
from bisect import bisect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

# -- shared formatting helpers (also used by the simulators) -----------------------------------


def money(cents: int) -> str:
    """Rails BigDecimal style amount string from integer cents: 123000 -> "1230.0", 33999 -> "339.99"."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return f"{sign}{whole}.0"
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


def decimal_str(value: Decimal) -> str:
    """Rails style amount string from a Decimal (rounded half up to cents)."""
    return money(int(value.quantize(Decimal("0.01"), ROUND_HALF_UP) * 100))


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def warsaw_offset(day: date) -> str:
    """UTC offset of Europe/Warsaw during business hours of `day` (EU DST rule; no tz database needed)."""
    return "+02:00" if _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10) else "+01:00"


def rails_time(moment: datetime) -> str:
    """ISO 8601 as Rails renders it in Warsaw: 2025-06-12T10:14:05.000+02:00."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    year = utc.year
    summer = (datetime.combine(_last_sunday(year, 3), datetime.min.time()) + timedelta(hours=1) <= utc
              < datetime.combine(_last_sunday(year, 10), datetime.min.time()) + timedelta(hours=1))
    local = utc + timedelta(hours=2 if summer else 1)
    return f"{local:%Y-%m-%dT%H:%M:%S}.000{'+02:00' if summer else '+01:00'}"


def token_for(seed: str, length: int = 20) -> str:
    """Deterministic alphanumeric token derived from `seed` (used for records created at run time)."""
    raw = base64.b64encode(hashlib.blake2b(seed.encode(), digest_size=30).digest()).decode()
    return raw.translate(_ALNUM_FIX)[:length]


_ALNUM_FIX = str.maketrans({"+": "k", "/": "Q", "=": "x"})


def _tokens(rng: random.Random, count: int, length: int = 20) -> list[str]:
    # One bulk draw and a base64 encode is ~50x faster than per-token rng.choices.
    raw = base64.b64encode(rng.randbytes(count * length * 3 // 4 + 3)).decode().translate(_ALNUM_FIX)
    return [raw[i : i + length] for i in range(0, count * length, length)]


# -- spec and result -----------------------------------------------------------------------------

_KINDS = {"vat": 0.80, "proforma": 0.06, "receipt": 0.04, "advance": 0.04, "final": 0.03, "correction": 0.03}
_CURRENCIES = {"PLN": 0.75, "EUR": 0.20, "USD": 0.05}


@dataclass(frozen=True)
class DemoSpec:
    """What to generate; the remainder after paid/partial/overdue/void shares is open, not yet due."""

    seed: int = 42
    clients: int = 40
    invoices_per_client: int = 6
    months: int = 18
    today: date | None = None  # None -> yesterday in UTC (see resolved_today)
    share_paid: float = 0.55
    share_partial: float = 0.10
    share_overdue: float = 0.20
    share_void: float = 0.05
    kinds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(_KINDS)), hash=False)
    currencies: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(_CURRENCIES)), hash=False)
    account_prefix: str = "demo"

    def __post_init__(self) -> None:
        shares = (self.share_paid, self.share_partial, self.share_overdue, self.share_void)
        if any(s < 0 for s in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError("status shares must be >= 0 and sum to at most 1")
        if self.clients < 0 or self.invoices_per_client < 0 or self.months < 1:
            raise ValueError("clients and invoices_per_client must be >= 0, months >= 1")
        for name in ("kinds", "currencies"):
            weights = getattr(self, name)
            if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"{name} needs positive weights")
            object.__setattr__(self, name, MappingProxyType(dict(weights)))

    def resolved_today(self) -> date:
        """`today`, or when None yesterday's UTC date.

        Records of the data's "today" are stamped up to 18:00 Warsaw time and the simulators' clocks start
        at that day's 06:00 UTC; with the current date, early in the UTC day they would lie in the future,
        and a pipeline rightly distrusts timestamps from the future. Yesterday's are all in the past."""
        return self.today or default_today()


def default_today() -> date:
    """The demo data's "today" when none is given: yesterday (UTC), so no generated timestamp is later than now."""
    return datetime.now(UTC).date() - timedelta(days=1)


@dataclass
class FakturowniaData:
    """Generated Fakturownia account content."""

    clients: list[dict]
    invoices: list[dict]
    products: list[dict] = field(default_factory=list)
    today: date | None = None  # the generator's "today", so period filters agree with the data


# -- reference tables ----------------------------------------------------------------------------

_TRADES = ("Stolarnia", "Piekarnia", "Hurtownia", "Drukarnia", "Kancelaria", "Biuro Rachunkowe", "Apteka",
           "Serwis", "Studio", "Agencja", "Transport", "Budownictwo", "Ogrodnictwo", "Pracownia", "Gabinet",
           "Warsztat", "Salon", "Hotel", "Przychodnia", "Wytwórnia")
_SURNAMES = ("Kowalczyk", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Szymański",
             "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski", "Grabowski",
             "Pawłowski", "Michalski", "Król", "Wieczorek", "Jabłoński", "Nowakowski", "Majewski", "Olszewski",
             "Stępień", "Malinowski", "Jaworski", "Adamczyk", "Dudek", "Nowicki")
_PL_FORMS = ("Sp. z o.o.", "Sp. z o.o.", "S.A.", "s.c.", "Sp.j.", "")
_FOREIGN = {  # currency -> (country, legal form, street, (city, post code)...)
    "EUR": (("DE", "GmbH", "Hauptstraße", ("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095")),
            ("FR", "SARL", "Rue de la Paix", ("Paris", "75001"), ("Lyon", "69001")),
            ("NL", "B.V.", "Keizersgracht", ("Amsterdam", "1012 AB"), ("Utrecht", "3511 AA")),
            ("CZ", "s.r.o.", "Národní", ("Praha", "110 00"), ("Brno", "602 00"))),
    "USD": (("US", "LLC", "Main Street", ("New York", "NY 10001"), ("Austin", "TX 78701")),
            ("GB", "Ltd", "High Street", ("London", "EC1A 1BB"), ("Manchester", "M1 1AE"))),
}
_DIAL = {"DE": 49, "FR": 33, "NL": 31, "CZ": 420, "US": 1, "GB": 44}
# The country field is free text in Fakturownia: people type codes, Polish, native or English names, or
# nothing. Picked by client id (not drawn), so the rest of the demo data stays as it was.
_TYPED_COUNTRY = {
    "PL": ("PL", "Polska", "PL", "Poland", "", None, "PL", "polska"),
    "DE": ("DE", "Niemcy", "Deutschland", "Germany"),
    "FR": ("FR", "Francja", "France"),
    "NL": ("NL", "Holandia", "Netherlands", "Nederland"),
    "CZ": ("Czech Republic", "CZ", "Czechy", "Česká republika"),
    "US": ("US", "USA", "United States"),
    "GB": ("GB", "United Kingdom", "UK", "Wielka Brytania"),
}
_FOREIGN_WORDS = ("Müller", "Schmidt", "Dupont", "Lefèvre", "Jansen", "de Vries", "Novák", "Svoboda",
                  "Northwind", "Bluebird", "Harbor", "Summit", "Atlas", "Orion", "Keystone", "Riverside")
_FOREIGN_TRADES = ("Logistik", "Consulting", "Trading", "Software", "Design", "Services", "Systems", "Media")
_PL_CITIES = (("Poznań", "60"), ("Warszawa", "00"), ("Kraków", "30"), ("Wrocław", "50"), ("Gdańsk", "80"),
              ("Łódź", "90"), ("Lublin", "20"), ("Katowice", "40"), ("Szczecin", "70"), ("Białystok", "15"))
_PL_STREETS = ("ul. Głogowska", "ul. Marszałkowska", "ul. Długa", "ul. Piotrkowska", "ul. Floriańska",
               "al. Jerozolimskie", "ul. Świętojańska", "ul. Mickiewicza", "ul. Kościuszki", "ul. Słowackiego")
# (code, name, unit price net in PLN grosze, VAT rate, unit)
_CATALOG = (
    ("LIC-PRO-1Y", "Licencja roczna PRO", 100000, 23, "szt"),
    ("LIC-STD-1M", "Abonament Standard (miesiąc)", 14900, 23, "mies."),
    ("LIC-BIZ-1M", "Abonament Business (miesiąc)", 29900, 23, "mies."),
    ("IMPL-H", "Wdrożenie – godzina konsultanta", 25000, 23, "h"),
    ("TRAIN-D", "Szkolenie stacjonarne (dzień)", 320000, 23, "szt"),
    ("SUP-PREM", "Wsparcie Premium (kwartał)", 90000, 23, "szt"),
    ("DEV-H", "Prace programistyczne", 18000, 23, "h"),
    ("HOST-M", "Hosting dedykowany", 45000, 23, "mies."),
    ("BOOK-PL", "Podręcznik użytkownika (druk)", 8900, 8, "szt"),
    ("SMS-1000", "Pakiet 1000 SMS", 9000, 23, "szt"),
    ("INT-KSEF", "Integracja KSeF", 150000, 23, "szt"),
    ("AUDIT", "Audyt bezpieczeństwa", 780000, 23, "szt"),
)
_FX = {"PLN": (1, 1), "EUR": (100, 430), "USD": (100, 400)}  # PLN price * num / den
NUMBER_PREFIX = {  # invoice number prefix per kind, e.g. FV/2025/06/014
    "vat": "FV", "proforma": "PRO", "receipt": "PAR", "advance": "FZAL", "final": "FKON", "correction": "KOR"}
_TIMES = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(8, 18) for m in range(60) for s in range(60)]
_N_TIMES = len(_TIMES)
_TERMS = (7, 14, 14, 14, 21, 30, 30)
_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻäöüéèčěřšžýáíůÄÖÜÉ", "acelnoszzACELNOSZZaoueecerszyaiuAOUE")


def _table(weights: Mapping[str, float]) -> tuple[list[float], list[str]]:
    total = sum(weights.values())
    acc, cum = 0.0, []
    for w in weights.values():
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0
    return cum, list(weights)


def _nip(rng: random.Random) -> str:
    while True:  # Polish NIP with a valid check digit, like a real buyer's
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
        check = sum(d * w for d, w in zip(digits, (6, 5, 7, 2, 3, 4, 5, 6, 7))) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _slug(text: str) -> str:
    return "".join(ch for ch in text.translate(_ASCII).lower() if ch.isalnum())


# -- generator -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    """Day-indexed string tables: index 0 is the earliest client creation day, `today` the last index."""

    iso: list[str]
    off: list[str]
    start: int  # first day of the invoice window
    today: int

    @classmethod
    def build(cls, today: date, months: int) -> _Calendar:
        window = max(1, round(months * 30.437))
        first = today - timedelta(days=window + 400)  # clients may predate the invoice window
        days = [first + timedelta(days=i) for i in range(window + 401 + max(_TERMS))]  # + due dates after today
        return cls([d.isoformat() for d in days], [warsaw_offset(d) for d in days], 400, window + 400)

    def stamp(self, day: int, t: int) -> str:
        return f"{self.iso[day]}T{_TIMES[t]}.000{self.off[day]}"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC: building millions of acyclic records triggers full passes that free nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_fakturownia(spec: DemoSpec) -> FakturowniaData:
    """Clients, invoices and products of one Fakturownia account; identical output for an identical spec."""
    rng = random.Random(spec.seed)
    today = spec.resolved_today()
    cal = _Calendar.build(today, spec.months)
    with paused_gc():
        products = _products(cal)
        clients, client_days, client_currency = _clients(spec, rng, cal)
        invoices = _invoices(spec, rng, cal, clients, client_days, client_currency, products)
    return FakturowniaData(clients=clients, invoices=invoices, products=products, today=today)


def _products(cal: _Calendar) -> list[dict]:
    out = []
    for i, (code, name, net, rate, unit) in enumerate(_CATALOG):
        ts = cal.stamp(i, 3600 + i * 60)
        out.append({"id": 5500 + i, "name": name, "code": code, "price_net": money(net),
                    "price_gross": money(net + (net * rate + 50) // 100), "tax": str(rate), "currency": "PLN",
                    "quantity_unit": unit, "service": unit != "szt" or net > 50000, "disabled": False,
                    "created_at": ts, "updated_at": ts})
    return out


# The seller's departments (companies, VENDOR_APIS §1.7): invoices are issued by the first; a quarter of the
# client cards belong to the second. Not drawn from the random stream, so the rest of the demo stays as it was.
DEPARTMENTS = ({"id": 7781, "name": "Acme Software Sp. z o.o.", "shortcut": "Acme"},
               {"id": 7782, "name": "Oddział Kraków", "shortcut": "Kraków"})


def _clients(spec: DemoSpec, rng: random.Random, cal: _Calendar):
    n = spec.clients
    cur_cum, cur_names = _table(spec.currencies)
    # Created at least 60 days before "today" so that every status (e.g. overdue on a 30-day term) fits.
    created = sorted((rng.randint(cal.start - 365, cal.today - 60), rng.randrange(_N_TIMES)) for _ in range(n))
    tokens = _tokens(rng, n)
    names: set[str] = set()
    taxes: set[str] = set()
    clients, client_days, currencies = [], [], []
    next_id = 110_000_000
    for i, (day, t) in enumerate(created):
        next_id += rng.randint(1, 9)  # ids are global across accounts on the real service, hence gaps
        currency = cur_names[bisect(cur_cum, rng.random())]
        if currency == "PLN":
            city, pc = _PL_CITIES[rng.randrange(len(_PL_CITIES))]
            country, street = "PL", f"{_PL_STREETS[rng.randrange(len(_PL_STREETS))]} {rng.randint(1, 180)}"
            post_code = f"{pc}-{rng.randint(1, 999):03d}"
            name = f"{rng.choice(_TRADES)} {rng.choice(_SURNAMES)}"
            form = rng.choice(_PL_FORMS)
            tax_no, mailbox, tld = _nip(rng), rng.choice(("biuro", "faktury", "ksiegowosc", "kontakt")), "pl"
            phone = f"+48 {rng.randint(500, 899)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        else:
            country, form, street_name, *places = rng.choice(_FOREIGN.get(currency, _FOREIGN["EUR"]))
            city, post_code = rng.choice(places)
            street = f"{street_name} {rng.randint(1, 240)}"
            name = f"{rng.choice(_FOREIGN_WORDS)} {rng.choice(_FOREIGN_TRADES)}"
            tax_no = (f"{rng.randint(10, 99)}-{rng.randint(10**6, 10**7 - 1)}" if country == "US"
                      else f"{country}{rng.randint(10**8, 10**9 - 1)}")
            mailbox, tld = rng.choice(("invoices", "accounts", "billing")), country.lower()
            phone = f"+{_DIAL[country]} {rng.randint(10**8, 10**9 - 1)}"
        full = f"{name} {form}".strip()
        if full in names:  # keep names unique: duplicates belong in targeted tests, not the demo
            full = f"{name}-{rng.choice(_SURNAMES)} {form}".strip()
            while full in names:
                full = f"{name} {len(names)} {form}".strip()
        names.add(full)
        while tax_no in taxes:
            tax_no = _nip(rng) if country == "PL" else tax_no[:-1] + str(rng.randint(0, 9))
        taxes.add(tax_no)
        created_at = updated_at = cal.stamp(day, t)
        if rng.random() < 0.3:  # some client cards were edited later
            u_day = min(cal.today, day + rng.randint(1, 300))
            updated_at = cal.stamp(u_day, rng.randrange(_N_TIMES))
        clients.append({
            "id": next_id, "name": full, "tax_no": tax_no,
            "email": f"{mailbox}@{_slug(full[: len(full) - len(form)] if form else full)[:40]}.{tld}",
            "phone": phone, "street": street, "city": city, "post_code": post_code,
            "country": _TYPED_COUNTRY[country][next_id % len(_TYPED_COUNTRY[country])],
            "external_id": f"crm-{i + 1:06d}" if rng.random() < 0.9 else None,
            "company": True, "kind": "buyer", "created_at": created_at, "updated_at": updated_at,
            "token": tokens[i], "balance": "0.0", "deleted": False,
            "department_id": DEPARTMENTS[1]["id"] if i % 4 == 3 else DEPARTMENTS[0]["id"],  # the seller's company
        })
        client_days.append(day)
        currencies.append(currency)
    return clients, client_days, currencies


def _price_tables(currencies, products) -> dict[str, list[tuple[dict, list[tuple]]]]:
    """Per currency and product: a position template and (qty string, totals) for quantities 0..10."""
    prices = {}
    for cur in currencies:
        num, den = _FX.get(cur, (100, 450))
        rows = []
        for pi, (_code, name, net_pln, rate, unit) in enumerate(_CATALOG):
            net = net_pln * num // den
            rate = rate if cur == "PLN" else 0  # export of services: "np" (not subject to Polish VAT)
            by_qty = []
            for q in range(11):
                tn = net * q
                tg = tn + (tn * rate + 50) // 100
                by_qty.append((f"{q}.0", money(tn), money(tg), tn, tg))
            template = {"id": None, "invoice_id": None, "product_id": products[pi]["id"], "name": name,
                        "quantity": "1.0", "quantity_unit": unit, "tax": str(rate) if cur == "PLN" else "np",
                        "price_net": money(net), "price_gross": money(net + (net * rate + 50) // 100),
                        "total_price_net": None, "total_price_gross": None}
            rows.append((template, by_qty))
        prices[cur] = rows
    return prices


def invoice_template(client: dict, currency: str, seller: str) -> dict:
    """All invoice keys in API order, with the buyer copied from the client; per-invoice values overwrite.

    At most 42 keys on purpose: CPython then uses a 64-slot table, half the memory of a 43+ key dict.
    """
    return {
        "id": None, "kind": "vat", "number": None, "income": True, "status": "issued", "issue_date": None,
        "sell_date": None, "transaction_date": None, "payment_to": None, "payment_to_kind": "other_date",
        "paid_date": None, "price_net": None, "price_tax": None, "price_gross": None, "paid": "0.0",
        "currency": currency, "exchange_rate": "1.0", "lang": "pl", "payment_type": "transfer",
        "client_id": client["id"], "buyer_name": client["name"], "buyer_tax_no": client["tax_no"],
        "buyer_email": client["email"], "buyer_phone": client["phone"], "buyer_street": client["street"],
        "buyer_city": client["city"], "buyer_post_code": client["post_code"], "buyer_country": client["country"],
        "buyer_company": True, "seller_name": seller, "department_id": 7781,
        "oid": None, "from_invoice_id": None, "description": None, "token": None, "view_url": None,
        "payment_url": None, "cancelled": False, "created_at": None, "updated_at": None,
        "positions": None,
    }


def _invoices(spec, rng, cal, clients, client_days, client_currency, products):
    kind_cum, kind_names = _table(spec.kinds)
    s_paid = spec.share_paid
    s_partial = s_paid + spec.share_partial
    s_overdue = s_partial + spec.share_overdue
    s_void = s_overdue + spec.share_void
    per = spec.invoices_per_client
    rand = rng.random  # int(rand() * n) instead of randrange: 4x cheaper, and this loop runs millions of times
    start_idx, t_idx = cal.start, cal.today
    day_iso, day_off = cal.iso, cal.off
    n_times = _N_TIMES

    # Pass 1: what decides ordering (category, dates, time); sorted by creation so ids/numbers follow time.
    skel = []
    for ci in range(len(clients)):
        lo = max(client_days[ci], start_idx)
        for _ in range(per):
            r = rand()
            term = _TERMS[int(rand() * 7)]
            if s_partial <= r < s_overdue:  # overdue: due date strictly before today
                hi = t_idx - term - 1
                day = hi if hi < lo else lo + int(rand() * (hi - lo + 1))
                cat = 2
            elif r >= s_void:  # open: due today or later
                first = max(lo, t_idx - term)
                day = first + int(rand() * (t_idx - first + 1))
                cat = 4
            else:
                day = lo + int(rand() * (t_idx - lo + 1))
                cat = 0 if r < s_paid else 1 if r < s_partial else 3
            skel.append((day * n_times + int(rand() * n_times), ci, cat, term))
    skel.sort()

    # Pass 2: build records from templates (dict.copy + a few stores is ~3x faster than a 44-key literal).
    base_url = f"https://{spec.account_prefix}.fakturownia.pl"
    seller = f"{spec.account_prefix.replace('-', ' ').title()} Software Sp. z o.o."
    templates = [invoice_template(c, cur, seller) for c, cur in zip(clients, client_currency)]
    prices = _price_tables(spec.currencies, products)
    n_cat = len(_CATALOG)
    month_of = [d[:7].replace("-", "/") for d in day_iso]
    compact_of = [d.replace("-", "") for d in day_iso]
    tokens = _tokens(rng, len(skel))
    amounts: dict[int, str] = {}  # amount strings repeat a lot; sharing them saves allocations

    def amount(cents: int) -> str:
        text = amounts.get(cents)
        if text is None:
            text = amounts[cents] = money(cents)
        return text

    seq: dict[tuple[str, str], int] = {}
    last_of_client: dict[int, int] = {}
    invoices = []
    append = invoices.append
    next_id, next_pos = 398_000_000, 771_000_000
    oid_day, oid_n = -1, 0
    last = n_times - 1
    for n, (key, ci, cat, term) in enumerate(skel):
        day, t = divmod(key, n_times)
        next_id += 1 if rand() < 0.75 else 2 + int(rand() * 5)
        kind = kind_names[bisect(kind_cum, rand())]
        prefix = NUMBER_PREFIX.get(kind) or kind.upper()
        iso = day_iso[day]
        ym = month_of[day]
        number_seq = seq[(prefix, ym)] = seq.get((prefix, ym), 0) + 1

        positions, net_total, gross_total = [], 0, 0
        rows = prices[client_currency[ci]]
        for _ in range(1 if (r := rand()) < 0.6 else 2 if r < 0.9 else 3):
            template, by_qty = rows[int(rand() * n_cat)]
            qs, tns, tgs, tn, tg = by_qty[1 if rand() < 0.7 else 2 + int(rand() * 9)]
            if kind == "correction":  # corrections reduce the original: negative quantities and totals
                qs, tn, tg = "-" + qs, -tn, -tg
                tns, tgs = amount(tn), amount(tg)
            next_pos += 1
            pos = template.copy()
            pos["id"], pos["invoice_id"], pos["quantity"] = next_pos, next_id, qs
            pos["total_price_net"], pos["total_price_gross"] = tns, tgs
            positions.append(pos)
            net_total += tn
            gross_total += tg

        inv = templates[ci].copy()
        gross = inv["price_gross"] = amount(gross_total)
        off = day_off[day]
        if cat <= 1:
            delay = int(rand() * (term + 1)) if rand() < 0.8 else term + 1 + int(rand() * 45)
            p_day = day + delay if day + delay < t_idx else t_idx
            p_t = int(rand() * n_times) if p_day > day else min(last, t + 1 + int(rand() * 600))
            paid_date = inv["paid_date"] = day_iso[p_day]
            updated_at = f"{paid_date}T{_TIMES[p_t]}.000{day_off[p_day]}"
            if cat == 0:
                inv["status"], inv["paid"] = "paid", gross
            else:
                inv["status"], inv["paid"] = "partial", amount(gross_total * (10 + int(rand() * 81)) // 100)
        elif cat == 3:  # void: cancelled, or rejected by the buyer
            c_day = day + int(rand() * 11)
            c_day = c_day if c_day < t_idx else t_idx
            c_t = int(rand() * n_times) if c_day > day else min(last, t + 60)
            updated_at = f"{day_iso[c_day]}T{_TIMES[c_t]}.000{day_off[c_day]}"
            if rand() < 0.7:
                inv["cancelled"] = True
            else:
                inv["status"] = "rejected"
        elif rand() < 0.6:  # unpaid and emailed a little after issuing
            inv["status"] = "sent"
            updated_at = f"{iso}T{_TIMES[min(last, t + 60 + int(rand() * 3600))]}.000{off}"
        else:
            updated_at = f"{iso}T{_TIMES[min(last, t + 2)]}.000{off}"

        if kind == "vat" or kind == "receipt":
            if day != oid_day:
                oid_day, oid_n = day, 0
            oid_n += 1
            inv["oid"] = f"SHOP-{compact_of[day]}-{oid_n}"
        if kind == "correction":
            inv["from_invoice_id"] = last_of_client.get(ci)
        else:
            last_of_client[ci] = next_id
        token = tokens[n]
        inv["id"], inv["kind"], inv["number"] = next_id, kind, f"{prefix}/{ym}/{number_seq:03d}"
        inv["issue_date"] = inv["sell_date"] = inv["transaction_date"] = iso
        inv["payment_to"] = day_iso[day + term]
        inv["price_net"], inv["price_tax"] = amount(net_total), amount(gross_total - net_total)
        inv["token"], inv["view_url"] = token, f"{base_url}/invoice/{token}"
        inv["payment_url"] = f"{base_url}/invoice/payment/{token}"
        inv["created_at"], inv["updated_at"] = f"{iso}T{_TIMES[t]}.000{off}", updated_at
        inv["positions"] = positions
        append(inv)
    return invoices


def sugester_demo_clients(fakturownia_clients: list[dict], count: int) -> list[dict]:
    """Clients someone typed into Sugester before the sync ran: the first carries the tax number of the first
    Fakturownia client (the sync pairs them instead of duplicating), the others are Sugester's own."""
    out = []
    for n in range(count):
        if n == 0 and fakturownia_clients:
            twin = fakturownia_clients[0]
            out.append({"name": twin["name"], "tax_no": twin["tax_no"], "city": twin["city"],
                        "email": twin["email"], "phone": twin["phone"]})
        else:
            out.append({"name": f"{_TRADES[n % len(_TRADES)]} {_SURNAMES[(3 * n) % len(_SURNAMES)]} (Sugester)",
                        "email": f"kontakt{n}@sugester-demo.example", "phone": f"+48 500 600 {700 + n}",
                        "city": _PL_CITIES[n % len(_PL_CITIES)][0], "department_id": 301})
    return out

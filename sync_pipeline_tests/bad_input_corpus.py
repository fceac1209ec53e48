"""Issue 7's bad-input corpus: what real exports contain, and what must become of each record.

A case is a mutation of a realistic record taken from the simulator's own data (or, for transport cases,
a broken answer) and its expected outcome:
- `quarantine`: the record lands in staging.quarantine with a reason containing `reason` (short, even
  for 1 MB values), and is not staged;
- `staged`: a quirk real APIs produce that is valid: the record stages, with the `staged` column values;
- `error`: the run fails with a message containing `reason`, which names the system and the endpoint;
  nothing of the broken page lands and the cursor stays.

Every record carries its case's marker `[<id>]` in a free-text field the staging SQL ignores (Fakturownia
clients: `note`, invoices: `oid`; Zoho contacts: `notes`, invoices and credit notes: `reference_number`;
a record that is not an object is the marker itself), so the test finds its rows in raw, staging and
quarantine whatever else is broken.

Accounting of a run (test_bad_input_corpus asserts it per entity): records fetched =
records landed + identical copies (`duplicates_identical` in the extract metadata: the same record twice
in one read is landed, staged and counted once) + superseded versions (`superseded_in_read`: the older
version of a record whose newer version came in the same read); and records landed = staged + quarantined.
A conflicting pair (same id and updated_at, other content) is landed twice and quarantined twice.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sync_pipeline.sandbox.verbatim import RawJson
from sync_pipeline.sandbox.zoho_demo import custom_field, custom_field_hash

DROP = object()  # a change that removes the key
MB = 1_000_000


@dataclass(frozen=True)
class Ref:
    """The id of another case's record (an invoice of a client that is itself a case)."""

    case: str


@dataclass(frozen=True)
class Case:
    id: str
    system: str        # "fakturownia" | "zoho"
    entity: str        # "clients" | "invoices" | "creditnotes" | "transport"
    description: str
    make: Callable[..., Any]  # (seed, case id) -> records to serve; transport: (sandbox) -> None, sets the fault
    expect: str        # "quarantine" | "staged" | "error"
    # substring of every quarantine reason of the record, or of the run's error; "{n}" (the case's number)
    # and "{<case id>}" (the id of that case's record) are filled in from the seed
    reason: str = ""
    staged: Mapping[str, Any] = field(default_factory=dict)  # columns of the staged row (staging.accounts/invoices)
    copies: int = 1    # rows the case leaves in quarantine (a conflicting pair: 2)
    accounting: str = ""  # "duplicates_identical" | "superseded_in_read": where its extra copy is counted
    page: int = 1      # transport: the page that breaks (records of earlier pages are kept whole)


def marker(case_id: str) -> str:
    return f"[{case_id}]"


# -- seeds: realistic records from the simulators' own data --------------------------------------------------


class _Seed:
    """Numbers the record cases of one vendor; each case's record gets an id of its own from its number."""

    def __init__(self, cases: list[Case]):
        self._n = {c.id: n for n, c in enumerate(cases, start=1)}
        self._entity = {c.id: c.entity for c in cases}

    def rid(self, case_id: str, entity: str) -> Any:
        raise NotImplementedError

    def ref(self, case_id: str) -> Any:
        return self.rid(case_id, self._entity[case_id])

    def fill(self, case: Case, value: Any) -> Any:
        """`value` with "{n}" and "{<case id>}" filled in (strings only)."""
        if not isinstance(value, str) or "{" not in value:
            return value
        return value.format(n=self._n[case.id], **{cid: self.ref(cid) for cid in self._n})


class FakturowniaSeed(_Seed):
    """Records shaped like the simulator's: a client and a VAT invoice (issued, PLN) of a real client."""

    def __init__(self, sim, cases: list[Case]):
        super().__init__(cases)
        self._client = copy.deepcopy(next(iter(sim.clients.values())))
        self._invoice = copy.deepcopy(next(
            i for i in sim.invoices.values() if i["kind"] == "vat" and i["currency"] == "PLN" and not i["cancelled"]))
        self._invoice.pop("positions", None)  # lists omit positions
        self._invoice.update(status="issued", paid="0.0", paid_date=None)

    def rid(self, case_id: str, entity: str) -> int:
        return (880_000_000 if entity == "clients" else 990_100_000) + self._n[case_id]

    def client(self, case_id: str, **changes) -> dict:
        n = self._n[case_id]
        base = self._client | {"id": self.rid(case_id, "clients"), "note": marker(case_id),
                               "name": f"Pracownia Korpus {n} Sp. z o.o.", "tax_no": f"52100{n:05d}",
                               "email": f"biuro{n}@korpus.example.pl", "external_id": f"crm-corpus-{n}"}
        return _apply(base, changes, self)

    def invoice(self, case_id: str, **changes) -> dict:
        n = self._n[case_id]
        base = self._invoice | {"id": self.rid(case_id, "invoices"), "oid": marker(case_id),
                                "number": f"FV/KORPUS/{n:03d}", "price_net": "1000.0", "price_tax": "230.0",
                                "price_gross": "1230.0", "paid": "0.0"}
        return _apply(base, changes, self)


class ZohoSeed(_Seed):
    """Records shaped like the simulator's: a contact with its account id, an invoice (sent) and a credit
    note (open) of a matched real contact."""

    FIELD = "cf_account_id"

    def __init__(self, sim, cases: list[Case]):
        super().__init__(cases)
        contact = next(c for c in sim.contacts.values() if c["custom_field_hash"].get(self.FIELD))
        self._contact = copy.deepcopy(contact)
        invoice = next(i for i in sim.invoices.values() if i["customer_id"] == contact["contact_id"])
        self._invoice = {k: copy.deepcopy(v) for k, v in invoice.items() if k != "line_items"}
        self._invoice.update(status="sent", total=1250.0, sub_total=1250.0, payment_made=0.0, balance=1250.0,
                             last_payment_date="", currency_code="EUR")
        note = next(iter(sim.creditnotes.values()), None) or {
            "creditnote_number": "CN-00001", "status": "open", "exchange_rate": 1.0,
            "created_time": invoice["created_time"], "last_modified_time": invoice["last_modified_time"]}
        self._creditnote = copy.deepcopy(note) | {
            "customer_id": contact["contact_id"], "customer_name": contact["contact_name"], "status": "open",
            "date": invoice["date"], "currency_code": "EUR", "total": 125.0, "balance": 125.0}

    def rid(self, case_id: str, entity: str) -> str:
        base = {"clients": 4_600_000_019_000_000, "invoices": 4_600_000_039_000_000,
                "creditnotes": 4_600_000_049_000_000}[entity]
        return str(base + self._n[case_id])

    def client(self, case_id: str, **changes) -> dict:
        n = self._n[case_id]
        name = f"Corpus Analytics {n} GmbH"
        fields = [custom_field(self.FIELD, f"ACC-CORPUS-{n:03d}")]
        base = self._contact | {"contact_id": self.rid(case_id, "clients"), "notes": marker(case_id),
                                "contact_name": name, "company_name": name, "email": f"billing{n}@corpus.example",
                                "custom_fields": fields, "custom_field_hash": custom_field_hash(fields)}
        return _apply(base, changes, self)

    def invoice(self, case_id: str, **changes) -> dict:
        n = self._n[case_id]
        base = self._invoice | {"invoice_id": self.rid(case_id, "invoices"), "reference_number": marker(case_id),
                                "invoice_number": f"INV-C{n:05d}"}
        return _apply(base, changes, self)

    def creditnote(self, case_id: str, **changes) -> dict:
        n = self._n[case_id]
        base = self._creditnote | {"creditnote_id": self.rid(case_id, "creditnotes"),
                                   "reference_number": marker(case_id), "creditnote_number": f"CN-C{n:05d}"}
        return _apply(base, changes, self)


def _apply(base: dict, changes: Mapping[str, Any], seed) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, Ref):
            out[key] = seed.ref(value.case)
        else:
            out[key] = value
    return out


def one(record: str, /, **changes) -> Callable:
    """A make: one record of the seed's `record` ("client", "invoice", "creditnote") with these changes."""
    return lambda seed, cid: [getattr(seed, record)(cid, **changes)]


def twice(record: str, second: Mapping[str, Any] | None = None, /, **changes) -> Callable:
    """A make: the same record twice in one read; the second copy with `second` changed (None: identical)."""
    def make(seed, cid):
        first = getattr(seed, record)(cid, **changes)
        return [first, _apply(first, second or {}, seed)]
    return make


def not_an_object(value: Any) -> Callable:
    """A make: a bare JSON value in the list where a record object belongs."""
    return lambda seed, cid: [value]


# -- transport answers --------------------------------------------------------------------------------------


def _latin2_page(sim) -> bytes:
    """A real page sent in ISO-8859-2 (an old proxy "fixing" the encoding): ł, ą, ś become single bytes."""
    page = [{k: v for k, v in i.items() if k != "positions"} for i in list(sim.invoices.values())[:5]]
    page[0]["buyer_name"] = "Zakład Usług Leśnych Łódź"
    return json.dumps(page, ensure_ascii=False).encode("iso-8859-2", "replace")


def _cp1252_page(sim) -> bytes:
    """A real Zoho page sent in Windows-1252: ü, ö and the dash become single bytes."""
    invoices = [{k: v for k, v in i.items() if k != "line_items"} for i in list(sim.invoices.values())[:3]]
    invoices[0]["customer_name"] = "Müller & Söhne Köln – Büro"
    body = {"code": 0, "message": "success", "invoices": invoices,
            "page_context": {"page": 1, "per_page": 200, "has_more_page": False}}
    return json.dumps(body, ensure_ascii=False).encode("cp1252", "replace")


F_RETRIES = 3  # conftest.write_config: retry max_attempts
Z_RETRIES = 4  # test_e2e_zoho_csb.zoho_config: retry max_attempts
NOT_JSON = "with a body that is not valid JSON after"
NOT_UTF8 = "with a body that is not UTF-8 text after"

F_FUTURE = "2099-01-01T00:00:00.000+01:00"
F_NEWER = "2026-11-25T12:00:00.000+01:00"
Z_FUTURE = "2099-01-01T00:00:00+0100"
Z_NEWER = "2026-11-25T12:00:00+0100"


CASES: list[Case] = [
    # ---------------------------------------------------------------- Fakturownia clients
    Case("fc_name_control", "fakturownia", "clients",
         "NUL, an ANSI escape and DEL in the name (copied from a terminal)",
         one("client", name="Stolarnia\x00\x1b[31m Kowalczyk\x7f"), "quarantine",
         "control or invalid characters in name 'Stolarnia??[31m Kowalczyk?'"),
    Case("fc_name_surrogate", "fakturownia", "clients",
         "a lone surrogate sent as the escape \\ud800 (a UTF-16 string cut in half): becomes U+FFFD, questioned",
         one("client", name="Zakład Usługowy \ud800 Nowak"), "quarantine",
         "control or invalid characters in name 'Zakład Usługowy ? Nowak'"),
    Case("fc_name_1mb", "fakturownia", "clients",
         "a 1 MB name (a file pasted into the field); quoted cut short in the reason",
         one("client", name="Hurtownia " + "A" * MB), "quarantine",
         "name too long: 'Hurtownia " + "A" * 30 + "…' (1000010 characters)"),
    Case("fc_name_rtl_override", "fakturownia", "clients",
         "decision: a right-to-left override (U+202E) makes the name show other than it reads (spoofing); "
         "questioned like a control character",
         one("client", name="Apteka \u202ezcilbup\u202c Sp. z o.o."), "quarantine",
         "control or invalid characters in name 'Apteka ?zcilbup? Sp. z o.o.'"),
    Case("fc_name_hebrew", "fakturownia", "clients",
         "natural right-to-left text needs no control characters: stages as it is",
         one("client", name="חברת הדגמה בע״מ"), "staged", staged={"name": "חברת הדגמה בע״מ"}),
    Case("fc_name_missing", "fakturownia", "clients",
         "decision: no name (Fakturownia's API refuses to create one, so only a hand-edited export has it) stages; "
         "the target refuses it per record with its own message, logged and retried (test_e2e_sync covers that)",
         one("client", name=None), "staged", staged={"name": None}),
    Case("fc_id_missing", "fakturownia", "clients", "no id key",
         one("client", id=DROP), "quarantine", "no id"),
    Case("fc_id_null", "fakturownia", "clients", "id null",
         one("client", id=None), "quarantine", "no id"),
    Case("fc_id_empty", "fakturownia", "clients", "id \"\"",
         one("client", id=""), "quarantine", "no id"),
    Case("fc_id_whitespace", "fakturownia", "clients", "id of spaces",
         one("client", id="   "), "quarantine", "no id"),
    Case("fc_id_object", "fakturownia", "clients", "id is an object (a Mongo-style export)",
         one("client", id={"$oid": "880000011"}), "quarantine", "id is a JSON object, not a number or a string"),
    Case("fc_id_list", "fakturownia", "clients", "id is a list",
         one("client", id=[880_000_012, 880_000_013]), "quarantine", "id is a JSON list, not a number or a string"),
    Case("fc_id_boolean", "fakturownia", "clients", "id true: no id (was landed and staged as client 'true')",
         one("client", id=True), "quarantine", "id is a JSON boolean, not a number or a string"),
    Case("fc_id_1mb", "fakturownia", "clients", "a 1 MB digit string as the id",
         one("client", id="1" * MB), "quarantine", "id is 1000000 characters long"),
    Case("fc_id_5000_digits", "fakturownia", "clients",
         "a JSON number of 5000 digits as the id: Python refuses to read it as an int; the page must not fail",
         one("client", id=RawJson("7" * 5000)), "quarantine", "id is 5000 characters long"),
    Case("fc_id_numeric_string", "fakturownia", "clients", "the id as a numeric string: the same id, stages",
         lambda seed, cid: [seed.client(cid, id=str(seed.rid(cid, "clients")))], "staged"),
    Case("fc_updated_future", "fakturownia", "clients", "updated_at in 2099: quarantined, the cursor ignores it",
         one("client", updated_at=F_FUTURE), "quarantine", "is in the future"),
    Case("fc_updated_unparseable", "fakturownia", "clients",
         "updated_at that is no time: it could not be ordered against another version (was staged silently)",
         one("client", updated_at="wczoraj 14:05"), "quarantine", "unparseable updated_at 'wczoraj 14:05'"),
    Case("fc_dup_conflict", "fakturownia", "clients",
         "the same id twice in one read, same updated_at, other content: neither can be trusted",
         twice("client", {"name": "Stolarnia Inna Sp. z o.o."}), "quarantine", "conflicting duplicate", copies=2),
    Case("fc_dup_identical", "fakturownia", "clients",
         "the same record twice in one read (a page boundary shifted): landed and staged once",
         twice("client"), "staged", accounting="duplicates_identical"),
    Case("fc_dup_newer", "fakturownia", "clients",
         "two versions in one read, the second newer: the newer one stages",
         twice("client", {"name": "Pracownia Nowa Nazwa Sp. z o.o.", "updated_at": F_NEWER}), "staged",
         staged={"name": "Pracownia Nowa Nazwa Sp. z o.o."}, accounting="superseded_in_read"),
    Case("fc_not_object", "fakturownia", "clients", "a bare string in the list where a client object belongs",
         not_an_object(marker("fc_not_object")), "quarantine", "the record is a JSON string, not an object"),

    # ---------------------------------------------------------------- Fakturownia invoices
    Case("fi_amount_zloty", "fakturownia", "invoices", "a Polish amount with a comma and the currency sign",
         one("invoice", price_gross="12,30 zł"), "quarantine", "unparseable price_gross '12,30 zł'"),
    Case("fi_amount_thousands", "fakturownia", "invoices", "a space as the thousands separator, a decimal comma",
         one("invoice", price_gross="1 230,00"), "quarantine", "unparseable price_gross '1 230,00'"),
    Case("fi_amount_text", "fakturownia", "invoices", "letters as the amount",
         one("invoice", price_gross="abc"), "quarantine", "unparseable price_gross 'abc'"),
    Case("fi_amount_empty", "fakturownia", "invoices", "an empty amount",
         one("invoice", price_gross=""), "quarantine", "missing price_gross"),
    Case("fi_amount_null_string", "fakturownia", "invoices", "the string \"null\" as the amount",
         one("invoice", price_gross="null"), "quarantine", "unparseable price_gross 'null'"),
    Case("fi_amount_nan", "fakturownia", "invoices", "a NaN literal (not JSON, but exporters write it)",
         one("invoice", price_gross=RawJson("NaN")), "quarantine", "unparseable price_gross 'NaN'"),
    Case("fi_amount_infinity", "fakturownia", "invoices", "an Infinity literal",
         one("invoice", price_gross=RawJson("-Infinity")), "quarantine", "unparseable price_gross '-Infinity'"),
    Case("fi_amount_1e999", "fakturownia", "invoices", "1e999: valid JSON, infinite as a float",
         one("invoice", price_gross=RawJson("1e999")), "quarantine", "unparseable price_gross '1e999'"),
    Case("fi_amount_1mb_number", "fakturownia", "invoices", "a 1 MB JSON number as the amount",
         one("invoice", price_gross=RawJson("9" * MB)), "quarantine",
         "unparseable price_gross '9999999999999999999999999999999999999999…' (1000000 characters)"),
    Case("fi_amount_30_digits", "fakturownia", "invoices", "a 30-digit JSON number: beyond DECIMAL(18, 2)",
         one("invoice", price_gross=RawJson("123456789012345678901234567890")), "quarantine",
         "unparseable price_gross '123456789012345678901234567890'"),
    Case("fi_amount_number", "fakturownia", "invoices",
         "the amount as a JSON number instead of Fakturownia's string: the same amount, stages",
         one("invoice", price_gross=1230.5, price_net=1000.41), "staged", staged={"total_gross": Decimal("1230.50")}),
    Case("fi_negative_vat", "fakturownia", "invoices", "a negative total on a VAT invoice",
         one("invoice", price_gross="-1230.00", price_net="-1000.00"), "quarantine",
         "negative total -1230.00 on a vat document"),
    Case("fi_negative_correction", "fakturownia", "invoices", "a negative total on a correction: normal, stages",
         one("invoice", kind="correction", price_gross="-123.00", price_net="-100.00"), "staged",
         staged={"kind": "correction", "total_gross": Decimal("-123.00"), "amount_due": Decimal("0.00")}),
    Case("fi_paid_over_total", "fakturownia", "invoices",
         "decision: paid more than the total is an overpayment (the customer paid twice), not an error: stages, "
         "nothing due",
         one("invoice", status="paid", paid="2460.0", paid_date="2026-11-02"), "staged",
         staged={"paid_amount": Decimal("2460.00"), "amount_due": Decimal("0.00"), "status": "paid"}),
    Case("fi_paid_text", "fakturownia", "invoices", "the paid amount is text",
         one("invoice", status="partial", paid="połowa"), "quarantine", "unparseable paid 'połowa'"),
    Case("fi_date_feb30", "fakturownia", "invoices", "30 February",
         one("invoice", issue_date="2026-02-30"), "quarantine", "impossible issue_date '2026-02-30'"),
    Case("fi_date_month13", "fakturownia", "invoices", "month 13",
         one("invoice", issue_date="2025-13-01"), "quarantine", "impossible issue_date '2025-13-01'"),
    Case("fi_date_empty", "fakturownia", "invoices", "an empty issue date",
         one("invoice", issue_date=""), "quarantine", "missing issue_date"),
    Case("fi_date_zeros", "fakturownia", "invoices", "MySQL's zero date",
         one("invoice", issue_date="0000-00-00"), "quarantine", "impossible issue_date '0000-00-00'"),
    Case("fi_date_year_99999", "fakturownia", "invoices",
         "year 99999 (DuckDB reads it as a date; it was staged as issued in 99999)",
         one("invoice", issue_date="99999-06-12"), "quarantine", "impossible issue_date '99999-06-12'"),
    Case("fi_due_year_typo", "fakturownia", "invoices", "a five-digit year typed into the due date",
         one("invoice", payment_to="20266-12-04"), "quarantine", "impossible payment_to '20266-12-04'"),
    Case("fi_paid_date_impossible", "fakturownia", "invoices", "29 February of a common year as the paid date",
         one("invoice", status="paid", paid="1230.0", paid_date="2025-02-29"), "quarantine",
         "impossible paid_date '2025-02-29'"),
    Case("fi_due_before_issue", "fakturownia", "invoices",
         "decision: a due date before the issue date is legitimate (an invoice issued for a payment already "
         "due or made, e.g. after a prepayment); it stages and counts as overdue from its due date",
         one("invoice", issue_date="2026-11-10", payment_to="2026-11-03"), "staged",
         staged={"due_date": "2026-11-03", "issue_date": "2026-11-10"}),
    Case("fi_number_control", "fakturownia", "invoices", "an ANSI escape in the invoice number",
         one("invoice", number="FV/2026/\x1b[0m11/014"), "quarantine",
         "control or invalid characters in number 'FV/2026/?[0m11/014'"),
    Case("fi_number_surrogate", "fakturownia", "invoices", "a lone surrogate escape in the number",
         one("invoice", number="FV/2026/11/\udc9f15"), "quarantine",
         "control or invalid characters in number 'FV/2026/11/?15'"),
    Case("fi_number_1mb", "fakturownia", "invoices", "a 1 MB invoice number (was staged and sent to the CRM)",
         one("invoice", number="FV/" + "9" * MB), "quarantine",
         "number too long: 'FV/" + "9" * 37 + "…' (1000003 characters)"),
    Case("fi_currency_zloty", "fakturownia", "invoices", "the currency sign instead of the code",
         one("invoice", currency="zł"), "quarantine", "unknown currency 'zł'"),
    Case("fi_currency_lower", "fakturownia", "invoices", "a lower-case code: normalised to PLN, stages",
         one("invoice", currency=" pln"), "staged", staged={"currency": "PLN"}),
    Case("fi_currency_xxx", "fakturownia", "invoices", "XXX, ISO's code for 'no currency'",
         one("invoice", currency="XXX"), "quarantine", "unknown currency 'XXX'"),
    Case("fi_currency_missing", "fakturownia", "invoices", "no currency key",
         one("invoice", currency=DROP), "quarantine", "missing currency"),
    Case("fi_currency_number", "fakturownia", "invoices", "ISO's numeric code 985 (PLN) as a number",
         one("invoice", currency=985), "quarantine", "unknown currency '985'"),
    Case("fi_status_unknown", "fakturownia", "invoices", "a status from the Polish UI, not the API",
         one("invoice", status="zapłacona"), "quarantine", "unknown status 'zapłacona'"),
    Case("fi_status_missing", "fakturownia", "invoices", "status null (was 'unknown status ''')",
         one("invoice", status=None), "quarantine", "missing status"),
    Case("fi_kind_unknown", "fakturownia", "invoices",
         "a kind Fakturownia does not document (was staged as 'other' and counted as billed)",
         one("invoice", kind="faktura"), "quarantine", "unknown kind 'faktura'"),
    Case("fi_kind_missing", "fakturownia", "invoices", "no kind key",
         one("invoice", kind=DROP), "quarantine", "missing kind"),
    Case("fi_client_unknown", "fakturownia", "invoices", "an invoice whose client does not exist",
         one("invoice", client_id=424242), "quarantine",
         "client 424242 not found among the clients read from fakturownia"),
    Case("fi_client_quarantined", "fakturownia", "invoices", "an invoice whose client is in quarantine",
         one("invoice", client_id=Ref("fc_name_control")), "quarantine", "client {fc_name_control} is not a staged account"),
    Case("fi_client_missing", "fakturownia", "invoices", "client_id null",
         one("invoice", client_id=None), "quarantine", "no client_id"),
    Case("fi_id_missing", "fakturownia", "invoices", "no id key",
         one("invoice", id=DROP), "quarantine", "no id"),
    Case("fi_id_list", "fakturownia", "invoices", "id is a list",
         one("invoice", id=[1, 2]), "quarantine", "id is a JSON list, not a number or a string"),
    Case("fi_id_5000_digits", "fakturownia", "invoices", "a JSON number of 5000 digits as the id",
         one("invoice", id=RawJson("3" * 5000)), "quarantine", "id is 5000 characters long"),
    Case("fi_dup_conflict", "fakturownia", "invoices",
         "the same id twice, same updated_at, other amounts: both quarantined",
         twice("invoice", {"price_gross": "999999.99"}), "quarantine", "conflicting duplicate", copies=2),
    Case("fi_dup_identical", "fakturownia", "invoices", "the same invoice twice in one read: landed once",
         twice("invoice"), "staged", accounting="duplicates_identical"),
    Case("fi_dup_newer", "fakturownia", "invoices", "paid while being paged: the newer version stages",
         twice("invoice", {"status": "paid", "paid": "1230.0", "paid_date": "2026-11-25", "updated_at": F_NEWER}),
         "staged", staged={"status": "paid", "amount_due": Decimal("0.00")}, accounting="superseded_in_read"),
    Case("fi_updated_future", "fakturownia", "invoices", "updated_at in 2099: quarantined, the cursor stays",
         one("invoice", updated_at=F_FUTURE), "quarantine", "is in the future"),
    Case("fi_updated_unparseable", "fakturownia", "invoices", "updated_at is no time",
         one("invoice", updated_at="2026-11-31T25:61:00.000+01:00"), "quarantine", "unparseable updated_at"),
    Case("fi_not_object", "fakturownia", "invoices", "a row exported as a list where an invoice object belongs",
         not_an_object([marker("fi_not_object"), "FV/2026/11/001", "1230.0"]), "quarantine",
         "the record is a JSON list, not an object"),

    # ---------------------------------------------------------------- Zoho contacts
    Case("zc_no_account_id", "zoho", "clients", "a customer without cf_account_id: unmatched, not synced",
         one("client", custom_fields=[], custom_field_hash={}), "quarantine",
         "no account identifier (custom field cf_account_id is empty)"),
    Case("zc_account_id_blank", "zoho", "clients", "cf_account_id of spaces",
         lambda seed, cid: [seed.client(cid, custom_fields=[custom_field("cf_account_id", "   ")],
                                        custom_field_hash=custom_field_hash([custom_field("cf_account_id", "   ")]))],
         "quarantine", "no account identifier (custom field cf_account_id is empty)"),
    Case("zc_hash_missing", "zoho", "clients",
         "no custom_field_hash (list rows may omit it): the id comes from custom_fields, stages",
         one("client", custom_field_hash=DROP), "staged", staged={"account_id": "ACC-CORPUS-{n:03d}"}),
    Case("zc_custom_fields_object", "zoho", "clients",
         "custom_fields is an object, not a list, and no hash: the reason says so (it said only 'is empty')",
         one("client", custom_field_hash=DROP, custom_fields={"cf_account_id": "ACC-X"}), "quarantine",
         "custom_fields is a JSON object, not a list"),
    Case("zc_custom_fields_strings", "zoho", "clients",
         "custom_fields holds strings, not objects; the hash has the id: stages",
         one("client", custom_fields=["cf_account_id", "ACC-X"]), "staged", staged={"account_id": "ACC-CORPUS-{n:03d}"}),
    Case("zc_individual", "zoho", "clients",
         "an individual: company_name \"\" and only a contact_name (was staged with no name)",
         one("client", company_name="", contact_name="Anna Schmidt"), "staged",
         staged={"name": "Anna Schmidt", "kind": "person"}),
    Case("zc_name_control", "zoho", "clients", "an ESC character in the contact name",
         one("client", company_name="Nordlys\x1b ApS", contact_name="Nordlys\x1b ApS"), "quarantine",
         "control or invalid characters in name 'Nordlys? ApS'"),
    Case("zc_id_missing", "zoho", "clients", "no contact_id",
         one("client", contact_id=DROP), "quarantine", "no id"),
    Case("zc_id_number", "zoho", "clients",
         "contact_id as a JSON number instead of a numeric string: the same id, stages",
         lambda seed, cid: [seed.client(cid, contact_id=int(seed.rid(cid, "clients")))], "staged"),
    Case("zc_id_object", "zoho", "clients", "contact_id is an object",
         one("client", contact_id={"id": "4600000019000000"}), "quarantine", "id is a JSON object"),
    Case("zc_modified_future", "zoho", "clients", "last_modified_time in 2099",
         one("client", last_modified_time=Z_FUTURE), "quarantine", "is in the future"),
    Case("zc_modified_unparseable", "zoho", "clients", "last_modified_time in a local format",
         one("client", last_modified_time="12/06/2025 10:14"), "quarantine",
         "unparseable last_modified_time '12/06/2025 10:14'"),
    Case("zc_dup_conflict", "zoho", "clients", "the same contact twice with other names, same time",
         twice("client", {"company_name": "Other Name GmbH", "contact_name": "Other Name GmbH"}), "quarantine",
         "conflicting duplicate", copies=2),

    # ---------------------------------------------------------------- Zoho invoices
    Case("zi_balance_string", "zoho", "invoices", "balance as a string, not a number: the same amount, stages",
         one("invoice", status="partially_paid", balance="450.00", payment_made=800.0), "staged",
         staged={"amount_due": Decimal("450.00"), "paid_amount": Decimal("800.00"), "status": "partially_paid"}),
    Case("zi_total_comma", "zoho", "invoices", "a European-formatted total string",
         one("invoice", total="1.250,00"), "quarantine", "unparseable total '1.250,00'"),
    Case("zi_total_missing", "zoho", "invoices", "no total key",
         one("invoice", total=DROP), "quarantine", "missing total"),
    Case("zi_total_infinity", "zoho", "invoices", "an Infinity literal as the total",
         one("invoice", total=RawJson("Infinity")), "quarantine", "unparseable total 'Infinity'"),
    Case("zi_total_negative", "zoho", "invoices", "a negative total on an invoice",
         one("invoice", total=-1250.0, sub_total=-1250.0, balance=-1250.0), "quarantine",
         "negative total -1250.00 on an invoice document"),
    Case("zi_balance_over_total", "zoho", "invoices",
         "balance 9999 on a total of 1250: more owed than billed (was staged, overstating the overdue amount)",
         one("invoice", balance=9999.0), "quarantine", "balance 9999.00 is more than the total 1250.00"),
    Case("zi_dates_empty", "zoho", "invoices",
         "due_date and last_payment_date \"\": Zoho's way to say none; valid, stages",
         one("invoice", due_date="", last_payment_date=""), "staged", staged={"due_date": None, "paid_date": None}),
    Case("zi_date_empty", "zoho", "invoices", "the invoice date \"\"",
         one("invoice", date=""), "quarantine", "missing date"),
    Case("zi_date_feb30", "zoho", "invoices", "30 February",
         one("invoice", date="2026-02-30"), "quarantine", "impossible date '2026-02-30'"),
    Case("zi_due_month13", "zoho", "invoices", "month 13 in the due date",
         one("invoice", due_date="2025-13-01"), "quarantine", "impossible due_date '2025-13-01'"),
    Case("zi_date_year_99999", "zoho", "invoices", "year 99999",
         one("invoice", date="99999-01-01"), "quarantine", "impossible date '99999-01-01'"),
    Case("zi_currency_lower", "zoho", "invoices", "currency_code 'eur': normalised, stages",
         one("invoice", currency_code="eur"), "staged", staged={"currency": "EUR"}),
    Case("zi_currency_symbol", "zoho", "invoices", "the euro sign as the currency code",
         one("invoice", currency_code="€"), "quarantine", "unknown currency '€'"),
    Case("zi_currency_missing", "zoho", "invoices", "no currency_code",
         one("invoice", currency_code=DROP), "quarantine", "missing currency_code"),
    Case("zi_status_unknown", "zoho", "invoices", "pending_approval (approval workflows): not mapped, questioned",
         one("invoice", status="pending_approval"), "quarantine", "unknown status 'pending_approval'"),
    Case("zi_status_missing", "zoho", "invoices", "no status",
         one("invoice", status=DROP), "quarantine", "missing status"),
    Case("zi_customer_unknown", "zoho", "invoices", "an invoice of a customer that does not exist",
         one("invoice", customer_id="4600000010999999"), "quarantine",
         "customer 4600000010999999 not found among the contacts read from zoho"),
    Case("zi_customer_unmatched", "zoho", "invoices", "an invoice of a customer without cf_account_id",
         one("invoice", customer_id=Ref("zc_no_account_id")), "quarantine",
         "customer {zc_no_account_id} is not a matched account"),
    Case("zi_id_missing", "zoho", "invoices", "no invoice_id",
         one("invoice", invoice_id=DROP), "quarantine", "no id"),
    Case("zi_id_whitespace", "zoho", "invoices", "invoice_id of spaces",
         one("invoice", invoice_id="  "), "quarantine", "no id"),
    Case("zi_number_control", "zoho", "invoices", "a NUL in the invoice number",
         one("invoice", invoice_number="INV-\x00001"), "quarantine",
         "control or invalid characters in number 'INV-?001'"),
    Case("zi_modified_future", "zoho", "invoices", "last_modified_time in 2099",
         one("invoice", last_modified_time=Z_FUTURE), "quarantine", "is in the future"),
    Case("zi_dup_identical", "zoho", "invoices", "the same invoice twice in one read: landed once",
         twice("invoice"), "staged", accounting="duplicates_identical"),
    Case("zi_dup_newer", "zoho", "invoices", "paid while being paged: the newer version stages",
         twice("invoice", {"status": "paid", "balance": 0.0, "payment_made": 1250.0,
                           "last_payment_date": "2026-11-25", "last_modified_time": Z_NEWER}),
         "staged", staged={"status": "paid", "amount_due": Decimal("0.00")}, accounting="superseded_in_read"),

    # ---------------------------------------------------------------- Zoho credit notes
    Case("zn_open", "zoho", "creditnotes", "an open credit note: stages negative, never owed",
         one("creditnote"), "staged",
         staged={"kind": "credit_note", "total_gross": Decimal("-125.00"), "status": "paid"}),
    Case("zn_status_unknown", "zoho", "creditnotes",
         "a status credit notes do not have (was staged as 'paid', whatever it said)",
         one("creditnote", status="refunded_twice"), "quarantine", "unknown status 'refunded_twice'"),
    Case("zn_status_draft", "zoho", "creditnotes", "a draft credit note: staged as a draft (was 'paid')",
         one("creditnote", status="draft"), "staged", staged={"status": "draft"}),
    Case("zn_total_text", "zoho", "creditnotes", "text as the total",
         one("creditnote", total="n/a"), "quarantine", "unparseable total 'n/a'"),
    Case("zn_total_negative", "zoho", "creditnotes",
         "a negative credit note total (Zoho's are positive; negated, it would raise what was billed)",
         one("creditnote", total=-125.0), "quarantine", "negative total -125.00 on a credit note"),
    Case("zn_date_empty", "zoho", "creditnotes", "the credit note date \"\"",
         one("creditnote", date=""), "quarantine", "missing date"),
    Case("zn_customer_unknown", "zoho", "creditnotes", "a credit note of a customer that does not exist",
         one("creditnote", customer_id="4600000010999998"), "quarantine",
         "customer 4600000010999998 not found among the contacts read from zoho"),
    Case("zn_id_empty", "zoho", "creditnotes", "creditnote_id \"\"",
         one("creditnote", creditnote_id=""), "quarantine", "no id"),
    Case("zn_currency_lower", "zoho", "creditnotes", "currency_code 'gbp': normalised, stages",
         one("creditnote", currency_code="gbp"), "staged", staged={"currency": "GBP"}),
    Case("zn_dup_identical", "zoho", "creditnotes", "the same credit note twice in one read: landed once",
         twice("creditnote"), "staged", accounting="duplicates_identical"),
    Case("zn_dup_conflict", "zoho", "creditnotes", "the same id twice with other totals, same time",
         twice("creditnote", {"total": 130.0}), "quarantine", "conflicting duplicate", copies=2),

    # ---------------------------------------------------------------- transport: one failing run each
    Case("tf_invoices_html", "fakturownia", "transport",
         "a maintenance page (HTML, HTTP 200) instead of the invoice list, on every retry",
         lambda sb: sb.fakturownia.fail_next(r"/invoices\.json", "html_200", times=F_RETRIES), "error",
         f"fakturownia: GET /invoices.json returned HTTP 200 {NOT_JSON} {F_RETRIES} attempts"),
    Case("tf_clients_truncated", "fakturownia", "transport", "the client list cut in half, on every retry",
         lambda sb: sb.fakturownia.fail_next(r"/clients\.json", "truncated", times=F_RETRIES), "error",
         f"fakturownia: GET /clients.json returned HTTP 200 {NOT_JSON} {F_RETRIES} attempts"),
    Case("tf_invoices_object", "fakturownia", "transport", "an object where the invoice array belongs",
         lambda sb: sb.fakturownia.answer_next_list("invoices", b'{"invoices":[{"id":1}],"total":1}'), "error",
         "fakturownia: GET /invoices.json expected a JSON array"),
    Case("tf_invoices_latin2", "fakturownia", "transport", "the invoice page in ISO-8859-2, not UTF-8",
         lambda sb: sb.fakturownia.answer_next_list("invoices", _latin2_page(sb.fakturownia), times=F_RETRIES,
                                                    content_type="application/json; charset=utf-8"), "error",
         f"fakturownia: GET /invoices.json returned HTTP 200 {NOT_UTF8} {F_RETRIES} attempts"),
    Case("tf_invoices_page2_truncated", "fakturownia", "transport",
         "page 2 of the invoices cut in half on every retry: page 1 is kept whole, the cursor stays",
         lambda sb: sb.fakturownia.fail_next(r"/invoices\.json", "truncated", times=F_RETRIES, page=2), "error",
         f"fakturownia: GET /invoices.json returned HTTP 200 {NOT_JSON} {F_RETRIES} attempts", page=2),
    Case("tf_clients_html_502", "fakturownia", "transport", "nginx's HTML 502 page on every retry",
         lambda sb: sb.fakturownia.fail_next(r"/clients\.json", "html_502", times=F_RETRIES), "error",
         f"fakturownia: GET /clients.json failed with HTTP 502 after {F_RETRIES} attempts"),
    Case("tf_clients_object", "fakturownia", "transport", "the client array wrapped in an object",
         lambda sb: sb.fakturownia.answer_next_list("clients", b'{"clients":[{"id":1,"name":"A"}]}'), "error",
         "fakturownia: GET /clients.json expected a JSON array"),
    Case("tf_invoices_empty_body", "fakturownia", "transport", "HTTP 200 with an empty body (a proxy lost it)",
         lambda sb: sb.fakturownia.answer_next_list("invoices", b""), "error",
         "fakturownia: GET /invoices.json expected a JSON array; got null"),
    Case("tz_invoices_html", "zoho", "transport", "an HTML error page with HTTP 200 instead of the invoices",
         lambda sb: sb.zoho.fail_next(r"/invoices$", "html_200", times=Z_RETRIES), "error",
         f"zoho: GET /invoices returned HTTP 200 {NOT_JSON} {Z_RETRIES} attempts"),
    Case("tz_contacts_truncated", "zoho", "transport", "the contact list cut in half, on every retry",
         lambda sb: sb.zoho.fail_next(r"/contacts$", "truncated", times=Z_RETRIES), "error",
         f"zoho: GET /contacts returned HTTP 200 {NOT_JSON} {Z_RETRIES} attempts"),
    Case("tz_creditnotes_object", "zoho", "transport", "an object where the creditnotes list belongs",
         lambda sb: sb.zoho.answer_next_list(
             "creditnotes", b'{"code":0,"message":"success","creditnotes":{"creditnote_id":"1"}}'), "error",
         "zoho: GET /creditnotes has no 'creditnotes' list"),
    Case("tz_invoices_list_root", "zoho", "transport", "a bare list where Zoho's envelope object belongs",
         lambda sb: sb.zoho.answer_next_list("invoices", b'[{"invoice_id":"1"}]'), "error",
         "zoho: GET /invoices expected a JSON object"),
    Case("tz_contacts_null_list", "zoho", "transport", "the envelope with contacts null",
         lambda sb: sb.zoho.answer_next_list("contacts", b'{"code":0,"message":"success","contacts":null}'), "error",
         "zoho: GET /contacts has no 'contacts' list"),
    Case("tz_invoices_error_code", "zoho", "transport", "a Zoho error envelope with HTTP 200",
         lambda sb: sb.zoho.answer_next_list("invoices", b'{"code":1,"message":"Internal error, try again"}'), "error",
         "zoho: GET /invoices returned Zoho error code 1"),
    Case("tz_invoices_cp1252", "zoho", "transport", "the invoice page in Windows-1252, not UTF-8",
         lambda sb: sb.zoho.answer_next_list("invoices", _cp1252_page(sb.zoho), times=Z_RETRIES), "error",
         f"zoho: GET /invoices returned HTTP 200 {NOT_UTF8} {Z_RETRIES} attempts"),
]

RECORD_ENTITIES = ("clients", "invoices", "creditnotes")


def record_cases(system: str) -> list[Case]:
    return [c for c in CASES if c.system == system and c.entity in RECORD_ENTITIES]


def transport_cases() -> list[Case]:
    return [c for c in CASES if c.entity == "transport"]

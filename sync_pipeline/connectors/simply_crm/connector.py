"""Simply CRM (vtiger webservice, VENDOR_APIS §4) as the CRM side of the two-way sync with Billy: Accounts
(organisations), Contacts, Products, and Invoice records for invoices and credit notes. It is no source for the
metrics: its records are landed in raw (`sync` changed-since reads, full key scans by `query`), never staged."""

from __future__ import annotations

import re

from sync_pipeline.connectors._http import NotFoundError
from sync_pipeline.connectors.registry import Connector, RawKeys, RecordSide, Stream, TargetEntity
from sync_pipeline.connectors.simply_crm.client import SimplyClient
from sync_pipeline.connectors.simply_crm.side import accounts_writer, contacts_writer, invoices_writer, products_writer
from sync_pipeline.load.twoway_sides import sql_literal

# vtiger's default fields per module [V] (VENDOR_APIS §4.7); instance custom fields are cf_<number>
ACCOUNT_FIELDS = frozenset("accountname account_no website phone email1 bill_street bill_city bill_code bill_country "
                           "bill_state bill_pobox ship_street ship_city ship_code ship_country description".split())
CONTACT_FIELDS = frozenset("firstname lastname email phone mobile mailingstreet mailingcity mailingzip mailingcountry "
                           "description title department".split())
PRODUCT_FIELDS = frozenset("productname product_no productcode unit_price discontinued qtyinstock description".split())
INVOICE_FIELDS = frozenset("subject invoicedate duedate invoicestatus bill_street ship_street bill_city bill_code "
                           "bill_country terms_conditions description".split())
_CUSTOM = dict(field_pattern=r"cf_[0-9]+", field_pattern_help="the instance's custom fields cf_<number>")


def _client(cfg) -> SimplyClient:
    return SimplyClient(system=cfg.name, base_url=cfg.resolved_base_url(), username=cfg.username,
                        access_key=cfg.access_key.get_secret_value(), **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"simply_access_key": cfg.access_key.get_secret_value()}


_KEYS = RawKeys("id", "modifiedtime", "createdtime")


def _live(module: str):
    return lambda api: api.field_names(module)
_ID = re.compile(r"[0-9]+x[0-9]+")


def _fetch(module: str):
    """One record by id (`retrieve`, line items included) when it is of this module; None otherwise."""

    def fetch(api: SimplyClient, record_id: str) -> dict | None:
        if not _ID.fullmatch(record_id) or record_id.split("x")[0] != str(api.id_prefix(module)):
            return None
        try:
            return api.retrieve(record_id)
        except NotFoundError:
            return None

    return fetch


def _stream(entity: str, noun: str) -> Stream:
    return Stream(entity, entity, f"iter_{noun}_pages", _KEYS, staged_as=entity, scan=f"iter_{noun}_keys")


_INVOICES = _stream("invoices", "invoice")


def _invoice_placeholders(credit: bool):
    return lambda connection: {"credit": sql_literal(credit),
                               "invoice_link": sql_literal(getattr(connection, "invoice_link", "organisations"))}


CONNECTOR = Connector(
    types=("simply_crm",),
    label="Simply CRM",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    sides=(
        RecordSide("organisations", "accounts.sql", accounts_writer, stream=_stream("accounts", "account"),
                   output="_rows", fields=ACCOUNT_FIELDS, fetch=_fetch("Accounts"),
                   live_fields=_live("Accounts"), **_CUSTOM),
        RecordSide("contacts", "contacts.sql", contacts_writer, stream=_stream("contacts", "contact"),
                   output="_rows", fields=CONTACT_FIELDS, fetch=_fetch("Contacts"),
                   live_fields=_live("Contacts"), **_CUSTOM),
        RecordSide("products", "products.sql", products_writer, stream=_stream("products", "product"),
                   output="_rows", fields=PRODUCT_FIELDS, fetch=_fetch("Products"),
                   live_fields=_live("Products"), **_CUSTOM),
        RecordSide("invoices", "invoice_side.sql", invoices_writer(False), stream=_INVOICES, output="_rows",
                   fields=INVOICE_FIELDS, placeholders=_invoice_placeholders(False), fetch=_fetch("Invoice"),
                   live_fields=_live("Invoice"), **_CUSTOM),
        RecordSide("credit_notes", "invoice_side.sql", invoices_writer(True), stream=_INVOICES, output="_rows",
                   fields=INVOICE_FIELDS, placeholders=_invoice_placeholders(True), fetch=_fetch("Invoice"),
                   live_fields=_live("Invoice"), **_CUSTOM),
    ),
    targets=tuple(
        TargetEntity(entity, "", None, False, after, description, two_way=True)
        for entity, after, description in (
            ("organisations", None, "Billy companies and Simply CRM organisations, both ways by the direction."),
            ("contacts", "organisations", "Billy persons and Simply CRM contacts, both ways by the direction."),
            ("products", "contacts", "Products and their price, both ways by the direction."),
            ("invoices", "products", "Approved invoices with their lines, attached to the organisation or the "
                                     "contact (invoice_link); a record whose customer or products are not linked "
                                     "yet waits (blocked)."),
            ("credit_notes", "invoices", "Credit notes (Simply CRM: invoicestatus 'Credit Invoice'), like invoices."),
        )),
    default_schedule="every_3_hours",
)

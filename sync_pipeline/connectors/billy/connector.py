"""Billy (billy.dk, API v2, VENDOR_APIS §3) as a source of clients and invoices for the metrics, and one side of the
two-way sync with a CRM: organisations (companies), contacts (persons), products, invoices and credit notes.

Billy has no updated-since filter [O]. What is read each run (see BillyClient.iter_invoice_pages): contacts and
products whole (small lists; the landing keeps only records whose content changed); invoices approved since the
cursor, every unpaid approved invoice, every draft (payments change them without a timestamp), those entered since
the day before the cursor and those due in the 90 days before it (a late payment or a void); everything else
through the key scan (`key_scan_every`, default 24 h), which reads whole invoices and lands them too."""

from __future__ import annotations

from sync_pipeline.connectors._side_writer import fetcher
from sync_pipeline.connectors.billy.client import BillyClient
from sync_pipeline.connectors.billy.side import contacts_writer, invoices_writer, products_writer
from sync_pipeline.connectors.registry import Connector, RawKeys, RecordSide, Source, Stream
from sync_pipeline.load.twoway_sides import sql_literal

# Billy's documented fields a custom mapping may name [O] (VENDOR_APIS §3.5-3.6)
CONTACT_FIELDS = frozenset(
    "name countryId street cityId cityText stateText zipcodeId zipcodeText contactNo phone fax currencyId "
    "registrationNo ean localeId isCustomer isSupplier paymentTermsMode paymentTermsDays "
    "emailAttachmentDeliveryMode isSalesTaxExempt".split())
PRODUCT_FIELDS = frozenset("name description accountId productNo suppliersProductNo salesTaxRulesetId".split())
INVOICE_FIELDS = frozenset(
    "entryDate paymentTermsMode paymentTermsDays dueDate taxMode currencyId exchangeRate contactMessage "
    "lineDescription orderNo".split())


def _client(cfg) -> BillyClient:
    return BillyClient(system=cfg.name, base_url=cfg.resolved_base_url(),
                       access_token=cfg.access_token.get_secret_value(), page_size=cfg.page_size, **cfg.http_options())


def _sandbox_credentials(cfg) -> dict[str, str]:
    return {"billy_token": cfg.access_token.get_secret_value()}


_CONTACT_KEYS = RawKeys("id", "createdTime", "createdTime")
_INVOICE_KEYS = RawKeys("id", "approvedTime", "entryDate")
_PRODUCTS = Stream("products", "products", "iter_product_pages", RawKeys("id", "createdTime", "createdTime"),
                   staged_as="products", scan="iter_product_pages")


def _fetch(resource: str, include: str):
    """One record by id, shaped as the list reads land it (sync-record); None when Billy has none."""
    return fetcher(lambda api, record_id: api.get(resource, record_id, include=(include,)),
                   lambda record_id: record_id.replace("-", "").replace("_", "").isalnum())


_FETCH = {"clients": _fetch("contacts", "contact.contactPersons:embed"),
          "invoices": _fetch("invoices", "invoice.lines:embed"),
          "products": _fetch("products", "product.prices:embed")}


def _side(entity: str, sql: str, writer, raw: str, fields: frozenset[str], **placeholders: str) -> RecordSide:
    return RecordSide(entity, sql, writer, raw=raw, output="_rows", fields=fields, fetch=_FETCH[raw],
                      placeholders=lambda connection: {k: sql_literal(v) for k, v in placeholders.items()})


CONNECTOR = Connector(
    types=("billy",),
    label="Billy",
    package=__package__,
    build_client=_client,
    sandbox_credentials=_sandbox_credentials,
    source=Source(
        streams=(Stream("clients", "clients", "iter_contact_pages", _CONTACT_KEYS, staged_as="clients",
                        scan="iter_contact_pages"),
                 Stream("invoices", "invoice_changes", "iter_invoice_pages", _INVOICE_KEYS, scan="iter_invoice_keys",
                        scan_lands=True)),
        clients_sql="clients.sql",
        invoices_sql="invoices.sql",
    ),
    sides=(
        _side("organisations", "contacts.sql", contacts_writer("company"), "clients", CONTACT_FIELDS,
              contact_type="company"),
        _side("contacts", "contacts.sql", contacts_writer("person"), "clients", CONTACT_FIELDS, contact_type="person"),
        RecordSide("products", "products.sql", products_writer, stream=_PRODUCTS, output="_rows",
                   fields=PRODUCT_FIELDS, fetch=_FETCH["products"]),
        _side("invoices", "invoice_side.sql", invoices_writer("invoice"), "invoices", INVOICE_FIELDS,
              doc_type="invoice"),
        _side("credit_notes", "invoice_side.sql", invoices_writer("creditNote"), "invoices", INVOICE_FIELDS,
              doc_type="creditNote"),
    ),
)

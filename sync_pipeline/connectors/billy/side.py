"""Billy as one side of the two-way sync with a CRM (load/entities.py): companies (organisations) and persons
(contacts) are Billy contacts, e-mail on their primary contact person [O]; products with their price in the
organisation's currency; invoices and credit notes created as drafts with lines, then approved [O].

Billy has an external-id field on invoices only (`externalId`, filterable [O]): our key travels there. A contact or
product whose create answer was lost is looked up by its exact name instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_pipeline.connectors._side_writer import RecordWriter, pick
from sync_pipeline.connectors.billy.client import BillyClient

_CONTACT = {"name": "name", "phone": "phone", "street": "street", "cityText": "city", "zipcodeText": "post_code",
            "countryId": "country"}


def _named(api: BillyClient, resource: str, name: Any, **filters: Any) -> dict | None:
    """The one record of `resource` named exactly `name` (Billy's `q` searches; the exact match is ours)."""
    if not name:
        return None
    found = [r for page in api.iter_pages(resource, q=name, **filters) for r in page if r.get("name") == name]
    return found[0] if len(found) == 1 else None


def contacts_writer(contact_type: str):
    """organisations: contact_type 'company'; contacts: 'person'."""

    def build(api: BillyClient, connection: Any = None) -> RecordWriter:
        def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
            body = pick(fields, _CONTACT)
            if our_key is not None:  # a create: Billy needs the organisation, the type and a country
                body |= {"organizationId": api.organization_id(), "type": contact_type, "isCustomer": True}
                body.setdefault("countryId", None)
                body["countryId"] = body["countryId"] or "DK"
            if "email" in fields:
                body["contactPersons"] = ([{"name": fields.get("name") or fields["email"], "email": fields["email"],
                                            "isPrimary": True}] if fields["email"] else [])
            return body

        return RecordWriter(api.create_contact, api.update_contact, None, payload, record_id=str,
                            find_by_fields=lambda f: _named(api, "contacts", f.get("name"), type=contact_type))

    return build


def products_writer(api: BillyClient, connection: Any = None) -> RecordWriter:
    def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
        body = pick(fields, {"name": "name", "productNo": "code", "description": "description"})
        if our_key is not None:
            body["organizationId"] = api.organization_id()
        if "unit_price" in fields:
            body["prices"] = ([{"unitPrice": fields["unit_price"], "currencyId": "DKK"}]
                              if fields["unit_price"] is not None else [])
        return body

    return RecordWriter(api.create_product, api.update_product, None, payload, record_id=str,
                        find_by_fields=lambda f: _named(api, "products", f.get("name")))


def _lines(lines: list[dict] | None) -> list[dict]:
    return [{"productId": line.get("product"), "description": line.get("description"),
             "quantity": line.get("quantity"), "unitPrice": line.get("unit_price"), "priority": n}
            for n, line in enumerate(lines or [], start=1)]


def invoices_writer(doc_type: str):
    """invoices: doc_type 'invoice'; credit notes: 'creditNote'. `paid` is not written: Billy derives it from the
    payments booked against the invoice [O]."""

    def build(api: BillyClient, connection: Any = None) -> RecordWriter:
        def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
            body = pick(fields, {"lineDescription": "title", "contactId": "customer", "entryDate": "issue_date"})
            if "due_date" in fields:
                body |= {"paymentTermsMode": "date", "dueDate": fields["due_date"]}
            if "lines" in fields:
                body["lines"] = _lines(fields["lines"])
            if our_key is not None:
                # in the organisation's own currency: the CRM keeps no currency code to take (load/entities.py)
                body |= {"organizationId": api.organization_id(), "type": doc_type, "externalId": our_key,
                         "currencyId": api.organization().get("baseCurrencyId") or "DKK"}
            return body

        def update(invoice_id: str, body: dict) -> dict:
            saved = api.update_invoice(invoice_id, body)
            # a create whose approval was lost left a draft (found by its externalId): finish it
            return api.approve_invoice(invoice_id) if saved.get("state") == "draft" else saved

        return RecordWriter(api.create_invoice, update, api.find_invoice_by_external_id, payload, record_id=str)

    return build

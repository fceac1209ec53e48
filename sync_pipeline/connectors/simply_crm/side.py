"""Simply CRM as one side of the two-way sync with Billy (load/entities.py): Accounts (organisations), Contacts,
Products and Invoice records (invoices; credit notes as invoicestatus 'Credit Invoice') through vtiger's webservice
[V]: `create` with the whole record, `revise` with the fields that change.

vtiger has no external-id field by default: a record whose create answer was lost is looked up by the field that
names it (accountname, e-mail or last name, productname, subject)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_pipeline.connectors._side_writer import RecordWriter, pick

def _writer(api: Any, module: str, payload, find_field: str, find_value) -> RecordWriter:
    return RecordWriter(lambda body: api.create(module, body), lambda rid, body: api.revise({**body, "id": rid}),
                        None, payload, record_id=str,
                        find_by_fields=lambda f: api.find_by(module, find_field, find_value(f)) if find_value(f) else None)


def accounts_writer(api: Any, connection: Any = None) -> RecordWriter:
    def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
        return _blank(pick(fields, {"accountname": "name", "email1": "email", "phone": "phone",
                                    "bill_street": "street", "bill_city": "city", "bill_code": "post_code",
                                    "bill_country": "country"}))

    return _writer(api, "Accounts", payload, "accountname", lambda f: f.get("name"))


def split_name(name: str | None) -> tuple[str, str]:
    """One name → vtiger's firstname and lastname (lastname is mandatory [V]): split at the last space."""
    text = (name or "").strip()
    first, _, last = text.rpartition(" ")
    return first, last or text


def contacts_writer(api: Any, connection: Any = None) -> RecordWriter:
    def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
        body = _blank(pick(fields, {"email": "email", "phone": "phone", "mailingstreet": "street",
                                    "mailingcity": "city", "mailingzip": "post_code", "mailingcountry": "country"}))
        if "name" in fields:
            body["firstname"], body["lastname"] = split_name(fields["name"])
        return body

    return _writer(api, "Contacts", payload, "email", lambda f: f.get("email"))


def products_writer(api: Any, connection: Any = None) -> RecordWriter:
    def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
        return _blank(pick(fields, {"productname": "name", "productcode": "code", "description": "description",
                                    "unit_price": "unit_price"}))

    return _writer(api, "Products", payload, "productname", lambda f: f.get("name"))


def invoices_writer(credit: bool):
    """The customer goes into account_id or contact_id by the module of its id; vtiger needs an organisation on
    every invoice (account_id mandatory [V]): for a contact it is the contact's own, and billing and shipping street
    (mandatory too) are the organisation's."""

    def build(api: Any, connection: Any = None) -> RecordWriter:
        def payload(fields: Mapping[str, Any], our_key: str | None) -> dict:
            body = _blank(pick(fields, {"subject": "title", "invoicedate": "issue_date", "duedate": "due_date"}))
            if credit:
                body["invoicestatus"] = "Credit Invoice"
            elif "paid" in fields:
                body["invoicestatus"] = "Paid" if fields["paid"] else "Approved"
            if "customer" in fields and fields["customer"]:
                body |= _customer(api, fields["customer"], create=our_key is not None)
            if "lines" in fields:
                body["LineItems"] = [{"productid": line.get("product"), "quantity": line.get("quantity"),
                                      "listprice": line.get("unit_price"), "comment": line.get("description") or ""}
                                     for line in fields["lines"] or []]
            if our_key is not None and not body.get("subject"):
                body["subject"] = f"Invoice {fields.get('issue_date') or ''}".strip()
            return body

        return _writer(api, "Invoice", payload, "subject", lambda f: f.get("title"))

    return build


def _customer(api: Any, record_id: str, *, create: bool) -> dict:
    """account_id (and contact_id) for the customer; on a create also the mandatory streets."""
    if record_id.split("x")[0] == str(api.id_prefix("Contacts")):
        account = api.retrieve(record_id).get("account_id") or ""
        return {"contact_id": record_id, "account_id": account, **(_streets(api, account) if create else {})}
    return {"account_id": record_id, **(_streets(api, record_id) if create else {})}


def _streets(api: Any, account_id: str) -> dict:
    street = (api.retrieve(account_id).get("bill_street") or "") if account_id else ""
    return {"bill_street": street or "-", "ship_street": street or "-"}


def _blank(body: dict) -> dict:
    """vtiger keeps "" for no value [V]: a cleared field is sent as ""."""
    return {k: "" if v is None else v for k, v in body.items()}

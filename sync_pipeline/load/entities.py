"""The canonical model of each entity the two-way engine syncs (DESIGN §3, §5a): which columns a side's mapping SQL
produces, which of them are compared, hashed and written, how unlinked records are paired, and which fields refer to
records of other entities (which must be linked first).

A side's mapping SQL (in the vendor's folder) turns its raw records into one row per record with these columns, plus
`source_id`, `record_key`, `derived_id` (its own key), `ref_key` (our key found in its external-id field) and `payload`.
A reference column holds the side's own id of the record referred to; the engine puts the link's key in its place
(`load/twoway_refs.py`), so the two sides of a pair compare equal, and back to the other side's id when it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

# tax numbers compare without separators and without a two-letter country prefix (PL 123-456 = 123456)
_TAX = ("nullif(regexp_replace(upper(regexp_replace(coalesce(tax_id, ''), '[^0-9A-Za-z]', '', 'g')), "
        "'^[A-Z]{2}([0-9])', '\\1'), '')")
_EMAIL = "nullif(lower(trim(email)), '')"
_NAME = "nullif(lower(regexp_replace(trim(name), '\\s+', ' ', 'g')), '')"


@dataclass(frozen=True)
class Ref:
    """A field that refers to records of `entities` (linked first). `item` names the key inside each element when
    the field is a list of structs (invoice lines → product)."""

    field: str
    entities: tuple[str, ...]
    item: str | None = None
    required: bool = True        # a record whose reference cannot be resolved waits (blocked) instead of syncing


@dataclass(frozen=True)
class MatchRule:
    """How two unlinked records are paired after our key: equal values of `expr` (SQL over the mapped row)."""

    label: str
    expr: str


@dataclass(frozen=True)
class EntityModel:
    name: str
    fields: tuple[str, ...]                  # compared, hashed and written, in this order
    match: tuple[MatchRule, ...] = ()        # after our key; at most two
    refs: tuple[Ref, ...] = ()
    after: tuple[str, ...] = ()              # entities synced before it (its references point there)
    label: str = ""

    def ref(self, field: str) -> Ref | None:
        return next((r for r in self.refs if r.field == field), None)


_ADDRESS = ("email", "phone", "street", "city", "post_code", "country")
_LINE_REF = Ref("lines", ("products",), item="product")
_CUSTOMER = Ref("customer", ("organisations", "contacts"))

ENTITIES: dict[str, EntityModel] = {m.name: m for m in (
    EntityModel("clients", ("name", "tax_id", *_ADDRESS),
                match=(MatchRule("tax number", _TAX), MatchRule("e-mail", _EMAIL)), label="clients"),
    EntityModel("organisations", ("name", *_ADDRESS),
                match=(MatchRule("e-mail", _EMAIL), MatchRule("name", _NAME)), label="organisations"),
    EntityModel("contacts", ("name", *_ADDRESS),
                match=(MatchRule("e-mail", _EMAIL), MatchRule("name", _NAME)), label="contacts"),
    EntityModel("products", ("name", "code", "description", "unit_price"),
                match=(MatchRule("product code", "nullif(upper(trim(code)), '')"), MatchRule("name", _NAME)),
                label="products"),
    # the currency is not synced: each system writes in its organisation's base currency (vtiger keeps a reference
    # to its own Currency records, not a code [V])
    EntityModel("invoices", ("title", "customer", "issue_date", "due_date", "paid", "lines"),
                refs=(_CUSTOMER, _LINE_REF), after=("organisations", "contacts", "products"), label="invoices"),
    EntityModel("credit_notes", ("title", "customer", "issue_date", "lines"),
                refs=(_CUSTOMER, _LINE_REF), after=("organisations", "contacts", "products", "invoices"),
                label="credit notes"),
)}


def entity_model(name: str) -> EntityModel:
    try:
        return ENTITIES[name]
    except KeyError:
        raise ValueError(f"no two-way entity {name!r} (known: {', '.join(ENTITIES)})") from None

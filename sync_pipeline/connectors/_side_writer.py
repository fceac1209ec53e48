"""One side's writer for the two-way engine (load/twoway.py `SideWriter`), built from a vendor client's calls
and a function from canonical fields to the vendor's payload."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The canonical client fields the standard mapping syncs (columns of the `_clients` shape, DESIGN §3).
CLIENT_FIELDS = ("name", "tax_id", "email", "phone", "street", "city", "post_code", "country")
VENDOR_FIELDS = "__vendor__"  # fields of a custom mapping, in the written system's own names (load/twoway.py)


def pick(fields: Mapping[str, Any], names: Mapping[str, str]) -> dict:
    """{vendor field: value} for the canonical fields present: a field the connection does not sync (a custom
    mapping leaves it out) is not sent, so the vendor keeps its value."""
    return {vendor: fields[canonical] for vendor, canonical in names.items() if canonical in fields}


def rails_client(fields: Mapping[str, Any]) -> dict:
    """Fakturownia and Sugester (one vendor) name client fields alike [V]; a cleared field is sent as null. The
    department travels only when the connection maps departments."""
    payload = pick(fields, {"name": "name", "tax_no": "tax_id", "email": "email", "phone": "phone", "street": "street",
                            "city": "city", "post_code": "post_code", "country": "country"})
    if "department" in fields:
        department = fields["department"]
        payload["department_id"] = int(department) if department and str(department).isdigit() else department
    return payload


@dataclass(frozen=True)
class RecordWriter:
    """create/update answer the record as the system saved it (its normalising included): the engine hashes
    that answer, so our own write never looks like a user's edit on the next run.

    A create whose answer was lost is looked up before it is sent again: by our key (`find_fn`) where the system
    has an external-id field, else by the fields that identify it (`find_by_fields`)."""

    create_fn: Callable[[dict], dict]
    update_fn: Callable[[Any, dict], dict]
    find_fn: Callable[[str], dict | None] | None
    payload: Callable[[Mapping[str, Any], str | None], dict]  # (fields, our key on a create, else None)
    record_id: Callable[[str], Any] = int                     # the id as the client's update takes it
    find_by_fields: Callable[[Mapping[str, Any]], dict | None] | None = None

    def _body(self, fields: Mapping[str, Any], our_key: str | None) -> dict:
        return self.payload(fields, our_key) | dict(fields.get(VENDOR_FIELDS) or {})

    def create(self, fields: Mapping[str, Any], our_key: str) -> dict:
        return self.create_fn(self._body(fields, our_key))

    def update(self, record_id: str, fields: Mapping[str, Any]) -> dict:
        return self.update_fn(self.record_id(record_id), self._body(fields, None))

    def find(self, our_key: str, fields: Mapping[str, Any] | None = None) -> dict | None:
        if self.find_fn is not None:
            return self.find_fn(our_key)
        if self.find_by_fields is not None and fields is not None:
            return self.find_by_fields(fields)
        return None


def fetcher(get: Callable[[Any, str], dict], valid: Callable[[str], bool] = lambda _: True
            ) -> Callable[[Any, str], dict | None]:
    """A RecordSide.fetch: the record by id through `get(api, id)`, None when the id is not this system's or the
    system has no such record (sync-record asks both sides)."""
    from sync_pipeline.connectors._http import NotFoundError

    def fetch(api: Any, record_id: str) -> dict | None:
        if not valid(record_id):
            return None
        try:
            return get(api, record_id)
        except NotFoundError:
            return None

    return fetch

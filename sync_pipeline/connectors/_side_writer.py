"""One side's writer for the two-way engine (load/twoway.py `SideWriter`), built from a vendor client's calls
and a function from canonical fields to the vendor's payload."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The canonical client fields the standard mapping syncs (columns of the `_clients` shape, DESIGN §3).
CLIENT_FIELDS = ("name", "tax_id", "email", "phone", "street", "city", "post_code", "country")


def rails_client(fields: Mapping[str, Any]) -> dict:
    """Fakturownia and Sugester (one vendor) name client fields alike [V]; a cleared field is sent as null. The
    department travels only when the connection maps departments."""
    payload = {"name": fields.get("name"), "tax_no": fields.get("tax_id"), "email": fields.get("email"),
               "phone": fields.get("phone"), "street": fields.get("street"), "city": fields.get("city"),
               "post_code": fields.get("post_code"), "country": fields.get("country")}
    if "department" in fields:
        department = fields["department"]
        payload["department_id"] = int(department) if department and str(department).isdigit() else department
    return payload


@dataclass(frozen=True)
class RecordWriter:
    """create/update answer the record as the system saved it (its normalising included): the engine hashes
    that answer, so our own write never looks like a user's edit on the next run."""

    create_fn: Callable[[dict], dict]
    update_fn: Callable[[int, dict], dict]
    find_fn: Callable[[str], dict | None]
    payload: Callable[[Mapping[str, Any], str | None], dict]  # (fields, our key on a create, else None)

    def create(self, fields: Mapping[str, Any], our_key: str) -> dict:
        return self.create_fn(self.payload(fields, our_key))

    def update(self, record_id: str, fields: Mapping[str, Any]) -> dict:
        return self.update_fn(int(record_id), self.payload(fields, None))

    def find(self, our_key: str) -> dict | None:
        return self.find_fn(our_key)

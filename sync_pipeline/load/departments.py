"""The `departments` map of a connection (source department → target department, each by id or name), resolved
to ids against both systems' department lists. A client's department syncs in the target's terms: the source's
is translated on the way in, and back on the way out; a department the map does not name is reported."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class DepartmentError(ValueError):
    pass


def _find(entry: str, departments: list[dict], system: str) -> str:
    if any(str(d.get("id")) == entry for d in departments):
        return entry
    hits = [d for d in departments if str(d.get("name") or "").strip().casefold() == entry.casefold()]
    if len(hits) == 1:
        return str(hits[0]["id"])
    known = ", ".join(f"{d.get('id')} ({d.get('name')})" for d in departments) or "none"
    problem = "names several departments" if hits else "is no department"
    raise DepartmentError(f"departments: {entry!r} {problem} of {system} (it has: {known})")


def resolve_departments(mapping: Mapping[str, str], a_pages: Iterable[list[dict]], b_pages: Iterable[list[dict]], *,
                        a: str, b: str) -> dict[str, str]:
    """source department id → target department id."""
    a_list = [d for page in a_pages for d in page if isinstance(d, dict)]
    b_list = [d for page in b_pages for d in page if isinstance(d, dict)]
    return {_find(k, a_list, a): _find(v, b_list, b) for k, v in mapping.items()}

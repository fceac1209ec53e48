"""The user pairing report of a connection: which users exist in both systems with the same login and e-mail
(the condition for switching between the two apps), and what differs for the others. No Dagster here.

The rule: a user of system a and a user of system b are *paired* when their logins are identical and their
e-mails are identical, both compared after trimming surrounding spaces; e-mails ignore letter case (mail
systems do), logins do not (a login is typed exactly). A user without a login or an e-mail is never paired.
The others are listed with what differs, matched one-to-one in a fixed order: `login` (same e-mail, another
login; tried first, as an e-mail names one person), `email` (same login, another e-mail), else
`only_in_<system>`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync_pipeline.connectors._http import BadResponseError
from sync_pipeline.connectors.registry import connector_for
from sync_pipeline.warehouse.db import transaction

DIFFERENCES = ("login", "email")  # then only_in_<a>, only_in_<b>
PREVIEW_ROWS = 20


class NoUsersEndpoint(LookupError):
    """One of the connection's systems has no users endpoint, so there is nothing to pair."""


@dataclass(frozen=True)
class User:
    id: str | None
    login: str | None   # trimmed
    email: str | None   # trimmed, as written (compared in lower case)
    name: str | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> User:
        # Vendors name people either `name` (Sugester) or first_name + last_name (Fakturownia).
        name = _text(record.get("name")) or _text(" ".join(
            str(record[k]) for k in ("first_name", "last_name") if record.get(k) not in (None, "")))
        rid = record.get("id")
        return cls(None if rid is None else str(rid), _text(record.get("login")), _text(record.get("email")), name)

    @property
    def email_key(self) -> str | None:
        return self.email.lower() if self.email else None

    def sort_key(self) -> tuple:
        return (self.login or "", self.email_key or "", self.id or "")


@dataclass(frozen=True)
class Pairing:
    """One row of the report: a pair, or an unpaired user (both users when they differ in one field)."""

    difference: str | None   # None: paired
    a: User | None
    b: User | None

    @property
    def status(self) -> str:
        return "paired" if self.difference is None else "unpaired"


@dataclass(frozen=True)
class PairingReport:
    connection: str
    a_system: str
    b_system: str
    rows: tuple[Pairing, ...]

    @property
    def paired(self) -> int:
        return sum(r.difference is None for r in self.rows)

    @property
    def unpaired(self) -> tuple[Pairing, ...]:
        return tuple(r for r in self.rows if r.difference is not None)

    def difference_kinds(self) -> tuple[str, ...]:
        return (*DIFFERENCES, f"only_in_{self.a_system}", f"only_in_{self.b_system}")

    def differences(self) -> dict[str, int]:
        """Unpaired users per kind of difference, zeros included: {"login": 1, "email": 0, "only_in_x": 2, …}."""
        kinds = {k: 0 for k in self.difference_kinds()}
        for row in self.unpaired:
            kinds[row.difference] += 1
        return kinds

    def as_rows(self) -> list[dict[str, Any]]:
        """Flat rows, as stored in sync.user_pairing and printed by `users --json`."""
        out = []
        for r in self.rows:
            row: dict[str, Any] = {"status": r.status, "difference": r.difference}
            for side, system, user in (("a", self.a_system, r.a), ("b", self.b_system, r.b)):
                row[f"{side}_system"] = system
                for f in ("id", "login", "email", "name"):
                    row[f"{side}_{f}"] = getattr(user, f) if user else None
            out.append(row)
        return out


def pair_users(a_users: Iterable[User], b_users: Iterable[User], *, connection: str, a_system: str,
               b_system: str) -> PairingReport:
    """Pair the users of two systems by the rule of this module; rows in a fixed order (paired, then each kind
    of difference, each by login, e-mail and id)."""
    a_left = sorted(a_users, key=User.sort_key)
    b_left = sorted(b_users, key=User.sort_key)
    rows: list[Pairing] = []

    def match(key: Callable[[User], Any], difference: str | None) -> None:
        # one-to-one, greedy in sorted order: duplicates pair with the first free candidate
        candidates: dict[Any, list[User]] = {}
        for b in b_left:
            if (k := key(b)) is not None:
                candidates.setdefault(k, []).append(b)
        for a in list(a_left):
            found = candidates.get(key(a)) if key(a) is not None else None
            if found:
                b = found.pop(0)
                a_left.remove(a)
                b_left.remove(b)
                rows.append(Pairing(difference, a, b))

    match(lambda u: (u.login, u.email_key) if u.login and u.email_key else None, None)
    match(lambda u: u.email_key, "login")
    match(lambda u: u.login, "email")
    rows += [Pairing(f"only_in_{a_system}", a, None) for a in a_left]
    rows += [Pairing(f"only_in_{b_system}", None, b) for b in b_left]
    order = {None: 0, **{k: i for i, k in enumerate((*DIFFERENCES, f"only_in_{a_system}", f"only_in_{b_system}"), 1)}}
    rows.sort(key=lambda r: (order[r.difference], (r.a or r.b).sort_key(), r.b.sort_key() if r.b else ()))
    return PairingReport(connection, a_system, b_system, tuple(rows))


def read_users(api: Any, reader: str, system: str) -> list[User]:
    """Every user the client's `reader` method pages through."""
    users = []
    for page in getattr(api, reader)():
        for record in page:
            if not isinstance(record, Mapping):
                text = str(record)[:80]
                raise BadResponseError(f"{system}: a user record is not a JSON object: {text}", system=system,
                                       endpoint=f"users list ({reader})", body_excerpt=text)
            users.append(User.from_record(record))
    return users


def users_readers(settings: Any, connection: str) -> tuple[str, str]:
    """The users reader of the connection's source and target; NoUsersEndpoint when either has none."""
    conn = settings.connections[connection]
    readers = []
    for system in (conn.source, conn.target):
        connector = connector_for(settings.systems[system].type)
        if connector.users_reader is None:
            raise NoUsersEndpoint(f"connection {connection}: {system} ({connector.label or settings.systems[system].type}) "
                                  "has no users endpoint, so there is no user pairing report for it")
        readers.append(connector.users_reader)
    return readers[0], readers[1]


def has_user_pairing(source_type: str, target_type: str) -> bool:
    return all(connector_for(t).users_reader is not None for t in (source_type, target_type))


def compute_report(settings: Any, connection: str, client: Callable[[str], Any]) -> PairingReport:
    """Read both systems' users live (`client`: system name -> API client) and pair them."""
    a_reader, b_reader = users_readers(settings, connection)
    conn = settings.connections[connection]
    a_users = read_users(client(conn.source), a_reader, conn.source)
    b_users = read_users(client(conn.target), b_reader, conn.target)
    return pair_users(a_users, b_users, connection=connection, a_system=conn.source, b_system=conn.target)


_COLUMNS = ("status", "difference", "a_system", "a_id", "a_login", "a_email", "a_name",
            "b_system", "b_id", "b_login", "b_email", "b_name")


def write_report(conn: Any, report: PairingReport, *, run_id: str | None) -> None:
    """Replace the connection's rows of sync.user_pairing, in one transaction."""
    now = datetime.now(UTC)
    values = [[report.connection, *(row[c] for c in _COLUMNS), now, run_id] for row in report.as_rows()]
    with transaction(conn):
        conn.execute("DELETE FROM sync.user_pairing WHERE connection = ?", [report.connection])
        if values:
            conn.executemany(f"INSERT INTO sync.user_pairing (connection, {', '.join(_COLUMNS)}, checked_at, run_id) "
                             f"VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})", values)


def preview_markdown(report: PairingReport, limit: int = PREVIEW_ROWS) -> str:
    """A Markdown table of the report, unpaired users first, saying how many rows it shows."""
    rows = [*report.unpaired, *(r for r in report.rows if r.difference is None)]
    shown = rows[:limit]
    lines = [f"showing {len(shown)} of {len(rows)} (unpaired first)", "",
             f"| status | difference | {report.a_system} | {report.b_system} |", "|---|---|---|---|"]
    lines += [f"| {r.status} | {r.difference or '-'} | {_cell(r.a)} | {_cell(r.b)} |" for r in shown]
    return "\n".join(lines)


def describe(user: User | None) -> str:
    """`login / email (id 12)`, or `-` for no user (no angle brackets: Markdown would read them as HTML)."""
    if user is None:
        return "-"
    return f"{user.login or '(no login)'} / {user.email or '(no e-mail)'} (id {user.id or '?'})"


def _cell(user: User | None) -> str:
    return describe(user).replace("|", "\\|")  # a value must not end its table cell


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None

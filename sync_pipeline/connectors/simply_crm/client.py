"""Simply CRM client (vtiger webservice, VENDOR_APIS §4): challenge/login session, VTQL queries paged by LIMIT,
changed-since reads by `sync`, and record writes. Errors come as HTTP 200 envelopes and become the typed errors
of `_http`.

Nothing registers it yet; the lead builds the connection on it."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx

from sync_pipeline.connectors._http import (
    ApiError,
    ApiStatusError,
    AuthError,
    BadResponseError,
    HttpApi,
    NotFoundError,
    Page,
    PageLoop,
    ValidationError,
)

PATH = "/webservice.php"  # relative to the instance root [V]
PAGE_SIZE = 100  # VTQL caps LIMIT at 100 [V]
# Answered by a fresh login and one repeat of the call [V codes].
SESSION_CODES = frozenset({"INVALID_SESSIONID", "SESSION_EXPIRED", "SESSION_LEFT_IDLE"})
AUTH_CODES = frozenset({"INVALID_USER_CREDENTIALS", "ACCESSKEY_UNDEFINED", "AUTHENTICATION_REQUIRED",
                        "AUTHENTICATION_FAILURE", "INVALID_AUTH_TOKEN", "ACCESS_DENIED"})
VALIDATION_CODES = frozenset({"MANDATORY_FIELDS_MISSING", "REFERENCE_INVALID", "INVALID_ID_ATTRIBUTE",
                              "QUERY_SYNTAX_ERROR"})
# Another client logging in as the same user replaces this user's challenge (vtiger keeps one per user [V]):
# our login then fails with one of these although the key is right. One fresh challenge settles it.
_RELOGIN_CODES = frozenset({"INVALID_AUTH_TOKEN", "INVALID_USER_CREDENTIALS"})
_ID = re.compile(r"\d+x\d+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ORDER = re.compile(r"[A-Za-z_]\w*(?:\s+(?:ASC|DESC))?(?:\s*,\s*[A-Za-z_]\w*(?:\s+(?:ASC|DESC))?)*", re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^']|'')*'")
# vtiger's own wording [V]: "<field> does not have a value", "Invalid reference specified for <field>"
_FIELD_IN_MESSAGE = re.compile(r"^(\w+) does not have a value|^Invalid reference specified for (\w+)")


class _Refusal(NamedTuple):
    code: str
    message: str


class _FormBody(httpx.Auth):
    """vtiger reads POST parameters from an `application/x-www-form-urlencoded` body [V]. HttpApi sends JSON
    bodies, so every JSON object this client sends leaves re-encoded as form fields (all of them strings)."""

    def auth_flow(self, request: httpx.Request):
        if request.content and request.headers.get("Content-Type", "").startswith("application/json"):
            fields = json.loads(request.content)
            headers = [(k, v) for k, v in request.headers.multi_items()
                       if k.lower() not in ("content-type", "content-length")]
            request = httpx.Request(request.method, request.url, headers=headers, data=fields,
                                    extensions=request.extensions)
        yield request


def vtql_quote(value: Any) -> str:
    """`value` as a VTQL string literal. vtiger's lexer takes `'(?:[^']|'')+'` and hands the literal to MySQL
    as it is [V] (VTQL_Lexer.php): so a quote is doubled (a backslash-escaped quote would end the token early)
    and a backslash is doubled for MySQL. An empty literal does not lex at all, hence the ValueError."""
    text = str(value)
    if not text:
        raise ValueError("vtiger's query language cannot compare with an empty string")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def record_id(value: Any) -> str:
    """A vtiger id `{typePrefix}x{recordId}` [V]; anything else is refused before it reaches a request."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"not a vtiger record id (like 12x345): {value!r}")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"not a vtiger {what} name: {value!r}")
    return value


def _unix_seconds(moment: datetime) -> int:
    # vtiger compares `modifiedtime > modifiedTime` at one-second precision: one second earlier re-reads the
    # records of updated_since's own second instead of losing those changed later in that second.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0, int(aware.timestamp()) - 1)


class SimplyClient(HttpApi):
    """One Simply CRM instance as one user; records are returned as vtiger sends them (flat dicts of strings).

    Logs in lazily (getchallenge, then login with md5(token + access key)) and renews the session once when a
    call answers INVALID_SESSIONID, SESSION_EXPIRED or SESSION_LEFT_IDLE. `logins` counts the logins made.
    Thread-safe for the writes the pipeline sends from a pool: one login at a time, one renewal per session."""

    def __init__(self, *, system: str, base_url: str, username: str, access_key: str, **http_kwargs: Any) -> None:
        if not isinstance(username, str) or not username.strip():
            raise ValueError(f"{system}: username is empty")
        if not isinstance(access_key, str) or not access_key.strip():
            raise ValueError(f"{system}: access_key is empty")
        if http_kwargs.get("auth") is not None:
            raise ValueError(f"{system}: Simply CRM takes no HTTP auth (the session travels as a parameter)")
        http_kwargs.pop("auth", None)
        secrets = (*http_kwargs.pop("secrets", ()), access_key)
        super().__init__(system=system, base_url=base_url.rstrip("/"), secrets=secrets, auth=_FormBody(),
                         **http_kwargs)
        self.username = username
        self._access_key = access_key
        self._session: str | None = None
        self._login_lock = threading.Lock()
        self.logins = 0
        self.user_id: str | None = None  # the logged-in user's id, e.g. "19x1"
        self.vtiger_version: str | None = None
        self.deleted_ids: dict[str, set[str]] = {}  # module -> ids `sync` reported deleted on the last read
        self._describes: dict[str, dict] = {}
        self._pages = PageLoop(system=system, per_page=PAGE_SIZE)
        self._sync_requests = 0

    @property
    def pages_requested(self) -> int:
        """Query pages and `sync` calls made so far."""
        return self._pages.pages_requested + self._sync_requests

    # -- session ---------------------------------------------------------------------------------------------

    def check_connection(self) -> str:
        """Log in and make one cheap authenticated call (`listtypes`); a short description of who we are."""
        self._call("GET", "listtypes")
        version = f" (vtiger {self.vtiger_version})" if self.vtiger_version else ""
        return f"logged in as {self.username}{version}"

    def _ensure_session(self) -> str:
        session = self._session
        if session is None:
            with self._login_lock:
                if self._session is None:
                    self._login()
                session = self._session
        return session

    def _renew(self, stale: str) -> None:
        with self._login_lock:
            if self._session == stale:  # another thread may have renewed it already
                self._session = None
                self._login()

    def _login(self) -> None:
        for attempt in (1, 2):
            challenge = self._checked("GET", "getchallenge", {"username": self.username})
            token = challenge.get("token") if isinstance(challenge, dict) else None
            if not isinstance(token, str) or not token:
                raise self._bad("getchallenge", "expected a challenge token", challenge)
            access = hashlib.md5((token + self._access_key).encode()).hexdigest()
            self.add_secrets(access)
            result, refusal = self._send("POST", "login", {"username": self.username, "accessKey": access},
                                         idempotent=True)  # a repeated login only opens another session
            if refusal is None:
                break
            if attempt == 1 and refusal.code in _RELOGIN_CODES:
                continue
            raise self._refused("POST", "login", refusal)
        session = result.get("sessionName") if isinstance(result, dict) else None
        if not isinstance(session, str) or not session:
            raise self._bad("login", "expected a sessionName", result)
        self.add_secrets(session)
        self._session = session
        self.user_id = str(result.get("userId") or "") or None
        self.vtiger_version = str(result.get("vtigerVersion") or result.get("version") or "") or None
        self.logins += 1

    # -- transport -------------------------------------------------------------------------------------------

    def _call(self, method: str, operation: str, params: Mapping[str, Any] | None = None, *,
              idempotent: bool | None = None) -> Any:
        """One authenticated operation; a dead session is renewed once and the call repeated once."""
        renewed = False
        while True:
            session = self._ensure_session()
            result, refusal = self._send(method, operation, {**(params or {}), "sessionName": session},
                                         idempotent=idempotent)
            if refusal is None:
                return result
            if refusal.code in SESSION_CODES and not renewed:
                renewed = True  # the refused call was not carried out, so repeating it cannot do it twice
                self._renew(session)
                continue
            raise self._refused(method, operation, refusal, renewed=renewed)

    def _checked(self, method: str, operation: str, params: Mapping[str, Any]) -> Any:
        result, refusal = self._send(method, operation, params)
        if refusal is not None:
            raise self._refused(method, operation, refusal)
        return result

    def _send(self, method: str, operation: str, params: Mapping[str, Any], *,
              idempotent: bool | None = None) -> tuple[Any, _Refusal | None]:
        fields = {"operation": operation, **{k: v for k, v in params.items() if v is not None}}
        try:
            if method == "GET":
                data = self.request_json("GET", PATH, params=fields)
            else:  # POSTs are not repeated after a 5xx or a timeout unless marked idempotent (creates are not)
                data = self.request_json("POST", PATH, json={k: str(v) for k, v in fields.items()},
                                         idempotent=idempotent)
        except ApiError as exc:
            exc.message = f"{exc.message} (operation {operation})"
            exc.args = (exc.message,)
            raise
        if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
            raise self._bad(operation, "expected the {success, result|error} envelope", data)
        if data["success"]:
            return data.get("result"), None
        # vtiger emits error.code/error.message; Simply's docs say errorCode/errorMessage [V]: read both.
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = error.get("code") or error.get("errorCode") or data.get("errorCode") or "UNKNOWN_ERROR"
        message = error.get("message") or error.get("errorMessage") or data.get("errorMessage") or ""
        return None, _Refusal(str(code), str(message))

    def _refused(self, method: str, operation: str, refusal: _Refusal, *, renewed: bool = False) -> ApiStatusError:
        endpoint = f"{method} {PATH}"
        said = self.redact(f"{refusal.code}: {refusal.message}".strip(" :"))
        head = f"{self.system}: vtiger refused `{operation}` ({said[:300]})"
        common = {"system": self.system, "endpoint": endpoint, "status_code": 200, "body_excerpt": said[:300]}
        code = refusal.code
        if code in SESSION_CODES:
            return AuthError(f"{head} again right after a fresh login; check the user's access and the "
                             "instance's session settings" if renewed else head, **common)
        if code == "ACCESS_DENIED" and "attribute" in refusal.message:
            # vtiger's answer to an unknown or hidden field in a query ("Permission to access x attribute denied")
            return ValidationError(f"{head}; the field does not exist in the module or the user may not see it",
                                   **common)
        if code in AUTH_CODES:
            return AuthError(f"{head}; check the username and access key", **common)
        if code == "RECORD_NOT_FOUND":
            return NotFoundError(head, **common)
        if code in VALIDATION_CODES:
            match = _FIELD_IN_MESSAGE.match(self.redact(refusal.message))
            fields = {match[1] or match[2]: [self.redact(refusal.message)]} if match else {}
            return ValidationError(head, field_errors=fields, **common)
        return ApiStatusError(head, **common)

    def _bad(self, operation: str, problem: str, data: Any) -> BadResponseError:
        text = self.redact(json.dumps(data, ensure_ascii=False, default=str))
        return BadResponseError(f"{self.system}: `{operation}` {problem}; got {text[:120]}", system=self.system,
                                endpoint=f"GET {PATH}", status_code=200, body_excerpt=text[:300])

    # -- metadata --------------------------------------------------------------------------------------------

    def describe(self, module: str) -> dict:
        """The module's description, cached: {label, name, idPrefix, fields: [{name, label, mandatory, type:
        {name, refersTo}}], ...} [V]."""
        module = _name(module, "module")
        if module not in self._describes:
            result = self._call("GET", "describe", {"elementType": module})
            if not isinstance(result, dict) or not isinstance(result.get("fields"), list):
                raise self._bad("describe", "expected a description with `fields`", result)
            self._describes[module] = result
        return self._describes[module]

    def id_prefix(self, module: str) -> str:
        """The module's id prefix on this instance ("12" for ids like 12x345): it varies per instance [V]."""
        prefix = self.describe(module).get("idPrefix")
        if not isinstance(prefix, (str, int)) or not str(prefix).isdigit():
            raise self._bad("describe", f"expected a numeric idPrefix for {module}", prefix)
        return str(prefix)

    def field_names(self, module: str) -> set[str]:
        """Names of the module's fields, custom ones (cf_…) included: to validate field mappings."""
        return {f["name"] for f in self.describe(module)["fields"] if isinstance(f, dict) and "name" in f}

    # -- reads -----------------------------------------------------------------------------------------------

    def iter_query_pages(self, module: str, where: str = "", order_by: str = "id") -> Iterator[list[dict]]:
        """Pages of `SELECT * FROM module [WHERE where] ORDER BY order_by LIMIT offset, 100;` until a short
        page. `where` is VTQL text: quote values with `vtql_quote`."""
        return self._iter_vtql(module, "*", where, order_by)

    def iter_changed_pages(self, module: str, updated_since: datetime | None) -> Iterator[list[dict]]:
        """Pages of the records changed since `updated_since` (None: all) by the `sync` operation [V], repeated
        from `lastModifiedTime` while `more`; `syncType=application` includes every owner's records (admin
        users only). The ids it reports deleted are left in `deleted_ids[module]`."""
        module = _name(module, "module")
        since = 0 if updated_since is None else _unix_seconds(updated_since)
        deleted = self.deleted_ids[module] = set()
        while True:
            self._sync_requests += 1
            result = self._call("GET", "sync", {"modifiedTime": since, "elementType": module,
                                                "syncType": "application"})
            updated = result.get("updated") if isinstance(result, dict) else None
            gone = result.get("deleted", []) if isinstance(result, dict) else None
            if not isinstance(updated, list) or not isinstance(gone, list):
                raise self._bad("sync", "expected `updated` and `deleted` lists", result)
            deleted.update(str(i) for i in gone)
            if updated:
                yield updated
            if result.get("more") not in (True, 1, "1", "true"):
                return
            last = result.get("lastModifiedTime")
            if isinstance(last, bool) or not str(last).isdigit() or int(last) <= since:
                # the same request again would answer the same page forever
                raise self._bad("sync", f"says more changes follow but lastModifiedTime {last!r} does not move "
                                        f"past {since}", {k: v for k, v in result.items() if k != "updated"})
            since = int(last)

    def iter_account_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self.iter_changed_pages("Accounts", updated_since)

    def iter_contact_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self.iter_changed_pages("Contacts", updated_since)

    def iter_product_pages(self, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self.iter_changed_pages("Products", updated_since)

    def iter_invoice_pages(self, *, updated_since: datetime | None = None,
                           with_lines: bool = True) -> Iterator[list[dict]]:
        """Changed invoices (credit invoices included). `sync` rows of inventory modules carry no line items [V]
        (GetUpdates.php leaves the LineItem fields out); with `with_lines` each one is replaced by its `retrieve`
        answer, `LineItems` included: one more request per changed invoice. One deleted in between is added
        to `deleted_ids["Invoice"]`."""
        pages = self.iter_changed_pages("Invoice", updated_since)
        return self._with_lines(pages) if with_lines else pages

    def _with_lines(self, pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
        for page in pages:
            full = []
            for row in page:
                try:
                    full.append(self.retrieve(row.get("id") if isinstance(row, dict) else row))
                except NotFoundError:
                    self.deleted_ids["Invoice"].add(row["id"])
            if full:
                yield full

    def iter_account_keys(self) -> Iterator[list[dict]]:
        """Every record's id ([{"id": "11x5"}, …]): the key scan that shows which records were deleted."""
        return self._iter_vtql("Accounts", "id", "", "id")

    def iter_contact_keys(self) -> Iterator[list[dict]]:
        return self._iter_vtql("Contacts", "id", "", "id")

    def iter_product_keys(self) -> Iterator[list[dict]]:
        return self._iter_vtql("Products", "id", "", "id")

    def iter_invoice_keys(self) -> Iterator[list[dict]]:
        return self._iter_vtql("Invoice", "id", "", "id")

    def retrieve(self, id: str) -> dict:
        """One record; inventory records (Invoice) carry `LineItems` here [V]."""
        return self._record("retrieve", self._call("GET", "retrieve", {"id": record_id(id)}))

    def find_by(self, module: str, field: str, value: Any) -> dict | None:
        """The first record (lowest id) whose `field` equals `value` (vtiger compares like MySQL: case-insensitive
        for most text fields [I]), or None."""
        module, field = _name(module, "module"), _name(field, "field")
        if field != "id" and field not in self.field_names(module):
            raise ValueError(f"{self.system}: {module} has no field {field!r}")
        query = f"SELECT * FROM {module} WHERE {field} = {vtql_quote(value)} ORDER BY id LIMIT 1;"
        rows = self._call("GET", "query", {"query": query})
        if not isinstance(rows, list):
            raise self._bad("query", "expected a list of records", rows)
        return rows[0] if rows else None

    def _iter_vtql(self, module: str, columns: str, where: str, order_by: str) -> Iterator[list[dict]]:
        module = _name(module, "module")
        if not isinstance(order_by, str) or not _ORDER.fullmatch(order_by.strip()):
            raise ValueError(f"not a VTQL ORDER BY list: {order_by!r}")
        where = (where or "").strip()
        outside_quotes = _QUOTED.sub("''", where)
        if ";" in outside_quotes or re.search(r"\b(?:LIMIT|ORDER)\b", outside_quotes, re.IGNORECASE):
            raise ValueError("`where` must be a bare condition (no `;`, ORDER BY or LIMIT; quote values with "
                             "vtql_quote)")
        head = f"SELECT {columns} FROM {module}{' WHERE ' + where if where else ''} ORDER BY {order_by.strip()}"

        def fetch(n: int) -> Page:
            rows = self._call("GET", "query", {"query": f"{head} LIMIT {(n - 1) * PAGE_SIZE}, {PAGE_SIZE};"})
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise self._bad("query", "expected a list of records", rows)
            return Page(rows)

        return self._pages.iterate(fetch, f"GET {PATH} query {module}")

    # -- writes ----------------------------------------------------------------------------------------------

    def create(self, module: str, element: Mapping[str, Any]) -> dict:
        """Create a record; `assigned_user_id` defaults to the logged-in user. Not repeated after a 5xx or a
        timeout: vtiger has no idempotency key, and a repeat could create a duplicate."""
        module = _name(module, "module")
        if not isinstance(element, Mapping):
            raise TypeError("element must be a mapping of field names to values")
        element = dict(element)
        if not element.get("assigned_user_id"):
            self._ensure_session()
            element["assigned_user_id"] = self.user_id
        return self._record("create", self._call("POST", "create", {"elementType": module,
                                                                    "element": json.dumps(element)},
                                                 idempotent=False))

    def revise(self, element: Mapping[str, Any]) -> dict:
        """Change only the given fields of record `element["id"]`; the answer is the whole record. Setting the
        same values twice is harmless, so it may be repeated after a 5xx."""
        return self._write("revise", element)

    def update(self, element: Mapping[str, Any]) -> dict:
        """Replace the whole record `element["id"]` (fields left out are emptied) [V]."""
        return self._write("update", element)

    def delete(self, id: str) -> dict:
        """Delete a record; {"status": "successful"} [V]. A repeat after a lost answer may report
        RECORD_NOT_FOUND (NotFoundError) for the record it deleted."""
        return self._record("delete", self._call("POST", "delete", {"id": record_id(id)}, idempotent=True))

    def _write(self, operation: str, element: Mapping[str, Any]) -> dict:
        if not isinstance(element, Mapping):
            raise TypeError("element must be a mapping of field names to values")
        record_id(element.get("id"))
        return self._record(operation, self._call("POST", operation, {"element": json.dumps(dict(element))},
                                                  idempotent=True))

    def _record(self, operation: str, result: Any) -> dict:
        if not isinstance(result, dict):
            raise self._bad(operation, "expected a record", result)
        return result

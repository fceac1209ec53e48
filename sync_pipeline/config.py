"""`sync.yaml` → typed settings: `${ENV}` interpolation, validation, errors that name file and key.

No value from the file or the environment is ever part of an error message (a secret may sit in
any key by mistake): messages are built from the file, the key path, the problem and the valid
choices only. Secrets must be `${ENV_VAR}` references; duplicate keys are errors.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from sync_pipeline.sandbox.faults import FaultPlanSetting, FaultTarget
from sync_pipeline.connectors._http import RetryPolicy
from sync_pipeline.connectors.fakturownia.client import base_url_for as fakturownia_base_url
from sync_pipeline.connectors._token_param import check_account
from sync_pipeline.connectors.sugester.client import base_url_for as sugester_base_url
from sync_pipeline.warehouse.currencies import ISO_4217

CONFIG_ENV_VAR = "SYNC_PIPELINE_CONFIG"
DEFAULT_CONFIG_NAME = "sync.yaml"
DEFAULT_DEAL_KINDS = ("vat", "vat_margin", "advance", "final", "receipt")
# Fakturownia/InvoiceOcean document kinds (VENDOR_APIS §1.6); a typo in deal_kinds must not silently select nothing.
FAKTUROWNIA_KINDS = frozenset(
    "vat proforma bill receipt advance final correction invoice_other vat_margin kp kw estimate vat_mp vat_rr "
    "correction_note accounting_note client_order dw wnt wdt import_service import_service_eu import_products "
    "export_products".split()
)
SCHEDULE_CRONS = {"nightly": "0 0 * * *", "every_3_hours": "0 */3 * * *"}
SCHEDULE_NAMES = frozenset({*SCHEDULE_CRONS, "manual"})  # besides these, a 5-field cron expression

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CUSTOM_FIELD = re.compile(r"^(string|integer|decimal|date)([1-9]|10)$")


class ConfigError(ValueError):
    """The configuration file is unusable; the message names the file, the key and the problem."""


class _At(ValueError):
    """A problem below the key being validated: `path` continues the key path (a dict key, a list index)."""

    def __init__(self, message: str, *path: str | int):
        super().__init__(message)
        self.path = path


def _key_path(parts: tuple | list) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, line: int, key: Any, path: tuple):
        where = f"in {_key_path(path)}" if path else "at the top level"
        super().__init__(f"line {line}: duplicate key {key!r} {where}")


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps (dates reach validation as text, so a bad one is reported with
    its key instead of crashing the parser) and without duplicate keys (the later one would silently win)."""

    def construct_document(self, node):
        self._paths = _node_paths(node)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden: that is what merge keys are for
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise _DuplicateKey(key_node.start_mark.line + 1, key, self._paths.get(id(node), ()))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _node_paths(root: yaml.Node) -> dict[int, tuple]:
    """id(node) → its key path, for naming the mapping that holds a duplicate key."""
    paths: dict[int, tuple] = {}
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in paths:
            continue  # an alias: keep the first path (and stop on recursive ones)
        paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            stack += [(v, (*path, k.value if isinstance(k, yaml.ScalarNode) else "?")) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, (*path, i)) for i, v in enumerate(node.value)]
    return paths


def _unresolved_allowed(value: str, info: ValidationInfo) -> bool:
    """A `${VAR}` left in place by `load_settings(strict=False)`: checked once the environment provides it."""
    return bool(info.context and not info.context.get("strict", True) and _ENV_REF.search(value))


def _check_http_url(value: str | None, info: ValidationInfo) -> str | None:
    if value is None or _unresolved_allowed(value, info):
        return value
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError:
        url = None
    if url is None or url.scheme.lower() not in ("http", "https") or not url.hostname or re.search(r"\s", value):
        raise ValueError("must be an absolute http(s) URL with a host, e.g. https://acme.fakturownia.pl")
    if url.username is not None or url.password is not None:
        raise ValueError("must be an absolute http(s) URL without credentials in it (secrets go in their own keys)")
    if url.query or url.fragment:
        raise ValueError("must be an absolute http(s) URL without a query or fragment")
    return value


def _valid_cron(expression: str) -> bool:
    """Dagster's own rule for a schedule's cron string (imported here: loading the config stays light)."""
    from dagster._utils.schedules import is_valid_cron_string

    return is_valid_cron_string(expression)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: Any) -> timedelta:
    """`90m`, `2h`, `1d`, `30s` or a number of minutes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(minutes=value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError("expected a duration such as 30m, 2h or 1d")
    n, unit = int(m.group(1)), m.group(2)
    return {"s": timedelta(seconds=n), "m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


class WarehouseSettings(_Strict):
    path: Path = Path("var/warehouse.duckdb")
    # DuckDB's own buffer cap (its default is 80 % of the machine's memory): what does not fit spills to a
    # temporary folder beside the file, so a sync of millions of invoices stays within it.
    memory_limit: str = Field("700MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class SandboxSettings(_Strict):
    """Present only in a sandbox configuration: `sync-pipeline run` then serves the simulators itself."""

    seed: int = 42
    clients: int = Field(40, ge=1)
    invoices_per_client: int = Field(6, ge=0)
    months: int = Field(18, ge=1)
    max_rps: float | None = None
    malformed_invoices: int = Field(3, ge=0)  # served among the good ones, to show the quarantine
    # clients typed into Sugester itself, to show the two-way sync: the first has a Fakturownia client's tax
    # number (paired, not duplicated), the rest are new to Fakturownia
    sugester_clients: int = Field(3, ge=0)
    state_file: Path | None = Path("var/sandbox_state.json")
    # simulator name or "*" -> FaultPlan fields, e.g. {"*": {server_error: 0.1, seed: 3}}; default: no faults
    faults: dict[FaultTarget, FaultPlanSetting] = {}


class RetrySettings(_Strict):
    """Retries of 408/409/429/5xx and connection errors: capped, jittered exponential backoff."""

    max_attempts: int = Field(6, ge=1)
    base_delay: float = Field(0.5, ge=0)
    max_delay: float = Field(30.0, ge=0)
    total_budget: float = Field(120.0, gt=0)


# Figures an alert rule, a health input or a target field can name (reporting currency).
METRIC_TYPES = {
    "invoice_count": "integer", "total_billed_12m": "decimal", "total_paid": "decimal", "total_due": "decimal",
    "overdue_invoice_count": "integer", "overdue_amount": "decimal", "overdue_since": "date",
    "max_days_overdue": "integer", "aging_current": "decimal", "aging_1_30": "decimal", "aging_31_60": "decimal",
    "aging_61_90": "decimal", "aging_91_plus": "decimal", "dso_90d": "decimal", "last_payment_date": "date",
    "health_score": "integer", "health_band": "string", "health_reason": "string",
}
NUMERIC_METRICS = frozenset(m for m, t in METRIC_TYPES.items() if t in ("integer", "decimal"))


class HealthSettings(_Strict):
    """Financial health score 0–100 (see transform/sql/financial_health.sql for the formula)."""

    weight_overdue_share: float = Field(0.5, ge=0)
    weight_days_overdue: float = Field(0.3, ge=0)
    weight_overdue_count: float = Field(0.2, ge=0)
    days_cap: int = Field(90, ge=1)       # days overdue at which the days factor is full
    count_cap: int = Field(5, ge=1)       # overdue invoices at which the count factor is full
    healthy_from: int = Field(70, ge=0, le=100)
    at_risk_from: int = Field(40, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self):
        if self.weight_overdue_share + self.weight_days_overdue + self.weight_overdue_count <= 0:
            raise ValueError("at least one weight must be above 0")
        if self.at_risk_from > self.healthy_from:
            raise ValueError("at_risk_from must not be above healthy_from")
        return self

    def normalised_weights(self) -> tuple[float, float, float]:
        total = self.weight_overdue_share + self.weight_days_overdue + self.weight_overdue_count
        return (self.weight_overdue_share / total, self.weight_days_overdue / total, self.weight_overdue_count / total)


class AlertRule(_Strict):
    name: str
    metric: str
    comparison: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"

    @field_validator("metric")
    @classmethod
    def _numeric(cls, metric: str) -> str:
        if metric not in NUMERIC_METRICS:
            raise ValueError(f"not a numeric metric; one of: {', '.join(sorted(NUMERIC_METRICS))}")
        return metric


DEFAULT_ALERT_RULES = (
    AlertRule(name="overdue_amount_above_limit", metric="overdue_amount", comparison=">", threshold=10000,
              severity="warning"),
    AlertRule(name="more_than_2_overdue_invoices", metric="overdue_invoice_count", comparison=">", threshold=2,
              severity="warning"),
    AlertRule(name="overdue_60_days_or_more", metric="max_days_overdue", comparison=">=", threshold=60,
              severity="critical"),
)


class MetricsSettings(_Strict):
    reporting_currency: str = "PLN"
    fx_rates_csv: Path | None = None                 # columns: currency,rate (1 unit = rate reporting units)
    fx_rates: dict[str, Decimal] = {}                # inline rates; win over the CSV
    health: HealthSettings = HealthSettings()
    alerts: tuple[AlertRule, ...] = DEFAULT_ALERT_RULES

    @field_validator("reporting_currency")
    @classmethod
    def _iso(cls, code: str) -> str:
        if code not in ISO_4217:
            raise ValueError("not an ISO 4217 currency code (such as PLN, EUR, USD)")
        return code

    @field_validator("fx_rates")
    @classmethod
    def _rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in rates.items():
            if code not in ISO_4217:
                raise _At("not an ISO 4217 currency code (such as PLN, EUR, USD)", code)
            if rate <= 0:
                raise _At("a rate must be above 0", code)
        return rates

    @field_validator("alerts")
    @classmethod
    def _unique(cls, rules: tuple[AlertRule, ...]) -> tuple[AlertRule, ...]:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError("alert rule names must be unique")
        return rules


class _SystemBase(_Strict):
    name: str = ""  # filled from the mapping key
    base_url: str | None = None
    account: str | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    retry: RetrySettings = RetrySettings()
    # Requests in flight at once when writing to this system as a target. Neither Sugester nor
    # CustomerSuccessBox documents a rate limit; 8 in flight is what common SaaS limits allow, and about
    # 6× faster than one at a time at 20 ms per round trip (bench/RESULTS.md).
    write_concurrency: int = Field(8, ge=1, le=32)
    # How often a full key scan of a list runs (the nightly scan that shows records deleted at the source);
    # a full read counts as one. 0 scans on every run.
    key_scan_every: timedelta = timedelta(hours=24)

    @field_validator("key_scan_every", mode="before")
    @classmethod
    def _scan_every(cls, value: Any) -> timedelta:
        return parse_duration(value)

    def http_options(self) -> dict:
        return {"timeout": self.timeout_seconds, "retry": RetryPolicy(**self.retry.model_dump())}

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _check_http_url(value, info)

    @field_validator("account")
    @classmethod
    def _label(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _unresolved_allowed(value, info):
            return value
        return check_account(value)

    @model_validator(mode="after")
    def _needs_address(self):
        if not self.base_url and not self.account and not self.has_default_address:
            raise ValueError("set either `account` (the subdomain) or `base_url`")
        return self

    has_default_address: ClassVar[bool] = False  # a system whose API host follows from other settings (Zoho's data centre)


class _SourceSystemBase(_SystemBase):
    """What every source has: incremental reads go back `reread_lag` before the cursor (records change
    after they are issued), and a record stamped more than `max_clock_skew` ahead of this machine's clock
    is quarantined instead of moving the cursor into the future."""

    reread_lag: timedelta = timedelta(hours=2)
    max_clock_skew: timedelta = timedelta(minutes=10)

    @field_validator("reread_lag", "max_clock_skew", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @property
    def is_source(self) -> bool:
        return True


class FakturowniaSystem(_SourceSystemBase):
    """Fakturownia and InvoiceOcean: one API on two domains (VENDOR_APIS §1)."""

    type: Literal["fakturownia", "invoiceocean"]
    api_token: SecretStr
    identifier: Literal["source_id", "external_id", "tax_id"] = "source_id"
    per_page: int = Field(100, ge=1, le=100)

    def resolved_base_url(self) -> str:
        return (self.base_url or fakturownia_base_url(self.type, self.account or "")).rstrip("/")


class ZohoInvoiceSystem(_SourceSystemBase):
    """Zoho Invoice API v3 with OAuth2 refresh tokens (VENDOR_APIS §5)."""

    type: Literal["zoho_invoice"]
    dc: Literal["com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"] = "com"
    accounts_url: str | None = None        # override of the OAuth server (the sandbox)
    organization_id: str
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    # the immutable account identifier: a Zoho contact custom field (api_name), e.g. cf_account_id
    identifier: Literal["custom_field", "source_id"] = "custom_field"
    identifier_field: str = "cf_account_id"
    per_page: int = Field(200, ge=1, le=200)

    has_default_address: ClassVar[bool] = True

    @field_validator("accounts_url")
    @classmethod
    def _accounts_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _check_http_url(value, info)

    @field_validator("identifier_field")
    @classmethod
    def _api_name(cls, value: str) -> str:
        if not re.match(r"^cf_[a-z0-9_]+$", value):
            raise ValueError("a Zoho custom field api_name looks like cf_account_id")
        return value

    def resolved_base_url(self) -> str:
        from sync_pipeline.connectors.zoho_invoice.client import urls_for

        return (self.base_url or urls_for(self.dc)[0]).rstrip("/")

    def resolved_accounts_url(self) -> str:
        from sync_pipeline.connectors.zoho_invoice.client import urls_for

        return (self.accounts_url or urls_for(self.dc)[1]).rstrip("/")


class CustomerSuccessBoxSystem(_SystemBase):
    """CustomerSuccessBox: push-only HTTP API, Bearer key (VENDOR_APIS §6)."""

    type: Literal["customersuccessbox"]
    api_key: SecretStr
    timeout_seconds: float = Field(5.0, gt=0)  # the official SDKs use 5 s

    @property
    def is_source(self) -> bool:
        return False

    def resolved_base_url(self) -> str:
        return (self.base_url or f"https://{self.account}.customersuccessbox.com").rstrip("/")


class SugesterSystem(_SystemBase):
    type: Literal["sugester"]
    api_token: SecretStr

    @property
    def is_source(self) -> bool:
        return False

    def resolved_base_url(self) -> str:
        return (self.base_url or sugester_base_url(self.account or "")).rstrip("/")


class BillySystem(_SourceSystemBase):
    """Billy (billy.dk) API v2: one organisation per access token (VENDOR_APIS §3)."""

    type: Literal["billy"]
    access_token: SecretStr
    identifier: Literal["source_id"] = "source_id"   # the account id of its contacts: billy:<contact id>
    page_size: int = Field(1000, ge=1, le=1000)
    has_default_address: ClassVar[bool] = True

    def resolved_base_url(self) -> str:
        return (self.base_url or "https://api.billysbilling.com/v2").rstrip("/")


class SimplyCrmSystem(_SystemBase):
    """Simply CRM (vtiger webservice) on the instance's host: `account` is the subdomain of simply-crm.com, or set
    `base_url` (VENDOR_APIS §4)."""

    type: Literal["simply_crm"]
    username: str = "admin"
    access_key: SecretStr

    @property
    def is_source(self) -> bool:
        return False

    def resolved_base_url(self) -> str:
        return (self.base_url or f"https://{self.account}.simply-crm.com").rstrip("/")


class Invoice2goZapierSystem(_SystemBase):
    """Invoice2go through the user's Zaps (VENDOR_APIS §7): one Zapier catch hook per entity, import only. A hook
    URL is a secret (`${ENV}`): as Zapier shows it, or its path after `base_url` (default https://hooks.zapier.com).
    `quota`: records the Invoice2go plan lets each entity create per `quota_period`."""

    type: Literal["invoice2go_zapier"]
    clients_hook_url: SecretStr | None = None
    products_hook_url: SecretStr | None = None
    quota: dict[Literal["clients", "products"], int] = {}
    quota_period: Literal["day", "week", "month", "year"] = "month"
    # Zapier runs a Zap per delivery; a few at a time keeps within its rate limits (a 429 is waited out anyway)
    write_concurrency: int = Field(2, ge=1, le=32)
    has_default_address: ClassVar[bool] = True

    @field_validator("quota")
    @classmethod
    def _positive(cls, quota: dict[str, int]) -> dict[str, int]:
        for entity, limit in quota.items():
            if limit < 0:
                raise _At("a number of records, 0 or more", entity)
        return quota

    @property
    def is_source(self) -> bool:
        return False

    def resolved_base_url(self) -> str:
        return (self.base_url or "https://hooks.zapier.com").rstrip("/")


System = Annotated[FakturowniaSystem | ZohoInvoiceSystem | SugesterSystem | CustomerSuccessBoxSystem | BillySystem
                   | SimplyCrmSystem | Invoice2goZapierSystem, Field(discriminator="type")]
SourceSystem = FakturowniaSystem | ZohoInvoiceSystem | BillySystem
_SYSTEM_TYPES = tuple(t for model in get_args(get_args(System)[0])
                      for t in get_args(model.model_fields["type"].annotation))


class RecordSyncSettings(_Strict):
    """How one entity syncs both ways (DESIGN §5a): a = the connection's source, b = its target."""

    direction: Literal["a_to_b", "b_to_a", "both"] = "both"
    winner: str | None = None  # the system (name or type) whose values are kept when both sides changed; default: source


class ConnectionSettings(_Strict):
    name: str = ""
    source: str
    target: str
    # nightly | every_3_hours | manual, or a 5-field cron expression (UTC); default: by target, the cadence of the integration it replaces (Connector.default_schedule)
    schedule: str | None = None
    deal_kinds: tuple[str, ...] = DEFAULT_DEAL_KINDS
    history_start: date = date(2025, 1, 1)
    dry_run: bool = False
    error_budget: int = Field(10, ge=0)  # failed records per run before the run fails
    # target custom field → metric written back on each client, e.g. {decimal1: overdue_amount}
    metric_fields: dict[str, str] = {}
    clients: RecordSyncSettings = RecordSyncSettings()  # two-way client sync, where both systems have clients
    update_deals: bool = True  # an invoice whose status or amount changes updates its deal (never re-created)
    # the source's department (id or name) → the target's (id or name); set: clients sync their department too
    departments: dict[str, str] = {}
    # every two-way entity of the connection (Billy ↔ Simply CRM): a_to_b | b_to_a | both, or <system>_to_<system>
    # with the connection's system names or types (simply_to_billy); unset: `clients.direction` for clients
    direction: str | None = None
    winner: str | None = None   # the system (name or type) whose values are kept when both sides changed
    # standard, or per entity a list of field pairs {<source>: field, <target>: field} synced instead of the standard
    # fields (references such as an invoice's customer and lines always sync)
    mapping: Literal["standard"] | dict[str, tuple[dict[str, str], ...]] = "standard"
    invoice_link: Literal["organisations", "contacts"] = "organisations"  # what a CRM invoice is attached to
    # Invoice2go: a record already sent is sent again when it changes (the Zap then creates another one)
    send_updates: bool = False

    @field_validator("departments", mode="before")
    @classmethod
    def _department_names(cls, mapping: Any) -> Any:
        if not isinstance(mapping, Mapping):
            return mapping
        out = {}
        for key, value in mapping.items():  # YAML reads ids as numbers: ids and names are compared as text
            if not isinstance(key, (str, int)) or isinstance(key, bool) or not isinstance(value, (str, int)) \
                    or isinstance(value, bool) or not str(key).strip() or not str(value).strip():
                raise _At("a department id or name on each side, such as 7781: Sprzedaż", str(key))
            out[str(key).strip()] = str(value).strip()
        return out

    def winner_side(self, systems: Mapping[str, Any]) -> str:
        """'a' or 'b': the side whose values are kept when both changed."""
        w = self.winner or self.clients.winner
        if w is None or w in (self.source, systems[self.source].type):
            return "a"
        return "b"

    def direction_code(self, systems: Mapping[str, Any]) -> str:
        """a_to_b | b_to_a | both: `direction` in the source's (a) and target's (b) terms."""
        d = self.direction
        if d is None:
            return self.clients.direction
        if d in ("a_to_b", "b_to_a", "both"):
            return d
        frm, _, to = d.partition("_to_")
        a = (self.source, systems[self.source].type)
        return "a_to_b" if frm in a else "b_to_a"

    def custom_fields(self, entity: str) -> tuple[tuple[str, str, str], ...]:
        """(canonical name, source field, target field) of the entity's custom mapping; () for standard."""
        if self.mapping == "standard" or entity not in self.mapping:
            return ()
        return tuple((f"{p[self.source]}|{p[self.target]}", p[self.source], p[self.target])
                     for p in self.mapping[entity])

    @field_validator("metric_fields")
    @classmethod
    def _fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        for field, metric in mapping.items():
            m = _CUSTOM_FIELD.match(field)
            if not m:
                raise _At("not a Sugester custom field (string1..10, integer1..10, decimal1..10, date1..10)", field)
            if metric not in METRIC_TYPES:
                raise _At(f"unknown metric; one of: {', '.join(sorted(METRIC_TYPES))}", field)
            kind, mtype = m.group(1), METRIC_TYPES[metric]
            if kind != "string" and kind != mtype and not (kind == "decimal" and mtype == "integer"):
                raise _At(f"a {kind} field cannot hold {metric} ({mtype})", field)
        return mapping

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or value in SCHEDULE_NAMES:
            return value
        if len(value.split()) == 5:  # looks like cron: say what is wrong with it, not which names exist
            if not _valid_cron(value):
                raise ValueError("not a valid cron expression (5 fields: minute hour day-of-month month "
                                 "day-of-week, e.g. */15 * * * *; evaluated in UTC)")
            return value
        raise ValueError("Input should be 'nightly', 'every_3_hours' or 'manual', or a 5-field cron expression "
                         "such as */15 * * * * (UTC)")

    @field_validator("deal_kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        for i, kind in enumerate(kinds):
            if kind not in FAKTUROWNIA_KINDS:
                raise _At(f"unknown document kind; known: {', '.join(sorted(FAKTUROWNIA_KINDS))}", i)
        if not kinds:
            raise ValueError("select at least one document kind")
        return kinds

    @property
    def cron(self) -> str | None:
        """The cron expression of the schedule (UTC); None for `manual`."""
        if self.schedule is None or self.schedule == "manual":
            return None
        return SCHEDULE_CRONS.get(self.schedule, self.schedule)


class Settings(_Strict):
    path: Path = Path(DEFAULT_CONFIG_NAME)  # the file it was read from; relative paths resolve against its folder
    warehouse: WarehouseSettings = WarehouseSettings()
    metrics: MetricsSettings = MetricsSettings()
    sandbox: SandboxSettings | None = None
    systems: dict[str, System]
    connections: dict[str, ConnectionSettings]

    @model_validator(mode="after")
    def _wire(self):
        for section, names in (("systems", self.systems), ("connections", self.connections)):
            for name in names:
                if not _NAME.match(name):
                    raise _At("a name must be lower case letters, digits and _ (it becomes a Dagster asset key)",
                              section, name)
        for name, conn in self.connections.items():
            src, tgt = self.systems.get(conn.source), self.systems.get(conn.target)
            # a reference is echoed only once it matches a system name, i.e. a key of this file
            for role, system in (("source", src), ("target", tgt)):
                if system is None:
                    raise _At(f"no system by that name; systems: {', '.join(self.systems)}", "connections", name, role)
            if not src.is_source and not _takes_any_source(tgt.type):
                raise _At(f"system {conn.source!r} ({src.type}) cannot be a source", "connections", name, "source")
            if tgt.is_source:
                raise _At(f"system {conn.target!r} ({tgt.type}) cannot be a target", "connections", name, "target")
            winner = conn.clients.winner
            if winner is not None and winner not in (conn.source, conn.target, src.type, tgt.type):
                raise _At(f"not a system of this connection; one of: {conn.source}, {conn.target}",
                          "connections", name, "clients", "winner")
            _check_two_way_options(name, conn, src, tgt)
            if conn.schedule is None:
                from sync_pipeline.connectors.registry import connector_for  # the registry imports this module's users

                object.__setattr__(conn, "schedule", connector_for(tgt.type).default_schedule)
        return self

    # -- derived -------------------------------------------------------------------------------
    def resolve_path(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.path.parent / p)

    @property
    def warehouse_path(self) -> Path:
        return self.resolve_path(self.warehouse.path)

    @property
    def source_systems(self) -> dict[str, SourceSystem]:
        return {n: s for n, s in self.systems.items() if s.is_source}

    def connection_named(self, name: str) -> ConnectionSettings:
        """The connection `name`, or a configuration error that lists the ones there are."""
        if name not in self.connections:
            raise ConfigError(f"{self.path}: no connection named {name} (have: {', '.join(self.connections)})")
        return self.connections[name]

    def connections_for_source(self, system: str) -> list[ConnectionSettings]:
        return [c for c in self.connections.values() if c.source == system]

    def history_start_for(self, system: str) -> date | None:
        starts = [c.history_start for c in self.connections_for_source(system)]
        return min(starts) if starts else None


def _takes_any_source(target_type: str) -> bool:
    """A target that reads its records from any system's sides (Invoice2go: clients and products of any system)."""
    from sync_pipeline.connectors.registry import connector_for  # the registry imports this module's users

    return connector_for(target_type).side_sourced


def _check_two_way_options(name: str, conn: ConnectionSettings, src: Any, tgt: Any) -> None:
    """`direction`, `winner` and a custom `mapping` name only this connection's systems, and fields they have."""
    from sync_pipeline.connectors.registry import connector_for  # the registry imports this module's users

    at = ("connections", name)
    own = {conn.source: "a", src.type: "a", conn.target: "b", tgt.type: "b"}
    if conn.winner is not None and conn.winner not in own:
        raise _At(f"not a system of this connection; one of: {conn.source}, {conn.target}", *at, "winner")
    if conn.direction is not None and conn.direction not in ("a_to_b", "b_to_a", "both"):
        frm, _, to = conn.direction.partition("_to_")
        if frm not in own or to not in own or own[frm] == own[to]:
            raise _At(f"one of {conn.source}_to_{conn.target}, {conn.target}_to_{conn.source} or both", *at,
                      "direction")
    if conn.mapping == "standard":
        return
    for entity, pairs in conn.mapping.items():
        sides = {role: next((s for s in connector_for(cfg.type).sides if s.entity == entity), None)
                 for role, cfg in ((conn.source, src), (conn.target, tgt))}
        if any(side is None for side in sides.values()):
            known = [s.entity for s in connector_for(src.type).sides
                     if any(t.entity == s.entity for t in connector_for(tgt.type).sides)]
            raise _At(f"not an entity both systems sync; one of: {', '.join(known) or '(none)'}", *at, "mapping",
                      entity)
        for i, pair in enumerate(pairs):
            if set(pair) != {conn.source, conn.target}:
                raise _At(f"a pair of fields: {{{conn.source}: <field>, {conn.target}: <field>}}", *at, "mapping",
                          entity, i)
            for role, side in sides.items():
                field = pair[role]
                if not side.has_field(field):
                    raise _At(f"{role} has no {entity} field {field!r}; its fields: {', '.join(sorted(side.fields))}"
                              + (f" (and {side.field_pattern_help})" if side.field_pattern_help else ""),
                              *at, "mapping", entity, i, role)


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_NAME)


def _interpolate(node: Any, where: str, env: Mapping[str, str], strict: bool, file: Path) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), env, strict, file) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{where}[{i}]", env, strict, file) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def repl(m: re.Match) -> str:
        var, default = m.group(1), m.group(2)
        if env.get(var):
            return env[var]
        if default is not None:
            return default
        if strict:
            raise ConfigError(f"{file}: {where}: environment variable {var} is not set")
        return m.group(0)  # definitions can load without secrets; runs resolve them strictly

    return _ENV_REF.sub(repl, node)


def _secret_paths(tp: Any, node: Any, path: tuple = ()) -> Iterator[tuple]:
    """Key paths of `node` (the file as written) that hold a `SecretStr` field but no `${ENV_VAR}`
    reference; the models say which fields are secret."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is SecretStr:
        if not (isinstance(node, str) and _ENV_REF.fullmatch(node)):
            yield path
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        if isinstance(node, dict):
            for name, field in tp.model_fields.items():
                if name in node:
                    yield from _secret_paths(field.annotation, node[name], (*path, name))
    elif origin is Annotated:
        yield from _secret_paths(args[0], node, path)
    elif origin in (Union, types.UnionType):
        if not (node is None and type(None) in args):
            for arg in args:  # every member: a secret of any system type stays out of the file
                yield from _secret_paths(arg, node, path)
    elif origin is dict and isinstance(node, dict):
        for key, value in node.items():
            yield from _secret_paths(args[1], value, (*path, key))
    elif origin in (tuple, list) and isinstance(node, list):
        for i, value in enumerate(node):
            yield from _secret_paths(args[0], value, (*path, i))


def _error_message(e: Mapping[str, Any]) -> str:
    if e["type"] == "union_tag_invalid":  # pydantic's message quotes the tag read from the file
        return f"unknown type; one of: {e['ctx']['expected_tags']}"
    msg = e["msg"].removeprefix("Value error, ")
    value = e.get("input")
    # a last guard: should a message quote the value after all, say only what kind of error it is
    if isinstance(value, str) and value and (repr(value) in msg or f"'{value}'" in msg):
        return f"invalid value ({e['type']})"
    return msg


def _format_errors(file: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = list(e["loc"])
        # a discriminated union inserts the tag into the location; drop it so the key path reads as in the file
        if len(loc) > 2 and loc[0] == "systems" and loc[2] in _SYSTEM_TYPES:
            del loc[2]
        if e["type"] == "union_tag_invalid":
            loc.append(e["ctx"]["discriminator"].strip("'"))
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, _At):
            loc += error.path
        where = _key_path(loc)
        msg = _error_message(e)
        lines.append(f"{file}: {where}: {msg}" if where else f"{file}: {msg}")
    return "\n".join(lines)


def _yaml_error(file: Path, text: str, exc: yaml.YAMLError) -> str:
    """The parser's complaint without the file's content: quoted fragments (tags, anchors, characters)
    are dropped; token names such as '<block end>' and single punctuation marks stay."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f"{file}: not valid YAML at line {line}: a character YAML does not accept (a control character?)"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "unreadable"
    problem = re.sub(r"'(<[a-z ]+>|[^\w\s'])'|'[^']*'|\"[^\"]*\"",
                     lambda m: m.group(0) if m.group(1) else "…", problem)
    return f"{file}: not valid YAML{where}: {problem}"


def load_settings(path: Path | str | None = None, *, env: Mapping[str, str] | None = None, strict: bool = True) -> Settings:
    """Read and validate the configuration. `strict=False` leaves unset `${VAR}` references in place
    (for loading Dagster definitions on a machine without the secrets)."""
    file = Path(path) if path is not None else default_config_path()
    env = os.environ if env is None else env
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found (set {CONFIG_ENV_VAR} or create {DEFAULT_CONFIG_NAME})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    try:
        raw = yaml.load(text, Loader=_Loader) or {}
    except _DuplicateKey as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(file, text, exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: (top level): expected a mapping with `systems` and `connections`")
    # read as written, before interpolation: `${VAR:-default}` is a reference, a bare token is not
    literal = list(dict.fromkeys(_secret_paths(Settings, raw)))
    if literal:
        raise ConfigError("\n".join(f"{file}: {_key_path(p)}: write secrets as ${{ENV_VAR}} references, not in the file"
                                    for p in literal))
    raw = _interpolate(raw, "", env, strict, file)
    for section in ("systems", "connections"):
        items = raw.get(section)
        if isinstance(items, dict):
            raw[section] = {k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in items.items()}
    raw["path"] = file
    try:
        return Settings.model_validate(raw, context={"strict": strict})
    except ValidationError as exc:
        raise ConfigError(_format_errors(file, exc)) from None

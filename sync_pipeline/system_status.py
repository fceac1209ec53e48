"""Connection status of each configured system: one cheap authenticated call, green or red, and when red the
reason in words that name the setting to fix, never a secret (`sync-pipeline status`, the `<system>/api` checks).

The contract every API client keeps: `check_connection() -> str` makes one cheap authenticated call that writes
nothing and returns a short description for people ("account demo: reachable, token accepted"); on failure it
raises the client's typed errors (`connectors/_http.py`: AuthError for refused credentials, ApiConnectionError or
ApiTimeoutError when the server cannot be reached, ...). Their messages are redacted by the client.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import yaml
from pydantic import SecretStr

from sync_pipeline.config import ConfigError, RetrySettings, Settings
from sync_pipeline.connectors._http import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    AuthError,
    BadResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from sync_pipeline.connectors.registry import UnknownSystemType, build_client, connector_for

# A status light answers within seconds: one retry at most, a short budget (never slower than configured).
PROBE_RETRY = RetrySettings(max_attempts=2, base_delay=0.5, max_delay=1.0, total_budget=10.0)
PROBE_TIMEOUT = 10.0  # seconds per request at most
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")  # as config.py reads them

ClientFactory = Callable[[Any], Any]  # system settings -> API client with check_connection() and close()


@dataclass(frozen=True)
class SystemStatus:
    system: str
    type: str
    ok: bool
    detail: str                 # what was found, or why it failed and what to do
    checked_at: datetime        # UTC, when the check started
    seconds: float
    error: str | None = None    # the client's own (redacted) message, when it failed

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "type": self.type, "ok": self.ok, "detail": self.detail,
                "checked_at": self.checked_at.isoformat(timespec="seconds"), "seconds": self.seconds,
                "error": self.error}


def check_system(settings: Settings, name: str, client_factory: ClientFactory = build_client) -> SystemStatus:
    """Check one system. `settings` may be read with `strict=False`: a system whose `${ENV}` reference is not set
    is red with the variable's name, and the other systems are still checked."""
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    cfg = settings.systems.get(name)
    if cfg is None:
        return SystemStatus(name, "?", False, f"no system named {name} in {settings.path.name}", started_at, 0.0)
    ok, detail, error = _check(settings, name, cfg, client_factory)
    secrets = _secret_values(cfg)
    return SystemStatus(name, cfg.type, ok, _scrub(detail, secrets), started_at,
                        round(time.monotonic() - started, 3), _scrub(error, secrets) if error else None)


def check_systems(settings: Settings, names: Iterable[str] | None = None,
                  client_factory: ClientFactory = build_client) -> list[SystemStatus]:
    """Check the named systems (default: every configured one) at once, in configuration order."""
    names = list(settings.systems if names is None else names)
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(len(names), 8), thread_name_prefix="system-status") as pool:
        return list(pool.map(lambda n: check_system(settings, n, client_factory), names))


def config_failure(names: Iterable[str], error: ConfigError) -> list[SystemStatus]:
    """Every system red with the configuration error (its messages never quote a value)."""
    now = datetime.now(timezone.utc)
    return [SystemStatus(n, "?", False, f"the configuration cannot be read: {error}", now, 0.0) for n in names]


# --- the check --------------------------------------------------------------------------------------------------


def _check(settings: Settings, name: str, cfg: Any, client_factory: ClientFactory) -> tuple[bool, str, str | None]:
    unset = _unset_references(settings, name, cfg)
    if unset:
        return False, "; ".join(unset), None
    try:
        label = connector_for(cfg.type).label or cfg.type
    except UnknownSystemType:
        return False, f"this version has no connector for system type {cfg.type}: nothing to check", None
    api = None
    try:
        api = client_factory(_quick(cfg))
        check = getattr(api, "check_connection", None)
        if check is None:
            return False, f"the {label} client has no connection check yet", None
        return True, str(check()), None
    except ApiError as exc:
        message = api.redact(str(exc)) if api is not None else str(exc)
        return False, _reason(exc, settings, name, cfg, label), message
    except (ConfigError, ValueError) as exc:  # a client refusing its settings; these never quote a value
        return False, f"configuration: {exc}", None
    except Exception as exc:  # noqa: BLE001 -- a status light reports whatever went wrong, as red
        text = api.redact(str(exc)) if api is not None else str(exc)
        return False, f"unexpected {type(exc).__name__} while checking the {label} API", text[:300]
    finally:
        if api is not None:
            api.close()


def _quick(cfg: Any) -> Any:
    """The system's settings with a status light's retries and timeout (each no longer than configured)."""
    retry = cfg.retry
    quick = RetrySettings(max_attempts=min(retry.max_attempts, PROBE_RETRY.max_attempts),
                          base_delay=min(retry.base_delay, PROBE_RETRY.base_delay),
                          max_delay=min(retry.max_delay, PROBE_RETRY.max_delay),
                          total_budget=min(retry.total_budget, PROBE_RETRY.total_budget))
    return cfg.model_copy(update={"retry": quick, "timeout_seconds": min(cfg.timeout_seconds, PROBE_TIMEOUT)})


def _reason(exc: ApiError, settings: Settings, name: str, cfg: Any, label: str) -> str:
    status = getattr(exc, "status_code", None)
    at = f"HTTP {status} on {exc.endpoint}" if status and status != 200 else exc.endpoint
    if isinstance(exc, AuthError):
        return f"the {label} API rejected the credentials ({at}): check {_credentials(settings, name, cfg)}"
    if isinstance(exc, (ApiConnectionError, ApiTimeoutError)):
        what = "timed out" if isinstance(exc, ApiTimeoutError) else "connection failed"
        return (f"could not reach {exc.host or _host(cfg)} (the {label} API, {what}): check {_address(cfg)} and "
                "that the service is up")
    if isinstance(exc, RateLimitError):
        after = f"; it asks to wait {exc.retry_after:.0f} s" if exc.retry_after is not None else ""
        return f"the {label} API is rate limiting ({at}{after}): the credentials could not be checked now, try later"
    if isinstance(exc, ServerError):
        return f"the {label} API has a problem ({at}, a server error): try again later"
    if isinstance(exc, NotFoundError) and status == 404:
        return f"the {label} API answered not found ({at}): check {_address(cfg)}"
    if isinstance(exc, BadResponseError):
        return f"the {label} API answered {exc.endpoint} with something that is not its JSON: check {_address(cfg)}"
    if isinstance(exc, ApiStatusError) and status != 200:
        return f"the {label} API refused the check ({at})"
    return exc.message.removeprefix(f"{exc.system}: ")  # the client said what is wrong (an answer it did not expect)


# --- settings: which are secrets, where they come from ----------------------------------------------------------


def _secret_fields(cfg: Any) -> list[str]:
    return [f for f in type(cfg).model_fields if isinstance(getattr(cfg, f, None), SecretStr)]


def _secret_values(cfg: Any) -> list[str]:
    return [v for v in (getattr(cfg, f).get_secret_value() for f in _secret_fields(cfg)) if v]


def _references(settings: Settings, name: str) -> dict[str, list[tuple[str, str]]]:
    """Per setting of the system, its `${VAR}` references as written in the file: (variable, reference text)."""
    try:
        doc = yaml.safe_load(settings.path.read_text(encoding="utf-8"))
        entry = doc["systems"][name]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    if not isinstance(entry, dict):
        return {}
    return {str(k): [(m.group(1), m.group(0)) for m in _ENV_REF.finditer(v)]
            for k, v in entry.items() if isinstance(v, str)}


def _unset_references(settings: Settings, name: str, cfg: Any) -> list[str]:
    """What `load_settings(strict=False)` left unresolved in this system: its reference text is still there."""
    secret = set(_secret_fields(cfg))
    out = []
    for field, refs in _references(settings, name).items():
        value = getattr(cfg, field, None)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        for var, ref in refs:
            if isinstance(text, str) and ref in text:
                what = "secret" if field in secret else "environment variable"
                out.append(f"{what} {var} is not set (systems.{name}.{field}): export it where the pipeline runs")
    return out


def _credentials(settings: Settings, name: str, cfg: Any) -> str:
    refs = _references(settings, name)
    named = [f"{f} ({refs[f][0][0]})" if refs.get(f) else f for f in _secret_fields(cfg)]
    return ", ".join(named) or "the credentials"


def _host(cfg: Any) -> str:
    try:
        url = urllib.parse.urlsplit(cfg.resolved_base_url())
        return url.netloc or "its host"
    except Exception:  # noqa: BLE001 -- only for the message
        return "its host"


def _address(cfg: Any) -> str:
    return "base_url" if cfg.base_url else ("account" if getattr(cfg, "account", None) else "the address settings")


def _scrub(text: str, secrets: list[str]) -> str:
    """A last guard: no secret value (raw, URL- or JSON-encoded) in what is shown, whatever produced the text."""
    for secret in secrets:
        for form in sorted({secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                            json.dumps(secret)[1:-1], json.dumps(secret)[1:-1].replace("/", "\\/")},
                           key=len, reverse=True):
            text = text.replace(form, "***")
    return text

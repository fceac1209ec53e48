"""CustomerSuccessBox client: push-only upserts of accounts and invoices, keyed by their ids (VENDOR_APIS §6)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from sync_pipeline.connectors._http import ApiStatusError, AuthError, HttpApi, ValidationError, parse_field_errors

SDK_TIMEOUT = 5.0  # seconds, as in the official SDKs
ACCOUNT_PATH = "/api/v1_1/account"


class CustomerSuccessBoxClient(HttpApi):
    """POSTs flat JSON bodies with a Bearer key; the same id posted again updates the record, so pushes are retried."""

    def __init__(self, *, system: str, base_url: str, api_key: str, timeout: float | httpx.Timeout = SDK_TIMEOUT,
                 **http_kwargs: Any) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError(f"{system}: api_key is empty")
        headers = {**dict(http_kwargs.pop("headers", None) or {}), "Authorization": f"Bearer {api_key}"}
        secrets = (*http_kwargs.pop("secrets", ()), api_key)
        super().__init__(system=system, base_url=base_url, secrets=secrets, timeout=timeout, headers=headers,
                         **http_kwargs)

    def check_connection(self) -> str:
        """The connection status. CSB is push-only: every documented endpoint is a POST that writes (VENDOR_APIS
        §6.1), so no call is both authenticated and harmless by design. The least harmful one [I]: an account push
        without `account_id`, its required upsert key. The key is checked first (401/403 when wrong), then the body
        is refused (422), so nothing can be written. Returns e.g. "reachable, API key accepted (...)"; raises the
        typed ApiError (AuthError for a rejected key, ApiConnectionError when the host cannot be reached, ...)."""
        try:
            # an upsert that cannot identify a record: repeating it after a 5xx cannot create one
            self.request_json("POST", ACCOUNT_PATH, json={}, idempotent=True)
        except ValidationError:
            return "reachable, API key accepted (an empty push was refused, as it must be: nothing written)"
        return "reachable, API key accepted (an empty account push was answered with success)"

    def push_account(self, account: Mapping[str, Any]) -> Any:
        return self._push(ACCOUNT_PATH, account, ("account_id",))

    def push_invoice(self, invoice: Mapping[str, Any]) -> Any:
        return self._push("/api/v1_1/invoice", invoice, ("invoice_id", "account_id"))

    def _push(self, path: str, record: Mapping[str, Any], required: tuple[str, ...]) -> Any:
        if not isinstance(record, Mapping):
            raise TypeError(f"{self.system}: expected a mapping to push to {path}, got {type(record).__name__}")
        missing = [key for key in required if _blank(record.get(key))]
        if missing:
            raise ValueError(f"{self.system}: cannot push to {path} without {', '.join(missing)}")
        # Upserts by id: repeating one after a timeout or 5xx cannot create a duplicate.
        return self.request_json("POST", path, json=dict(record), idempotent=True)

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        status = response.status_code
        text = self.redact(response.text)
        excerpt = " ".join(text.split())[:300]
        common = {"system": self.system, "endpoint": endpoint, "status_code": status, "body_excerpt": excerpt}
        if status in (401, 403):
            return AuthError(f"{self.system}: {endpoint} failed with HTTP {status} (authentication rejected; check "
                             f"the API key)", **common)
        if status in (400, 422):
            # decoding may undo JSON escapes that hid a secret from the first pass: redact what is decoded too
            fields = {self.redact(k): [self.redact(m) for m in v] for k, v in parse_field_errors(text).items()}
            message = self.redact(_body_message(text)) or "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items()) or excerpt
            return ValidationError(f"{self.system}: {endpoint} was rejected with HTTP {status}: {message[:200]}",
                                   field_errors=fields, **common)
        return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _body_message(text: str) -> str:
    """The human message of an error body ({"message": "…"} or {"error": "…"}), if it has one."""
    try:
        body = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error", "errors"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return "; ".join(value)
    return ""

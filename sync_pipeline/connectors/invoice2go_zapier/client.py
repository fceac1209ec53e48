"""Invoice2go has no public data API (VENDOR_APIS §7): its official Zapier integration only creates clients and
products. We post one JSON document per record to a Zapier catch hook ("Webhooks by Zapier"); the user's Zap maps
its fields to "Invoice2go: create client / create product". The document is ours, not Invoice2go's API (README).

Zapier answers a catch hook at once, before the Zap runs [I]: HTTP 200 with `{"status": "success", "id", ...}` is
"delivered"; 429 and 5xx are retried (the hook did not take it); 410 means the hook is gone (the Zap was turned
off or deleted), which stops the connection. The hook URL is the only credential: it is a secret, never shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from sync_pipeline.connectors._http import ApiStatusError, AuthError, BadResponseError, HttpApi

ZAPIER_HOOKS = "https://hooks.zapier.com"
ENTITIES = ("clients", "products")


class HookGone(AuthError):
    """HTTP 410: Zapier deleted the hook (the Zap is off or gone). Stops the connection: nothing more can be sent."""


def hook_url(value: str, base_url: str | None) -> str:
    """The hook as Zapier shows it (https://hooks.zapier.com/hooks/catch/123/abc/), or its path after `base_url`."""
    value = value.strip()
    if value.startswith(("http://", "https://")):
        return value
    return (base_url or ZAPIER_HOOKS).rstrip("/") + "/" + value.lstrip("/")


class ZapierHook(HttpApi):
    """One catch hook. Its URL is a secret: errors name the hook by its entity, never by its address."""

    def __init__(self, *, system: str, entity: str, url: str, setting: str, **http_kwargs: Any) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{system}: the {entity} hook is not an http(s) URL (check {setting})")
        secrets = (*http_kwargs.pop("secrets", ()), url, parts.path.strip("/"))
        super().__init__(system=system, base_url=url, secrets=secrets, **http_kwargs)
        self.entity, self.setting = entity, setting

    def endpoint_label(self, method: str, path: str) -> str:  # the URL would show the secret
        return f"{method.upper()} the {self.entity} hook"

    def deliver(self, document: Mapping[str, Any]) -> str:
        """POST the document; the delivery's id when Zapier took it. Retried on 429 and 5xx (Zapier did not take
        the request; a repeat after an answer lost in transit could run the Zap twice, see README)."""
        answer = self.request_json("POST", "", json=dict(document), idempotent=True)
        if not isinstance(answer, dict) or answer.get("status") != "success":
            text = self.redact(json.dumps(answer, default=str))[:200]
            raise BadResponseError(f"{self.system}: the {self.entity} hook did not say success: {text}",
                                   system=self.system, endpoint=self.endpoint_label("POST", ""), status_code=200,
                                   body_excerpt=text)
        return str(answer.get("id") or answer.get("request_id") or answer.get("attempt") or "delivered")

    def error_for_response(self, response: httpx.Response, endpoint: str) -> ApiStatusError | None:
        if response.status_code == 410:
            return HookGone(f"{self.system}: the Zapier hook for {self.entity} is gone (HTTP 410): its Zap was turned "
                            f"off or deleted. Turn the Zap on, or make a new catch hook and set {self.setting}; "
                            "nothing more is sent until then", system=self.system, endpoint=endpoint,
                            status_code=410)
        return None


class Invoice2goZapier:
    """The hooks of one Invoice2go account: one per entity configured."""

    def __init__(self, *, system: str, hooks: Mapping[str, tuple[str, str]], **http_kwargs: Any) -> None:
        """`hooks`: entity → (hook URL, the setting that holds it, e.g. clients_hook_url (I2G_CLIENTS_HOOK_URL))."""
        self.system = system
        self.hooks = {e: ZapierHook(system=system, entity=e, url=u, setting=s, **http_kwargs)
                      for e, (u, s) in hooks.items()}

    def hook(self, entity: str) -> ZapierHook:
        if entity not in self.hooks:
            raise ValueError(f"{self.system}: no hook for {entity} is configured ({entity}_hook_url)")
        return self.hooks[entity]

    @property
    def pages_requested(self) -> int:
        return 0

    def check_connection(self) -> str:
        """No call is made: every request to a catch hook runs the Zap (GET included), which would create a record
        in Invoice2go [I]. Green means the hooks are configured; a gone hook shows on the first delivery."""
        if not self.hooks:
            raise ValueError(f"{self.system}: no hook URL is configured (clients_hook_url, products_hook_url)")
        return f"hooks for {', '.join(self.hooks)} configured (not called: a call would run the Zap)"

    def close(self) -> None:
        for h in self.hooks.values():
            h.close()

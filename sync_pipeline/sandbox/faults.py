"""Fault plans: per-request probabilities of the transport failures real vendor APIs show, seeded.

A plan is applied by each simulator to its own requests (see `Simulator.handle`). Error messages
name fields, never values, because specs arrive from sync.yaml, the command line and HTTP.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, PlainSerializer, PlainValidator

# Names a plan can be given to, besides "*" (every simulator without a plan of its own).
SIMULATOR_NAMES = ("fakturownia", "sugester", "zoho_accounts", "zoho", "csb", "billy", "simply", "zapier")
ALL = "*"
# Refused before processing: at most one of these per request, so their shares add up to at most 1.
REFUSING_KINDS = ("server_error", "rate_limit", "reset", "html")
# Applied to the answer of a processed request, in this order of precedence, where they fit it.
ANSWER_KINDS = ("ghost_write", "empty_page", "truncated", "slow")
FAULT_KINDS = REFUSING_KINDS + ANSWER_KINDS
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class FaultPlan:
    """Shares are probabilities per request, 0..1 (default 0: no faults).

    - server_error: 500/502/503 with the vendor's JSON error body, or nginx's HTML 502; not processed.
    - rate_limit: 429 with `Retry-After: retry_after` and the vendor's error body; not processed.
    - reset: the TCP connection is reset, no answer; not processed.
    - html: an HTML page instead of JSON (nginx 502, or a 200 "Przerwa techniczna"); not processed.
    - ghost_write: a successful write is stored, then its answer is lost (a reset or a 500, half each).
    - empty_page: a non-empty list page >= 2 is answered empty (`[]`; Zoho keeps its `page_context`).
    - truncated: a 2xx JSON answer is cut in half; the request was processed.
    - slow: the answer leaves `slow_seconds` late (longer than the clients' 30 s timeout by default).

    The answer kinds apply to the requests no refusing kind hit; each has its own draw, and the first
    drawn that fits the answer wins. `seed` makes a simulator's faults repeat for the same requests.
    """

    server_error: float = 0.0
    rate_limit: float = 0.0
    reset: float = 0.0
    slow: float = 0.0
    truncated: float = 0.0
    html: float = 0.0
    empty_page: float = 0.0
    ghost_write: float = 0.0
    retry_after: int = 1
    slow_seconds: float = 35.0
    seed: int = 0

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            value = getattr(self, kind)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{kind}: a share must be a number from 0 to 1")
            object.__setattr__(self, kind, float(value))
        if sum(getattr(self, k) for k in REFUSING_KINDS) > 1 + 1e-9:
            raise ValueError(f"the shares of {', '.join(REFUSING_KINDS)} must add up to at most 1 "
                             "(one request is refused in one way)")
        if isinstance(self.retry_after, bool) or not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise ValueError("retry_after: must be a whole number of seconds, 0 or more")
        if isinstance(self.slow_seconds, bool) or not isinstance(self.slow_seconds, (int, float)) \
                or not 0 <= self.slow_seconds <= 3600:
            raise ValueError("slow_seconds: must be a number of seconds from 0 to 3600")
        object.__setattr__(self, "slow_seconds", float(self.slow_seconds))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed: must be a whole number")

    @property
    def active(self) -> bool:
        """Whether any share is above 0."""
        return any(getattr(self, k) for k in FAULT_KINDS)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaultPlan:
        """A plan from `{"server_error": 0.1, "seed": 3}`; numbers may be given as text."""
        if not isinstance(values, Mapping):
            raise ValueError("expected a mapping of fault kinds to shares")
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault kind {str(name)!r}; known: {', '.join(known)}")
            kwargs[name] = _number(name, value, whole=name in ("retry_after", "seed"))
        return cls(**kwargs)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """A plan from `"server_error=0.1,rate_limit=0.1,reset=0.05,seed=3"` (empty: no faults)."""
        return cls.from_mapping(_pairs(spec))

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (what `from_mapping` reads back)."""
        return dataclasses.asdict(self)

    # -- drawing ----------------------------------------------------------------------------------
    def draw(self, rng: random.Random, method: str, page: int) -> Decision:
        """Which faults one request is subject to. Always draws the same count of numbers per request,
        so a plan's sequence does not depend on which faults earlier requests happened to get."""
        u, variant = rng.random(), rng.random()
        draws = [rng.random() for _ in ANSWER_KINDS]
        acc = 0.0
        for kind in REFUSING_KINDS:
            acc += getattr(self, kind)
            if u < acc:
                return Decision(kind, (), variant)
        fits = {"ghost_write": method in WRITE_METHODS, "empty_page": method == "GET" and page >= 2,
                "truncated": True, "slow": True}
        drawn = tuple(k for k, d in zip(ANSWER_KINDS, draws, strict=True) if fits[k] and d < getattr(self, k))
        return Decision(None, drawn, variant)


@dataclass(frozen=True)
class Decision:
    """The faults drawn for one request: a refusal, or answer faults to try once it is processed;
    `variant` (0..1) picks among a kind's forms (which 5xx, which HTML page, reset or 500)."""

    refuse: str | None
    answer: tuple[str, ...]
    variant: float


def _pairs(spec: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError("expected name=value pairs separated by commas, e.g. server_error=0.1,seed=3")
        if name in values:
            raise ValueError(f"{name} is given twice")
        values[name] = value.strip()
    return values


def _number(name: str, value: Any, *, whole: bool) -> int | float:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = value.strip()
            return int(value) if whole else float(value)
        if whole:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: must be {'a whole number' if whole else 'a number'}") from None


def plans_from_mapping(faults: Mapping[str, Any]) -> dict[str, FaultPlan]:
    """`{"*": {...}, "sugester": FaultPlan(...)}` → plans, checking simulator names; `{}` means none."""
    if not isinstance(faults, Mapping):
        raise ValueError('expected a mapping of simulator name (or "*") to fault shares')
    out: dict[str, FaultPlan] = {}
    for name, value in faults.items():
        _check_target(name)
        try:
            out[name] = value if isinstance(value, FaultPlan) else FaultPlan.from_mapping(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return out


def parse_fault_specs(specs: Iterable[str]) -> dict[str, FaultPlan]:
    """Command-line specs: `[name:]kind=share,...`, repeatable; without a name the plan is for "*".
    Specs for the same name are merged (a later value for the same key wins)."""
    merged: dict[str, dict[str, str]] = {}
    for spec in specs:
        target, spec_values = split_fault_spec(spec)
        merged.setdefault(target, {}).update(spec_values)
    return plans_from_mapping(merged)


def split_fault_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`"sugester:ghost_write=0.02"` → ("sugester", {"ghost_write": "0.02"}), validated."""
    head, sep, rest = spec.partition(":")
    target, body = (head.strip(), rest) if sep and "=" not in head else (ALL, spec)
    _check_target(target)
    try:
        values = _pairs(body)
        FaultPlan.from_mapping(values)  # validate now; the raw values are returned so specs can merge
    except ValueError as exc:
        raise ValueError(f"{target}: {exc}") from None
    return target, values


def _check_target(name: Any) -> str:
    if name != ALL and name not in SIMULATOR_NAMES:
        raise ValueError(f'unknown simulator; one of: {", ".join(SIMULATOR_NAMES)} or "*" for all')
    return name


def _plan_setting(value: Any) -> FaultPlan:
    return value if isinstance(value, FaultPlan) else FaultPlan.from_mapping(value)


# Types for sync.yaml (`sandbox.faults`): errors come out as `sandbox.faults.sugester: unknown fault kind ...`.
FaultTarget = Annotated[str, AfterValidator(_check_target)]
FaultPlanSetting = Annotated[FaultPlan, PlainValidator(_plan_setting), PlainSerializer(FaultPlan.to_dict)]

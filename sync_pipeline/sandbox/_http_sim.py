"""Generic in-memory vendor simulator over real HTTP: routing, auth hook, request log, rate limit, faults."""

from __future__ import annotations

import json
import math
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .faults import WRITE_METHODS, Decision, FaultPlan

# One-shot faults for tests (`fail_next`). "ghost_*" process the request, then lose its answer.
ONE_SHOT_KINDS = frozenset({"html_502", "html_200", "truncated", "500", "429", "422", "reset", "ghost_500",
                            "ghost_reset", "empty_page"})
_LOG_LIMIT = 100_000  # bounded so a long-running sandbox does not grow without limit


@dataclass
class Request:
    """One HTTP request as a simulator sees it (vendor prefix already stripped)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    json: Any | None
    body: bytes
    params: tuple[str, ...] = ()  # regex groups of the matched route
    malformed: bool = False  # body present but not valid JSON
    at: float = field(default_factory=time.time)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First query value of `name`, else `default`."""
        values = self.query.get(name)
        return values[0] if values else default

    def param(self, name: str, default: Any = None) -> Any:
        """Value from the query string, else from the top level of a JSON object body."""
        if name in self.query:
            return self.query[name][0]
        if isinstance(self.json, dict) and name in self.json:
            return self.json[name]
        return default

    def root(self, name: str) -> dict:
        """The `{"<name>": {...}}` object of a write body; empty when absent or not an object."""
        value = self.json.get(name) if isinstance(self.json, dict) else None
        return value if isinstance(value, dict) else {}


@dataclass
class Response:
    """Status, headers and raw body ready to write; `reset` drops the connection instead (no answer),
    `delay` holds the answer back that many seconds (outside the simulator's lock)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0


def connection_reset() -> Response:
    """What a handler returns so the client sees its connection reset by the peer and no answer."""
    return Response(0, reset=True)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response (UTF-8, unescaped non-ASCII like Rails)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def html_response(html: str, status: int = 200) -> Response:
    """An HTML response."""
    return Response(status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})


class HttpError(Exception):
    """Raised by route handlers to answer with an error status; `message` may be a str or a field dict."""

    def __init__(self, status: int, message: Any):
        super().__init__(status, message)
        self.status = status
        self.message = message


def page_args(req: Request, *, default: int = 25, maximum: int = 100) -> tuple[int, int]:
    """(page, per_page) from the query, Rails style: bad values fall back, per_page clamps to `maximum`."""

    def _int(name: str, fallback: int) -> int:
        try:
            value = int(req.arg(name) or "")
        except ValueError:
            return fallback
        return value if value > 0 else fallback

    return _int("page", 1), min(_int("per_page", default), maximum)


def paginate(items: list, page: int, per_page: int) -> list:
    """One page of `items` (an empty list past the end)."""
    start = (page - 1) * per_page
    return items[start : start + per_page]


class _TokenBucket:
    """Token bucket allowing bursts of max(1, rps) and refilling at rps per second."""

    def __init__(self, rps: float, clock: Callable[[], float]):
        self.rps, self.clock = rps, clock
        self.capacity = max(1.0, rps)
        self.tokens, self.stamp = self.capacity, clock()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rps)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rps


Handler = Callable[[Request], Response | Any]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    auth: bool


@dataclass
class _Fault:
    pattern: re.Pattern
    kind: str
    remaining: int
    method: str | None
    page: int | None = None  # only requests for this list page (the `page` query parameter, 1 when absent)


class Simulator:
    """Base of every vendor simulator; subclasses register routes and override `authenticate`."""

    name = "sim"
    fault_eligible = True  # False for the sandbox's own meta endpoints: a fault plan never applies there
    echo_requests = False  # error answers quote the request back (see handle)
    rate_limit_message: Any = "Too many requests"

    def __init__(self, *, max_rps: float | None = None, clock_start: datetime | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.lock = threading.RLock()
        self.latency = 0.0  # seconds each answer waits before it leaves, as a real network's round trip would
        self.max_rps = max_rps
        self._bucket = _TokenBucket(max_rps, monotonic) if max_rps else None
        self._routes: list[_Route] = []
        self._faults: list[_Fault] = []
        self._log: deque[Request] = deque(maxlen=_LOG_LIMIT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self.errors: list[str] = []  # tracebacks of handler crashes, for tests to assert on
        self._fault_plan: FaultPlan | None = None
        self._fault_rng = random.Random(0)
        self.faults_injected: Counter[str] = Counter()  # plan faults by kind (not the one-shot fail_next ones)
        # Simulated wall clock: deterministic, moves 1 s per change (see tick()).
        self.clock = (clock_start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

    # -- registration and hooks -------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        """Register `handler` for `method` and a path regex (full match; groups become `req.params`)."""
        self._routes.append(_Route(method.upper(), re.compile(pattern), handler, auth))

    def authenticate(self, req: Request) -> bool:
        """Auth hook: True when the request carries valid credentials (default: everything passes)."""
        return True

    def error_body(self, status: int, message: Any) -> Any:
        """Vendor error envelope; Rails-style by default."""
        return {"code": "error", "message": message}

    def tick(self) -> datetime:
        """Advance the simulated clock by one second and return it (strictly increasing timestamps)."""
        with self.lock:
            self.clock = self.clock.replace(microsecond=0) + timedelta(seconds=1)
            return self.clock

    # -- test controls ----------------------------------------------------------
    def fail_next(self, path_regex: str, kind: str, times: int = 1, *, method: str | None = None,
                  page: int | None = None) -> None:
        """Make the next `times` requests whose path matches (re.search) fail in the given way; with
        `page`, only requests for that list page."""
        kind = {"html": "html_502"}.get(kind, kind)
        if kind not in ONE_SHOT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(ONE_SHOT_KINDS)}")
        with self.lock:
            self._faults.append(_Fault(re.compile(path_regex), kind, times, method and method.upper(), page))

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Apply `plan` to every later request (None: no faults); restarts the plan's seeded sequence."""
        if plan is not None and not isinstance(plan, FaultPlan):
            raise TypeError("expected a FaultPlan or None")
        if plan is not None and not self.fault_eligible:
            raise ValueError(f"{self.name} takes no fault plan")
        with self.lock:
            self._fault_plan = plan if plan is not None and plan.active else None
            # One sequence per simulator: the same seed does not make every simulator fail in step.
            self._fault_rng = random.Random(f"{plan.seed if plan else 0}:{self.name}")

    @property
    def fault_plan(self) -> FaultPlan | None:
        """The plan in force (None when there is none or every share is 0)."""
        return self._fault_plan

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Logged requests, optionally filtered by method and path regex (full match)."""
        with self.lock:
            return [r for r in self._log if _matches(r.method, r.path, method, path)]

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests were received (unbounded, unlike the log), filtered like `requests`."""
        with self.lock:
            return sum(n for (m, p), n in self._counts.items() if _matches(m, p, method, path))

    def clear_requests(self) -> None:
        """Forget the request log and counts."""
        with self.lock:
            self._log.clear()
            self._counts.clear()

    def record_counts(self) -> dict[str, int]:
        """Number of stored records per entity; subclasses override."""
        return {}

    def stats(self) -> dict[str, Any]:
        """Request counts (total and per 'METHOD path'), record counts and plan faults injected by kind."""
        with self.lock:
            by_path = {f"{m} {p}": n for (m, p), n in sorted(self._counts.items())}
            return {"requests": sum(self._counts.values()), "requests_by_path": by_path,
                    "records": self.record_counts(), "faults_injected": dict(sorted(self.faults_injected.items()))}

    # -- persistence ------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state; subclasses extend with their records."""
        return {"clock": self.clock.isoformat()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what `snapshot` produced."""
        self.clock = datetime.fromisoformat(state["clock"]).astimezone(UTC)

    # -- dispatch ---------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Log, rate-limit, inject faults, authenticate and dispatch one request.

        One-shot `fail_next` faults take precedence; otherwise the fault plan (if any) decides, once
        per request, whether it is refused, or which fault its answer gets once processed. With
        `echo_requests`, error answers quote the whole request back (credentials included), JSON-escaped
        the way some servers do ("/" as "\\/"): the secret audit's worst case."""
        response = self._handle(req)
        return _with_request_echoed(response, req) if self.echo_requests else response

    def _handle(self, req: Request) -> Response:
        with self.lock:
            self._log.append(req)
            self._counts[(req.method, req.path)] += 1
            if self._bucket is not None:
                wait = self._bucket.take()
                if wait:
                    retry = str(max(1, math.ceil(wait)))
                    return self._error(429, "Rate limit exceeded, retry later", {"Retry-After": retry})
            fault = self._pop_fault(req)
            if fault in ("html_502", "html_200", "500", "429"):
                return _fault_response(fault, self)
            if fault == "reset":
                return connection_reset()
            if fault == "422":
                return self._error(422, {"base": ["- rejected by the sandbox (fail_next)"]})
            plan = self._fault_plan if fault is None and self.fault_eligible else None
            decision = plan.draw(self._fault_rng, req.method, _page_of(req)) if plan is not None else None
            if decision is not None and decision.refuse is not None:
                self.faults_injected[decision.refuse] += 1
                return self._refusal(decision, plan)
            response = self._dispatch(req)
            if fault == "truncated":
                # The server did the work but the connection "lost" the second half of the body.
                cut = response.body[: len(response.body) // 2]
                return Response(200, cut, {"Content-Type": "application/json; charset=utf-8"})
            if fault == "ghost_500":
                return self._error(500, "Internal Server Error")
            if fault == "ghost_reset":
                return connection_reset()
            if fault == "empty_page":
                return _emptied_page(response) or response
            if decision is not None and decision.answer:
                response = self._spoil_answer(decision, plan, req, response)
            return response

    def _refusal(self, decision: Decision, plan: FaultPlan) -> Response:
        """The answer to a request refused by the plan (it was not processed)."""
        kind, variant = decision.refuse, decision.variant
        if kind == "reset":
            return connection_reset()
        if kind == "rate_limit":
            return self._error(429, self.rate_limit_message, {"Retry-After": str(plan.retry_after)})
        if kind == "html":
            return _fault_response("html_502" if variant < 0.5 else "html_200", self)
        status = (500, 502, 503, 0)[min(3, int(variant * 4))]  # 0: nginx's HTML 502 in front of the app
        if status == 0:
            return _fault_response("html_502", self)
        return self._error(status, {500: "Internal Server Error", 502: "Bad Gateway",
                                    503: "Service Unavailable"}[status])

    def _spoil_answer(self, decision: Decision, plan: FaultPlan, req: Request, response: Response) -> Response:
        """Apply the first drawn answer fault that fits the processed request's answer."""
        ok = 200 <= response.status < 300 and not response.reset
        is_json = "json" in response.headers.get("Content-Type", "")
        for kind in decision.answer:
            spoiled = None
            if kind == "ghost_write" and ok and req.method in WRITE_METHODS:
                # Stored; the answer is lost on the way back.
                spoiled = connection_reset() if decision.variant < 0.5 else self._error(500, "Internal Server Error")
            elif kind == "empty_page" and ok and is_json:
                spoiled = _emptied_page(response)
            elif kind == "truncated" and ok and is_json and len(response.body) > 1:
                spoiled = Response(response.status, response.body[: len(response.body) // 2], dict(response.headers))
            elif kind == "slow":
                spoiled = Response(response.status, response.body, dict(response.headers), response.reset,
                                   plan.slow_seconds)
            if spoiled is not None:
                self.faults_injected[kind] += 1
                return spoiled
        return response

    def _dispatch(self, req: Request) -> Response:
        if req.malformed:
            return self._error(400, "Malformed JSON body")
        route = next((r for r in self._routes if r.method == req.method and r.pattern.fullmatch(req.path)), None)
        if route is None:
            return self._error(404, "Not found")
        if route.auth and not self.authenticate(req):
            return self._error(401, "You must be logged in to gain access to this site")
        req.params = route.pattern.fullmatch(req.path).groups()
        try:
            result = route.handler(req)
        except HttpError as exc:
            return self._error(exc.status, exc.message)
        except Exception:  # a simulator bug must not kill the server thread; surface it instead
            self.errors.append(traceback.format_exc())
            return self._error(500, "Internal Server Error")
        return result if isinstance(result, Response) else json_response(result)

    def _pop_fault(self, req: Request) -> str | None:
        for fault in self._faults:
            if (fault.method in (None, req.method) and fault.pattern.search(req.path)
                    and fault.page in (None, _page_of(req))):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    def _error(self, status: int, message: Any, headers: Mapping[str, str] | None = None) -> Response:
        return json_response(self.error_body(status, message), status, headers)


def _with_request_echoed(response: Response, req: Request) -> Response:
    """An error answer (a 4xx/5xx, or a 200 whose JSON object has an "error") with the request quoted in it."""
    if response.reset or "json" not in response.headers.get("Content-Type", ""):
        return response
    try:
        data = json.loads(response.body)
    except ValueError:
        return response
    if response.status < 400 and not (isinstance(data, dict) and "error" in data):
        return response
    body = req.json if req.json is not None else req.body.decode("utf-8", "replace")
    # Credentials first (the header, the query, the body), where even a short excerpt would show them.
    echo = {"authorization": req.headers.get("authorization"), "query": req.query, "body": body,
            "method": req.method, "path": req.path, "headers": req.headers}
    # First, so a client quoting the start of the body quotes it; and inside Rails field errors, so a client
    # summarising them quotes it too.
    data = {"request": echo, **data} if isinstance(data, dict) else {"request": echo, "error": data}
    if isinstance(data.get("message"), dict):
        data["message"] = {**data["message"], "request": [json.dumps(echo, ensure_ascii=False)]}
    text = json.dumps(data, ensure_ascii=False).replace("/", "\\/")
    return Response(response.status, text.encode(), dict(response.headers), response.reset, response.delay)


def _matches(m: str, p: str, method: str | None, path: str | None) -> bool:
    return (method is None or m == method.upper()) and (path is None or re.fullmatch(path, p) is not None)


def _page_of(req: Request) -> int:
    try:
        return int(req.arg("page") or 1)
    except ValueError:
        return 1


def _emptied_page(response: Response) -> Response | None:
    """A list answer with its rows removed (a bare array, or every list beside Zoho's page_context);
    None when it is not a non-empty list page."""
    try:
        data = json.loads(response.body)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = []
    elif isinstance(data, dict) and "page_context" in data and any(
            isinstance(v, list) and v for v in data.values()):
        data = {k: [] if isinstance(v, list) else v for k, v in data.items()}
    else:
        return None
    emptied = json_response(data, response.status)
    return Response(response.status, emptied.body, dict(response.headers))


def _fault_response(kind: str, sim: Simulator) -> Response:
    if kind == "html_502":
        return html_response("<html><head><title>502 Bad Gateway</title></head><body><center>"
                             "<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>", 502)
    if kind == "html_200":
        return html_response("<!DOCTYPE html><html><body><h1>Przerwa techniczna</h1>"
                             "<p>Serwis chwilowo niedostępny.</p></body></html>", 200)
    if kind == "429":
        return sim._error(429, sim.rate_limit_message, {"Retry-After": "1"})
    return sim._error(500, "Internal Server Error")


# -- hosting ----------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    server_version = "sync-pipeline-sandbox"
    timeout = 60  # drop idle keep-alive connections
    # Headers and body leave in two writes; without TCP_NODELAY, Nagle plus delayed ACK adds ~40 ms
    # to every keep-alive request, which made a sync of 300 records take 15 s instead of 1.
    disable_nagle_algorithm = True
    mounts: Mapping[str, Simulator] = {}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logging
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed, malformed = _parse_body(body, headers.get("content-type", ""))
        sim, sub_path = _find_mount(self.mounts, parts.path)
        if sim is None:
            response = json_response({"code": "error", "message": "Not found"}, 404)
        else:
            req = Request(self.command, sub_path, parse_qs(parts.query, keep_blank_values=True),
                          headers, parsed, body, malformed=malformed)
            response = sim.handle(req)
            if sim.latency and not response.delay:  # the network's round trip, outside the simulator's lock
                response = Response(response.status, response.body, response.headers, response.reset, sim.latency)
        self._write(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _write(self, response: Response) -> None:
        # The delay runs here, after the simulator released its lock, so other requests go on being
        # served; a stopping server wakes it and drops the connection.
        if response.delay and self.server.stopping.wait(response.delay):
            response = connection_reset()
        if response.reset:
            self._reset()
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out): normal
            self.close_connection = True

    def _reset(self) -> None:
        """Close with SO_LINGER (1, 0): the kernel sends RST, so the client sees a connection reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()  # the makefile reader holds the socket open; wfile writes straight through
        self.connection.close()


def _parse_body(body: bytes, content_type: str) -> tuple[Any | None, bool]:
    if not body.strip() or "x-www-form-urlencoded" in content_type or "multipart/" in content_type:
        return None, False
    try:
        return json.loads(body), False
    except (ValueError, UnicodeDecodeError):
        return None, True


def _find_mount(mounts: Mapping[str, Simulator], path: str) -> tuple[Simulator | None, str]:
    for prefix in sorted(mounts, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return mounts[prefix], path[len(prefix):] or "/"
    return None, path


class _Server(ThreadingHTTPServer):
    """Remembers its open connections so stop() can close them: a keep-alive connection left open
    would go on being served by the old handler thread, i.e. by the old simulators."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()
        self.stopping = threading.Event()  # wakes answers held back by a "slow" fault

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeouts, resets we injected) is part of the game, not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpHost:
    """One ThreadingHTTPServer on one port serving several simulators under path prefixes."""

    def __init__(self, mounts: Mapping[str, Simulator], *, host: str = "127.0.0.1", port: int = 0):
        self.mounts = dict(mounts)
        self.host, self.port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8123 (valid after start)."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Bind, serve in a daemon thread, return the base URL."""
        handler = type("Handler", (_Handler,), {"mounts": self.mounts})
        self._server = _Server((self.host, self.port), handler)
        # A short poll interval keeps stop() fast (shutdown waits for the loop to notice).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sandbox-http",
                                        daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.stopping.set()
            self._server.shutdown()
            self._server.close_open_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


"""Generic in-memory vendor simulator over real HTTP: routing, auth hook, request log, rate limit, faults."""

from __future__ import annotations

import json
import math
import re
import socket
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

FAULT_KINDS = frozenset({"html_502", "html_200", "truncated", "500", "429"})
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
    """Status, headers and raw body ready to write."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


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


class Simulator:
    """Base of every vendor simulator; subclasses register routes and override `authenticate`."""

    name = "sim"

    def __init__(self, *, max_rps: float | None = None, clock_start: datetime | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.lock = threading.RLock()
        self.max_rps = max_rps
        self._bucket = _TokenBucket(max_rps, monotonic) if max_rps else None
        self._routes: list[_Route] = []
        self._faults: list[_Fault] = []
        self._log: deque[Request] = deque(maxlen=_LOG_LIMIT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self.errors: list[str] = []  # tracebacks of handler crashes, for tests to assert on
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
    def fail_next(self, path_regex: str, kind: str, times: int = 1, *, method: str | None = None) -> None:
        """Make the next `times` requests whose path matches (re.search) fail in the given way."""
        kind = {"html": "html_502"}.get(kind, kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self.lock:
            self._faults.append(_Fault(re.compile(path_regex), kind, times, method and method.upper()))

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
        """Request counts (total and per 'METHOD path') and record counts."""
        with self.lock:
            by_path = {f"{m} {p}": n for (m, p), n in sorted(self._counts.items())}
            return {"requests": sum(self._counts.values()), "requests_by_path": by_path,
                    "records": self.record_counts()}

    # -- persistence ------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state; subclasses extend with their records."""
        return {"clock": self.clock.isoformat()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what `snapshot` produced."""
        self.clock = datetime.fromisoformat(state["clock"]).astimezone(UTC)

    # -- dispatch ---------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Log, rate-limit, inject faults, authenticate and dispatch one request."""
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
            response = self._dispatch(req)
            if fault == "truncated":
                # The server did the work but the connection "lost" the second half of the body.
                cut = response.body[: len(response.body) // 2]
                return Response(200, cut, {"Content-Type": "application/json; charset=utf-8"})
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
            if (fault.method in (None, req.method)) and fault.pattern.search(req.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    def _error(self, status: int, message: Any, headers: Mapping[str, str] | None = None) -> Response:
        return json_response(self.error_body(status, message), status, headers)


def _matches(m: str, p: str, method: str | None, path: str | None) -> bool:
    return (method is None or m == method.upper()) and (path is None or re.fullmatch(path, p) is not None)


def _fault_response(kind: str, sim: Simulator) -> Response:
    if kind == "html_502":
        return html_response("<html><head><title>502 Bad Gateway</title></head><body><center>"
                             "<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>", 502)
    if kind == "html_200":
        return html_response("<!DOCTYPE html><html><body><h1>Przerwa techniczna</h1>"
                             "<p>Serwis chwilowo niedostępny.</p></body></html>", 200)
    if kind == "429":
        return sim._error(429, "Too many requests", {"Retry-After": "1"})
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
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)


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
            self._server.shutdown()
            self._server.close_open_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


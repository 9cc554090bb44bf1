"""The HTTP side of ``vocalis serve``: one aiohttp app, routes from transports.

A transport plugin that accepts connections gives its transport class a
classmethod ``add_routes(routes, server)``; ``vocalis serve`` calls it for
every such transport installed, so one port serves the browser page, its
signalling and the telephony WebSockets together.

Health and metrics: ``/livez`` (the process and its event loop work),
``/readyz`` (200, or 503 with ``Retry-After`` when the server is draining,
full or overloaded; ``/healthz`` is the same), both public and answering
``HEAD`` too, and ``/metrics`` (Prometheus, token required).

Every route needs the server's token (``?token=``, ``Authorization: Bearer``
or the ``vocalis_token`` cookie) unless the transport marks it ``public``
(then it checks the token its own way, e.g. from a telephony provider's
start message). Browser requests from a foreign ``Origin`` are refused.
aiohttp is imported only here: the core does not need it otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.serve.edges import ConnectionGuard, Throttle, quiet_accept_errors
from vocalis.serve.options import AdmissionError

if TYPE_CHECKING:
    from aiohttp import web

    from vocalis.serve.server import SessionServer

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
TOKEN_COOKIE = "vocalis_token"


@dataclass(frozen=True)
class Route:
    """One HTTP route a transport serves."""

    method: str
    path: str
    handler: Handler
    public: bool = False


class Routes:
    """What ``add_routes`` receives: add the transport's routes to it."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.static: list[tuple[str, str]] = []

    def get(self, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve ``GET path`` (WebSocket upgrades are GETs too)."""
        self.routes.append(Route("GET", path, handler, public))

    def post(self, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve ``POST path``."""
        self.routes.append(Route("POST", path, handler, public))

    def add_static(self, prefix: str, directory: str) -> None:
        """Serve the files of ``directory`` under ``prefix`` (public: no secrets there)."""
        self.static.append((prefix, directory))


def request_token(request: web.Request) -> str | None:
    """The token a request carries, wherever it put it."""
    token = request.query.get("token")
    if token:
        return token
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def own_origin(request: web.Request) -> str:
    """The origin of the page this server serves, as a browser would write it."""
    return f"{request.scheme}://{request.host}"


def access_logger() -> type:
    """aiohttp's access log without query strings: they carry the token."""
    from aiohttp.abc import AbstractAccessLogger

    class AccessLogger(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            self.logger.info('%s "%s %s" %s %.3f', request.remote, request.method, request.path, response.status, time)

    return AccessLogger


_HEALTH_PATHS = ("/livez", "/readyz", "/healthz")
# asyncio accepts up to this many connections per wake-up before the guard sees one:
# kept modest so a flood cannot exhaust file descriptors between two checks.
_BACKLOG = 256
_STOP_FORCE_AFTER = 5.0  # seconds a forced stop may take before the process exits anyway


def refusal(exc: AdmissionError) -> web.Response:
    """The HTTP answer to a refused session: its status, and ``Retry-After`` when known."""
    from aiohttp import web

    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
    return web.Response(status=exc.status, text=str(exc), headers=headers)


def cors_headers(server: SessionServer, request: web.Request) -> dict[str, str]:
    """CORS headers for a request from an allowed foreign origin (none otherwise)."""
    origin = request.headers.get("Origin")
    if not origin or origin == own_origin(request) or not server.check_origin(origin, own_origin(request)):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def build_app(server: SessionServer, transports: Iterable[Any]) -> web.Application:
    """The aiohttp application serving every transport's routes.

    Args:
        server: The session server (limits, token, origins).
        transports: Transport classes that have an ``add_routes`` classmethod.
    """
    from aiohttp import web

    routes = Routes()
    for transport in transports:
        transport.add_routes(routes, server)
    public = {(r.method, r.path) for r in routes.routes if r.public}
    public.update(("GET", path) for path in _HEALTH_PATHS)
    static_prefixes = tuple(prefix for prefix, _ in routes.static)

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not server.check_origin(request.headers.get("Origin"), own_origin(request)):
            logger.warning("refused {} {}: origin not allowed", request.method, request.path)
            raise web.HTTPForbidden(text="origin not allowed")
        cors = cors_headers(server, request)
        if request.method == "OPTIONS" and cors:
            # A preflight carries no credentials: answer it without the token.
            wanted = request.headers.get("Access-Control-Request-Headers", "authorization, content-type")
            cors.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": wanted[:200],
                    "Access-Control-Max-Age": "600",
                }
            )
            return web.Response(status=204, headers=cors)
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        method = "GET" if request.method == "HEAD" else request.method
        is_public = (method, path) in public or request.path.startswith(static_prefixes)
        if not is_public and not server.check_token(request_token(request)):
            raise web.HTTPUnauthorized(text="a valid token is required (?token=...)", headers=cors)
        try:
            response = await handler(request)
        except AdmissionError as exc:
            response = refusal(exc)
        if cors and not response.prepared:
            response.headers.update(cors)
        return response

    async def livez(request: web.Request) -> web.Response:
        # Answering at all proves the loop runs; the lag tells how well.
        return web.json_response({"alive": True, "loop_lag": round(server.monitor.loop_lag, 4)})

    async def readyz(request: web.Request) -> web.Response:
        verdict = server.readiness()
        body = {
            "ready": verdict.ready,
            "reason": verdict.reason,
            "sessions": len(server.sessions),
            "max_sessions": server.options.max_sessions,
            "accepting": server.accepting,
            "load": round(server.load(), 3),
            "loop_lag": round(server.monitor.loop_lag, 4),
        }
        headers = {"Retry-After": str(verdict.retry_after)} if not verdict.ready else {}
        return web.json_response(body, status=200 if verdict.ready else 503, headers=headers)

    async def metrics(request: web.Request) -> web.Response:
        from vocalis.serve.prometheus import CONTENT_TYPE

        if server.prometheus is None:
            raise web.HTTPNotImplemented(text="install prometheus-client (vocalis[serve]) for /metrics")
        return web.Response(body=server.prometheus.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(client_max_size=server.options.max_message_bytes, middlewares=[security])
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
    app.router.add_get("/metrics", metrics)
    for route in routes.routes:
        app.router.add_route(route.method, route.path, route.handler)
    for prefix, directory in routes.static:
        app.router.add_static(prefix, directory)
    return app


# A token's value wherever a request carries it: aiohttp quotes only the first
# 100 bytes of an over-long line, which may end inside the token.
_TOKEN_VALUE = re.compile(r"(token=|bearer\s+)[^\s&;'\"\\]+", re.IGNORECASE)


class _HideToken(logging.Filter):
    """Removes the token from aiohttp's own log records (a malformed request's line
    is quoted in "Error handling request"), and throttles repeated ones."""

    def __init__(self, token: str, throttle: Throttle) -> None:
        super().__init__()
        self._token = token
        self._throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            exc = record.exc_info[1]
            text = f"{text}: {type(exc).__name__}: {exc}" if exc is not None else text
            record.exc_info = None
            record.exc_text = None
        if record.levelno >= logging.WARNING and self._throttle.allow(f"aiohttp:{record.msg!s:.40}") is None:
            return False
        record.msg = _TOKEN_VALUE.sub(r"\1[token]", text.replace(self._token, "[token]"))
        record.args = None
        return True


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, listening TCP socket (shared by the workers when ``reuse_port``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


async def serve(
    server: SessionServer,
    transports: Iterable[Any],
    *,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then drain.

    On the signal the server stops accepting sessions (``/readyz`` answers
    503), lets running ones finish for ``drain_timeout`` seconds, closes the
    rest and returns. A second signal skips the drain: sessions close at once
    (their conversations are saved for resume), and the process exits within
    a few seconds whatever happens.

    Args:
        server: The session server.
        transports: Transport classes with ``add_routes``.
        ready: Called with the page's URL (token included) once listening.
        stop: Set it to stop serving (tests; signals also work).
        reuse_port: Bind with ``SO_REUSEPORT`` so several worker processes share the port.
    """
    from aiohttp import web

    options = server.options
    app = build_app(server, transports)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=1.0, access_log_class=access_logger(), keepalive_timeout=15.0
    )
    await runner.setup()
    throttle = Throttle()
    guard = ConnectionGuard(
        max_pending=options.max_pending_connections,
        per_client=options.max_connections_per_client,
        max_connections=options.max_connections,
        header_timeout=options.header_timeout,
        throttle=throttle,
    )
    server.guard = guard
    hide = _HideToken(server.token, throttle)
    aiohttp_loggers = [logging.getLogger(name) for name in ("aiohttp.server", "aiohttp.web", "aiohttp.websocket")]
    for log in aiohttp_loggers:
        log.addFilter(hide)
    sock = _listening_socket(options.host, options.port, reuse_port=reuse_port)
    loop = asyncio.get_running_loop()
    restore_handler = quiet_accept_errors(loop, throttle)
    listener = await loop.create_server(guard.wrap(runner.server), sock=sock, backlog=_BACKLOG)  # type: ignore[arg-type]
    server.monitor.start()
    stop = stop or asyncio.Event()
    forced = asyncio.Event()
    installed: list[int] = []

    def on_signal() -> None:
        if stop.is_set():
            forced.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        port = sock.getsockname()[1]
        host = "127.0.0.1" if options.host in ("0.0.0.0", "", "::") else options.host
        url = f"http://{host}:{port}/?token={server.token}"
        if ready is not None:
            ready(url)
        await stop.wait()
        logger.info("shutting down: no new sessions; draining")
        server.accepting = False
        drain = loop.create_task(server.drain())
        force = loop.create_task(forced.wait())
        await asyncio.wait([drain, force], return_when=asyncio.FIRST_COMPLETED)
        if not drain.done():
            logger.warning("second signal: closing every session now")
            loop.call_later(_STOP_FORCE_AFTER, os._exit, 1)  # if closing hangs, exit anyway
            drain.cancel()
            await asyncio.wait([drain])
        force.cancel()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await server.aclose()
        listener.close()
        await runner.cleanup()
        await restore_handler()
        for log in aiohttp_loggers:
            log.removeFilter(hide)

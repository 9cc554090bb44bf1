"""The HTTP side of ``vocalis serve``: one aiohttp app, routes from transports.

A transport plugin that accepts connections gives its transport class a
classmethod ``add_routes(routes, server)``; ``vocalis serve`` calls it for
every such transport installed, so one port serves the browser page, its
signalling and the telephony WebSockets together.

Every route needs the server's token (``?token=``, ``Authorization: Bearer``
or the ``vocalis_token`` cookie) unless the transport marks it ``public``
(then it checks the token its own way, e.g. from a telephony provider's
start message). Browser requests from a foreign ``Origin`` are refused.
aiohttp is imported only here: the core does not need it otherwise.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

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
    public.add(("GET", "/healthz"))
    static_prefixes = tuple(prefix for prefix, _ in routes.static)

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not server.check_origin(request.headers.get("Origin"), own_origin(request)):
            logger.warning("refused {} {}: origin {}", request.method, request.path, request.headers["Origin"])
            raise web.HTTPForbidden(text="origin not allowed")
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        is_public = (request.method, path) in public or request.path.startswith(static_prefixes)
        if not is_public and not server.check_token(request_token(request)):
            raise web.HTTPUnauthorized(text="a valid token is required (?token=...)")
        return await handler(request)

    async def health(request: web.Request) -> web.Response:
        # 503 while draining tells a load balancer to send new calls elsewhere.
        return web.json_response(
            {
                "sessions": len(server.sessions),
                "max_sessions": server.options.max_sessions,
                "accepting": server.accepting,
            },
            status=200 if server.accepting else 503,
        )

    app = web.Application(client_max_size=server.options.max_message_bytes, middlewares=[security])
    app.router.add_get("/healthz", health)
    for route in routes.routes:
        app.router.add_route(route.method, route.path, route.handler)
    for prefix, directory in routes.static:
        app.router.add_static(prefix, directory)
    return app


async def serve(
    server: SessionServer,
    transports: Iterable[Any],
    *,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then drain.

    On the signal the server stops accepting sessions, lets running ones
    finish for ``drain_timeout`` seconds, closes the rest and returns.

    Args:
        server: The session server.
        transports: Transport classes with ``add_routes``.
        ready: Called with the page's URL (token included) once listening.
        stop: Set it to stop serving (tests; signals also work).
    """
    from aiohttp import web

    options = server.options
    app = build_app(server, transports)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log_class=access_logger())
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        port = site._server.sockets[0].getsockname()[1] if site._server else options.port  # type: ignore[attr-defined]  # aiohttp types it as AbstractServer
        host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
        url = f"http://{host}:{port}/?token={server.token}"
        if ready is not None:
            ready(url)
        await stop.wait()
        logger.info("shutting down: no new sessions; draining")
        await server.drain()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await server.aclose()
        await runner.cleanup()

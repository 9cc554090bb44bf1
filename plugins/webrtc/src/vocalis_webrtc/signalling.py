"""The HTTP side of the WebRTC transport: the page and offer/answer signalling.

Routes (all behind ``vocalis serve``'s token and origin checks, except the
static files, which hold no secrets):

- ``GET /``: the page (the token stays in its URL; its script sends it back).
- ``GET /webrtc/config``: the ICE servers the page should use.
- ``POST /webrtc/offer``: ``{"sdp", "type": "offer"}`` → ``{"sdp", "type": "answer"}``;
  503 with ``{"error"}`` when the server is full or draining, 400 for a bad
  offer.
- ``/webrtc/static/...``: the page's script and style sheet.

Signalling is one HTTP round trip: the answer is sent once ICE gathering is
complete, so neither side trickles candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from loguru import logger

from vocalis.serve.server import AdmissionError
from vocalis_webrtc.transport import OfferError, browser_ice_servers

if TYPE_CHECKING:
    from vocalis.serve.http import Routes
    from vocalis.serve.server import SessionServer
    from vocalis_webrtc.transport import WebRTCTransport

PAGE = Path(__file__).resolve().parent / "page" / "index.html"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/webrtc/static"
MAX_SDP_CHARS = 64 * 1024
# The page must never be cached: it is served under a URL holding the token.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _error(message: str, status: int, retry_after: int = 0) -> web.Response:
    headers = {**NO_STORE, "Retry-After": str(retry_after)} if retry_after else NO_STORE
    return web.json_response({"error": message}, status=status, headers=headers)


async def _read_offer(request: web.Request) -> str:
    """The offer's SDP, or a 400 response raised as an exception."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='expected a JSON body {"sdp": ..., "type": "offer"}') from None
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise web.HTTPBadRequest(text='expected {"sdp": ..., "type": "offer"}')
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip() or len(sdp) > MAX_SDP_CHARS:
        raise web.HTTPBadRequest(text="the offer's sdp must be a non-empty SDP string")
    return sdp


def add_webrtc_routes(cls: type[WebRTCTransport], routes: Routes, server: SessionServer) -> None:
    """Add the page, the config and the offer endpoint for transport class ``cls``.

    Args:
        cls: The transport class to build per connection.
        routes: ``vocalis serve``'s route table.
        server: The session server (admission, sessions).
    """
    # Read once: the environment does not change while serving, and every
    # connection gets the same settings object.
    settings: Any = cls.Settings()
    page = PAGE.read_text(encoding="utf-8")

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def config(request: web.Request) -> web.Response:
        return web.json_response({"iceServers": browser_ice_servers(settings)}, headers=NO_STORE)

    async def offer(request: web.Request) -> web.Response:
        sdp = await _read_offer(request)
        try:
            server.admit()
        except AdmissionError as exc:
            logger.info("webrtc: refused a connection: {}", exc)
            return _error(str(exc), exc.status, exc.retry_after)
        transport = cls(settings=settings)
        try:
            answer = await transport.accept(sdp)
        except OfferError as exc:
            server.release()
            await transport.aclose()
            return _error(str(exc), 400)
        except BaseException:
            server.release()
            await transport.aclose()
            raise
        try:
            session = await server.open_session(transport, reserved=True)
        except AdmissionError as exc:
            await transport.aclose()
            return _error(str(exc), exc.status, exc.retry_after)
        except Exception:
            # open_session closed the half-started session (and so the transport).
            logger.exception("webrtc: the session could not start")
            await transport.aclose()
            return _error("the session could not start", 500)
        transport.attach(session)
        logger.info("webrtc: session {} answering {}", session.id, request.remote)
        return web.json_response({"sdp": answer.sdp, "type": answer.type}, headers=NO_STORE)

    routes.get("/", index)
    routes.get("/webrtc/config", config)
    routes.post("/webrtc/offer", offer)
    routes.add_static(STATIC_PREFIX, str(STATIC_DIR))

"""A misbehaving gateway: it refuses every request with 401 and quotes the credentials it got.

Some proxies and gateways do this (a debugging aid left on), so the body of
the refusal holds the request's ``Authorization`` header, API key header and
extra headers, raw and URL-encoded. It speaks plain HTTP/1.1 on a raw socket,
so it refuses the Chat Completions, audio and model-list requests and the
Realtime API's WebSocket upgrade alike. Shared by the openai and anthropic
plugins' tests (the anthropic ones put this directory on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

Style = Literal["json", "text", "html"]
STYLES: tuple[Style, ...] = ("json", "text", "html")

# Headers whose values the gateway quotes back.
_QUOTED = ("authorization", "x-api-key", "x-gateway-key")


@dataclass
class Seen:
    """One refused request: its request line and headers (names lower-cased)."""

    line: str
    headers: dict[str, str] = field(default_factory=dict)


class KeyEchoGateway:
    """Run with ``async with KeyEchoGateway(style) as gw``; ``gw.url`` is its root.

    Args:
        style: The body of the refusals: a JSON error object whose message
            quotes the credentials (what an OpenAI-style gateway sends), plain
            text listing the headers, or a big HTML error page with the
            credentials from its 190th character on (where a cut at 200
            characters would keep only the start of a key).
    """

    def __init__(self, style: Style = "json") -> None:
        self.style = style
        self.seen: list[Seen] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> KeyEchoGateway:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *lines = head.split("\r\n")
            headers = {}
            for header in lines:
                name, sep, value = header.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            # Read the body so the client is not cut off while still sending it.
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.seen.append(Seen(line, headers))
            content_type, body = self._body(headers)
            writer.write(
                f"HTTP/1.1 401 Unauthorized\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _body(self, headers: dict[str, str]) -> tuple[str, bytes]:
        quoted = {name: headers[name] for name in _QUOTED if name in headers}
        listing = "; ".join(f"{name}: {value}" for name, value in quoted.items())
        keys = [value.removeprefix("Bearer ") for value in quoted.values()]
        encoded = " ".join(quote(key, safe="") for key in keys)
        if self.style == "json":
            message = f"Invalid credentials {' '.join(keys)} (encoded {encoded}). Request headers: {listing}"
            error = {"message": message, "type": "authentication_error", "code": "invalid_api_key"}
            return "application/json", json.dumps({"type": "error", "error": error}).encode()
        if self.style == "text":
            return "text/plain", f"401 Unauthorized\n{listing}\nkey={encoded}\nbad key: {' '.join(keys)}\n".encode()
        page = "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1><p>"
        page = page.ljust(190, "-") + " ".join(keys) + f"</p><pre>{listing}</pre>"
        return "text/html", (page + "<p>Please check your credentials.</p>" * 300 + "</body></html>").encode()

"""MCP servers over HTTP: streamable HTTP or SSE."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vocalis_mcp.server import MCPServer

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` without its ``user:password@`` part, query and fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class MCPServerHTTP(MCPServer):
    """An MCP server over HTTP: streamable HTTP for URLs ending in ``/mcp``, else SSE.

    Args:
        endpoint_url: The server URL.
        request_headers: Headers sent with every request (e.g. auth).
        connection_timeout: HTTP connect timeout in seconds.
        stream_read_timeout: Read timeout of the event stream in seconds.
        session_timeout: Seconds per tool call.
        **kwargs: ``allowed_tools``, ``denied_tools``, ``settings`` or settings fields.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        request_headers: Mapping[str, str] | None = None,
        connection_timeout: float | None = None,
        stream_read_timeout: float | None = None,
        session_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if connection_timeout is not None:
            kwargs["connection_timeout"] = connection_timeout
        if stream_read_timeout is not None:
            kwargs["stream_read_timeout"] = stream_read_timeout
        super().__init__(session_timeout=session_timeout, **kwargs)
        self.endpoint_url = endpoint_url or self.settings.url
        self.request_headers = dict(request_headers or {})

    @property
    def server_name(self) -> str:
        """The endpoint URL without credentials (``user:password@``, query string).

        It names the server in logs, errors (which the LLM reads) and task
        names, so a key carried in the URL must not come along.
        """
        return redact_url(self.endpoint_url)

    def _redact(self, text: str) -> str:
        # HTTP errors quote the request URL (query string included).
        return _URL.sub(lambda m: redact_url(m.group()), text)

    @property
    def streamable(self) -> bool:
        """Whether the streamable HTTP transport is used (else SSE)."""
        return self.endpoint_url.rstrip("/").endswith("/mcp")

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        if not self.endpoint_url:
            raise self.error("no endpoint_url given (or VOCALIS_TOOLS_MCP_URL)")
        if not self.streamable:
            from mcp.client.sse import sse_client

            async with sse_client(
                self.endpoint_url,
                headers=self.request_headers,
                timeout=self.settings.connection_timeout,
                sse_read_timeout=self.settings.stream_read_timeout,
            ) as streams:
                yield streams[0], streams[1]
            return
        import httpx2
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client  # where it is defined and exported

        timeout = httpx2.Timeout(self.settings.connection_timeout, read=self.settings.stream_read_timeout)
        async with create_mcp_http_client(headers=self.request_headers, timeout=timeout) as client:
            async with streamable_http_client(self.endpoint_url, http_client=client) as streams:
                yield streams[0], streams[1]

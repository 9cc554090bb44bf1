"""One aiohttp session per event loop, closed with its loop if nobody closes it.

A session's pooled connections belong to the loop that opened them. A
provider reused under another loop (``asyncio.run`` per step of a script)
gets a new session there. The old one, if its loop shut down without the
provider being closed, was already closed: each session is tied to a
suspended async generator, and a loop finalizes its async generators when
it shuts down (``loop.shutdown_asyncgens()``, called by ``asyncio.run``),
which closes the session on its own loop. No task is left for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp

from vocalis_google.common import shared_ssl_context


async def _closed_with_loop(client: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not client.closed:
            await client.close()


class ClientHolder:
    """Gives out the running loop's aiohttp session, made on first use."""

    def __init__(self) -> None:
        self._client: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper: AsyncGenerator[None, None] | None = None

    async def get(self, base_url: str) -> aiohttp.ClientSession:
        """The session for the running loop.

        Args:
            base_url: The URL it will talk to (TLS is set up only for ``https``).
        """
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop and not self._client.closed:
            return self._client
        self._client = self._loop = self._keeper = None  # another loop's: it closes with that loop
        # Loading the CA bundle takes tens of milliseconds: not on the loop.
        tls = await asyncio.to_thread(shared_ssl_context) if base_url.startswith(("https", "wss")) else False
        if self._client is not None and self._loop is loop:
            return self._client  # a concurrent first call made it meanwhile
        connector = aiohttp.TCPConnector(ssl=tls, ttl_dns_cache=300, keepalive_timeout=60)
        client = aiohttp.ClientSession(connector=connector)
        keeper = _closed_with_loop(client)
        await keeper.__anext__()  # suspended in its try: the loop now tracks it
        self._client, self._loop, self._keeper = client, loop, keeper
        return client

    async def aclose(self) -> None:
        """Close the session if it belongs to the running loop. Idempotent."""
        client, keeper, loop = self._client, self._keeper, self._loop
        self._client = self._loop = self._keeper = None
        if client is None or keeper is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            await keeper.aclose()  # runs its finally: closes the session

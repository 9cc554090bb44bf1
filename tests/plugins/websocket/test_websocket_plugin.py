"""Registration, settings and `vocalis serve` mounting of the websocket transports."""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from ws_harness import TOKEN, Harness, PCMClient, pcm_client

from vocalis import make_plugin_manager
from vocalis.cli.serve_cmd import serving_transports
from vocalis.providers.base import ProviderError
from vocalis.serve.http import Routes, serve
from vocalis.serve.server import ServeOptions, SessionServer
from vocalis_websocket import PCMWebSocketTransport, TwilioTransport
from vocalis_websocket.outbox import jsonable


@pytest.fixture(scope="module")
def registry():
    return make_plugin_manager().registry


def test_both_transports_are_registered_and_serve_connections(registry) -> None:
    entries = {e.name: e for e in registry.entries("transport")}
    assert entries["twilio"].cls is TwilioTransport
    assert entries["websocket"].cls is PCMWebSocketTransport
    served = serving_transports(registry)
    assert TwilioTransport in served and PCMWebSocketTransport in served


def test_routes_and_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    server = SessionServer(lambda: None, lambda: None)  # type: ignore[arg-type,return-value]
    routes = Routes()
    TwilioTransport.add_routes(routes, server)
    PCMWebSocketTransport.add_routes(routes, server)
    assert [(r.method, r.path, r.public) for r in routes.routes] == [("GET", "/twilio", True), ("GET", "/ws", False)]

    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_PATH", "/pcm")
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_CHUNK_MS", "40")
    routes = Routes()
    PCMWebSocketTransport.add_routes(routes, server)
    assert routes.routes[0].path == "/pcm"
    assert TwilioTransport().audio_output.chunk_bytes == 2 * 320


async def test_a_transport_without_a_socket_cannot_start() -> None:
    for transport in (TwilioTransport(), PCMWebSocketTransport(sample_rate=8000)):
        with pytest.raises(ProviderError) as info:
            await transport.start(object())  # type: ignore[arg-type]
        assert info.value.recoverable is False and "vocalis serve" in str(info.value)
        await transport.aclose()
        await transport.aclose()


class Color(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: float
    tags: tuple[str, ...]


def test_event_payloads_become_json() -> None:
    value = {"a": Color.RED, "p": Point(float("nan"), ("t",)), 3: {1, 2}, "o": object}
    converted = jsonable(value)
    json.dumps(converted)
    assert converted["a"] == "red" and converted["p"] == {"x": None, "tags": ["t"]}
    assert sorted(converted["3"]) == [1, 2] and "object" in converted["o"]
    nested: dict = {}
    nested["self"] = nested  # a cycle is cut, not followed forever
    json.dumps(jsonable(nested))


async def test_vocalis_serve_mounts_the_transports(registry) -> None:
    harness = Harness()
    server = SessionServer(
        harness.make_agent, harness.make_pipeline, ServeOptions(port=0, token=TOKEN, drain_timeout=0.1)
    )
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(server, serving_transports(registry), ready=ready.set_result, stop=stop))
    url = await asyncio.wait_for(ready, 10)
    import aiohttp

    async with aiohttp.ClientSession() as http:
        port = urlsplit(url).port
        ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}&sample_rate=24000")
        client = PCMClient(ws)
        await client.send_json({"type": "text", "text": "hi"})
        await client.wait_for(lambda: bool(client.named("agent_turn")))
        assert client.named("ready")[0]["sample_rate"] == 24000
        stop.set()
        assert await client.wait_closed() == 1001
    await asyncio.wait_for(task, 10)
    assert server.sessions == {}


async def test_harness_sanity_a_client_is_refused_without_a_server_place() -> None:
    # The refusal path releases nothing it did not reserve: places stay exact.
    async with Harness(max_sessions=1) as harness:
        first = await pcm_client(harness)
        await first.wait_for(lambda: bool(first.named("ready")))
        for _ in range(3):
            refused = await pcm_client(harness)
            assert await refused.wait_closed() == 1013
        await first.send_json({"type": "end"})
        await first.wait_closed()
        assert harness.server._pending == 0
        again = await pcm_client(harness)
        await again.wait_for(lambda: bool(again.named("ready")))

"""A client that reads slower than agent audio is made never grows the server's memory.

The outbox sheds the oldest queued audio past ``max_audio_bytes`` and closes
the socket of a client that lets control messages pile up (it is not reading).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vocalis.testing import run_virtual
from vocalis_websocket import PCMWebSocketTransport, TwilioTransport
from vocalis_websocket.outbox import CLOSE_TOO_SLOW, DEFAULT_MAX_AUDIO_BYTES, Outbox


class SlowSocket:
    """Sends only when the test lets it: a client behind a slow link."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.gate = asyncio.Event()
        self.closed = False
        self.close_args: dict[str, Any] | None = None

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def send_str(self, data: str) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def close(self, **kwargs: Any) -> None:
        self.close_args = kwargs
        self.closed = True


def test_audio_for_a_slow_client_is_shed_oldest_first_and_events_are_kept() -> None:
    async def main() -> None:
        ws = SlowSocket()
        outbox = Outbox(ws, "test", max_audio_bytes=64_000)  # type: ignore[arg-type]
        outbox.start()
        chunk = bytes(640)  # 20 ms of 16 kHz PCM
        for n in range(2_000):  # 40 s of audio, 1.28 MB
            outbox.put(n.to_bytes(2, "big") + chunk[2:], audio=True)
            if n % 100 == 0:
                outbox.put(f'{{"type":"event","n":{n}}}')
            assert outbox.pending_audio_bytes <= 64_000
        assert outbox.shed > 1_800
        ws.gate.set()
        assert await outbox.drain(5.0)
        events = [m for m in ws.sent if isinstance(m, str)]
        assert events == [f'{{"type":"event","n":{n}}}' for n in range(0, 2_000, 100)]
        audio = [int.from_bytes(m[:2], "big") for m in ws.sent if isinstance(m, bytes)]
        assert audio == sorted(audio) and audio[-1] == 1_999  # the newest audio, in order
        assert outbox.pending_audio_bytes == 0
        await outbox.aclose()

    run_virtual(main())


def test_a_client_that_reads_nothing_is_disconnected() -> None:
    async def main() -> None:
        ws = SlowSocket()
        outbox = Outbox(ws, "test", max_messages=100)  # type: ignore[arg-type]
        outbox.start()
        for n in range(150):
            outbox.put(f'{{"n":{n}}}')
        await asyncio.sleep(0)
        assert ws.closed and ws.close_args == {"code": CLOSE_TOO_SLOW, "message": b"client too slow"}
        assert outbox.pending == 0  # what was queued is let go
        outbox.put("after")  # ignored once given up
        assert outbox.pending == 0
        await outbox.aclose()

    run_virtual(main())


def test_barge_in_drop_resets_the_audio_count() -> None:
    async def main() -> None:
        outbox = Outbox(SlowSocket(), "test", max_audio_bytes=10_000)  # type: ignore[arg-type]
        outbox.start()
        for _ in range(10):
            outbox.put(bytes(900), audio=True)
        outbox.put("clear")
        assert outbox.drop_audio() == 10 and outbox.pending_audio_bytes == 0 and outbox.pending == 1
        for _ in range(10):
            outbox.put(bytes(900), audio=True)
        assert outbox.shed == 0  # the dropped audio no longer counts
        await outbox.aclose()

    run_virtual(main())


@pytest.mark.parametrize("transport_class", [PCMWebSocketTransport, TwilioTransport])
def test_the_cap_is_a_transport_setting(transport_class: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    default = transport_class(SlowSocket())
    assert default.outbox.max_audio_bytes == DEFAULT_MAX_AUDIO_BYTES
    prefix = "WEBSOCKET" if transport_class is PCMWebSocketTransport else "TWILIO"
    monkeypatch.setenv(f"VOCALIS_TRANSPORT_{prefix}_MAX_QUEUED_AUDIO_BYTES", "200000")
    assert transport_class(SlowSocket()).outbox.max_audio_bytes == 200_000
    with pytest.raises(ValueError):
        Outbox(SlowSocket(), max_audio_bytes=0)  # type: ignore[arg-type]

"""Text-to-speech with Deepgram Aura over ``/v1/speak``.

:meth:`DeepgramTTS.synthesize` posts the text (``POST /v1/speak`` with a JSON
body ``{"text": ...}``) and reads raw 24 kHz linear16 audio from the
streamed reply, so the first frame plays while the rest is generated.
:meth:`DeepgramTTS.stream` uses the Speak WebSocket instead (see
:mod:`vocalis_deepgram.tts_stream`): text goes out sentence by sentence as the
LLM writes it, over one connection per reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from loguru import logger
from pydantic import Field, SecretStr

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind
from vocalis.providers.tts import TTS, TTSStream
from vocalis.text import speakable, split_text
from vocalis_deepgram.client import (
    DeepgramClientMixin,
    DeepgramSettings,
    QueryValue,
    api_key_field,
    settings_config,
)
from vocalis_deepgram.errors import exception_error, status_error
from vocalis_deepgram.speak_pool import SpeakConnections

MAX_INPUT_CHARS = 2000
"""Deepgram's limit on the text of one request (and of one ``Speak`` message)."""

_WAV_HEADER = 44  # a canonical RIFF header, in case a server wraps the PCM anyway
_COMPRESSED = ("audio/mpeg", "audio/mp3", "audio/ogg", "audio/opus", "audio/aac", "audio/flac")


class DeepgramTTS(DeepgramClientMixin, TTS):
    """Deepgram Aura text-to-speech: raw 24 kHz mono PCM, streamed."""

    name: ClassVar[str] = "deepgram"
    sample_rate: ClassVar[int] = 24_000
    channels: ClassVar[int] = 1

    class Settings(DeepgramSettings):
        """Settings, read from ``VOCALIS_TTS_DEEPGRAM_*`` (the environment or ``.env``).

        The connection settings (``api_key``, also read from
        ``DEEPGRAM_API_KEY``; ``base_url``; ``timeout``) are those of
        :class:`~vocalis_deepgram.client.DeepgramSettings`.

        Attributes:
            model: The voice (``aura-2-thalia-en``, ``aura-2-andromeda-en``,
                ``aura-2-celeste-es``, ...).
            websocket: Stream replies over the Speak WebSocket (text sent as
                it is written); False speaks each sentence with its own HTTP
                request.
            frame_ms: Length of the frames produced.
            max_flushes_per_minute: ``Flush`` messages the WebSocket takes in
                any 60 s (Deepgram's limit is 20); past it, sentences are
                joined so that each flush speaks more.
            extra_params: Further query parameters, sent as given.
        """

        model_config = settings_config("tts")

        api_key: SecretStr | None = api_key_field("tts")

        model: str = "aura-2-thalia-en"
        websocket: bool = True
        frame_ms: int = Field(20, ge=10, le=100)
        max_flushes_per_minute: int = Field(20, ge=1)
        extra_params: dict[str, str] = Field(default_factory=dict)

    settings: Settings

    @property
    def speak_connections(self) -> SpeakConnections:
        """The Speak WebSocket kept open between replies."""
        pool = self.__dict__.get("_speak_pool")
        if pool is None:
            pool = self.__dict__["_speak_pool"] = SpeakConnections(self)
        return pool

    def speak_params(self, *, rest: bool) -> dict[str, QueryValue | None]:
        """The query parameters of ``/v1/speak`` (``container=none``: raw PCM, no WAV header)."""
        params: dict[str, QueryValue | None] = {
            "model": self.settings.model,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "container": "none" if rest else None,
        }
        params.update(self.settings.extra_params)
        return params

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame of ``frame_ms``."""
        return 2 * (self.sample_rate * self.settings.frame_ms // 1000)

    def stream(self) -> TTSStream:
        """A streaming synthesis session: the Speak WebSocket, or sentences over HTTP."""
        if not self.settings.websocket:
            return super().stream()
        from vocalis_deepgram.tts_stream import DeepgramTTSStream

        return DeepgramTTSStream(self)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text`` with HTTP requests, yielding frames as the audio streams in.

        Text without letters or digits yields nothing and makes no request;
        text longer than 2000 characters is sent in several requests.
        Closing the generator early closes the HTTP response.

        Raises:
            ProviderError: The request failed or the stream broke off
                (recoverable for timeouts, dropped connections, 429, 5xx).
        """
        if not isinstance(text, str):
            raise self.error(
                f"text must be a str, not {type(text).__name__}", recoverable=False, kind=ErrorKind.BAD_REQUEST
            )
        if not speakable(text):
            return
        for piece in split_text(text.strip(), MAX_INPUT_CHARS):
            async for frame in self._speak(piece):
                yield frame

    async def _speak(self, text: str) -> AsyncIterator[AudioFrame]:
        import aiohttp

        s = self.settings
        url = self.http_url("/v1/speak", self.speak_params(rest=True))
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.timeout, sock_read=s.timeout)
        frame_bytes = self.frame_bytes
        pending = bytearray()
        started = False
        checked = False
        logger.debug("{}: speaking {} characters", self.label, len(text))
        try:
            async with self.http().post(url, json={"text": text}, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    raise status_error(self, response.status, await response.read(), response.headers)
                started = True
                declared = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                async for chunk in response.content.iter_any():
                    pending += chunk
                    if not checked and len(pending) >= 12:
                        self._check_audio(declared, bytes(pending[:12]))
                        checked = True
                        if pending[:4] == b"RIFF" and pending[8:12] == b"WAVE":
                            if len(pending) < _WAV_HEADER:
                                checked = False
                                continue
                            del pending[:_WAV_HEADER]
                    # Whole frames only: chunks split samples at odd byte counts.
                    while checked and len(pending) >= frame_bytes:
                        yield AudioFrame(bytes(pending[:frame_bytes]), self.sample_rate)
                        del pending[:frame_bytes]
        except Exception as exc:
            raise exception_error(self, exc, started=started) from exc
        if len(pending) % 2:
            logger.warning("{}: dropping a trailing half sample", self.label)
            del pending[-1:]
        if pending:
            yield AudioFrame(bytes(pending), self.sample_rate)

    def _check_audio(self, declared: str, head: bytes) -> None:
        """Refuse a body of compressed audio; the first bytes decide, not the label alone.

        Raises:
            ProviderError: The body is MP3, Ogg or FLAC (``BAD_REQUEST``, not recoverable).
        """
        if _is_compressed(head, declared):
            raise self.error(
                f"server sent {declared or 'compressed audio'} instead of raw linear16 PCM",
                recoverable=False,
                kind=ErrorKind.BAD_REQUEST,
            )
        if declared in _COMPRESSED:
            logger.debug("{}: the reply is labelled {} but holds raw PCM", self.label, declared)

    async def prewarm(self) -> None:
        """Check the key and open the connections the first reply will use."""
        await self.check_key()
        if self.settings.websocket:
            await self.speak_connections.warm()

    async def aclose(self) -> None:
        """Close the kept Speak WebSocket and the HTTP session. Idempotent."""
        await self.speak_connections.aclose()
        await self.close_http()


def _is_compressed(head: bytes, declared: str) -> bool:
    """Whether the first bytes are MP3, Ogg or FLAC rather than raw PCM."""
    if head.startswith((b"ID3", b"OggS", b"fLaC")):
        return True
    if declared not in _COMPRESSED or len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    # An MPEG audio frame header: a real version, layer, bitrate and rate
    # (quiet PCM such as ff ff ff ff is none of these).
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3

"""Text-to-speech over the speech endpoint (``POST /audio/speech``).

Audio is requested as raw PCM (24 kHz, 16-bit little-endian, mono) and read
from the streaming response as it arrives, so the first frame plays while
the server is still generating the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from loguru import logger
from pydantic import Field

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind
from vocalis.providers.tts import TTS
from vocalis.settings import provider_settings_config
from vocalis.text import speakable, split_text
from vocalis_openai.client import OpenAIClientMixin, OpenAISettings, provider_error

MAX_INPUT_CHARS = 4096
"""The endpoint's limit on ``input``; longer text is sent in several requests."""

# Formats a server may send when it ignored ``response_format: pcm``; played
# as PCM they would be loud noise.
_COMPRESSED = ("audio/mpeg", "audio/mp3", "audio/ogg", "audio/opus", "audio/aac", "audio/flac")


class OpenAITTS(OpenAIClientMixin, TTS):
    """Speaks text with ``gpt-4o-mini-tts``, ``tts-1`` or a compatible server.

    The default :meth:`stream` (sentence by sentence over :meth:`synthesize`)
    is kept: the endpoint takes whole texts, and a sentence is short enough
    for its first audio to arrive quickly.
    """

    name: ClassVar[str] = "openai"
    sdk_modules: ClassVar[tuple[str, ...]] = ("openai.resources.audio.audio",)
    sample_rate: ClassVar[int] = 24_000
    channels: ClassVar[int] = 1

    class Settings(OpenAISettings):
        """Settings, read from ``VOCALIS_TTS_OPENAI_*``.

        Attributes:
            model: The speech model.
            voice: A built-in voice (``alloy``, ``coral``, ``marin``, ...)
                or a custom voice id.
            instructions: How to speak (tone, accent, pace); ignored by
                ``tts-1`` and ``tts-1-hd``, so not sent to them.
            speed: 0.25..4.0 (None: the server's default, 1.0).
            frame_ms: Length of the frames produced.
        """

        model_config = provider_settings_config("tts", "openai")

        model: str = "gpt-4o-mini-tts"
        voice: str = "alloy"
        instructions: str | None = None
        speed: float | None = Field(default=None, ge=0.25, le=4.0)
        frame_ms: int = Field(default=20, ge=10, le=100)

    settings: Settings

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text``, yielding frames of ``frame_ms`` as the audio streams in.

        Text without letters or digits yields nothing and makes no request.
        Closing the generator early closes the HTTP response.

        Raises:
            ProviderError: The request failed or the stream broke off
                (recoverable for timeouts, dropped connections, 429, 5xx);
                its ``kind`` tells a timeout before the audio (``TIMEOUT``)
                from a stall inside it (``STALLED``), and a failed connection
                from a dropped one (both ``CONNECTION``, worded apart).
        """
        if not isinstance(text, str):
            raise self.error(
                f"text must be a str, not {type(text).__name__}",
                recoverable=False,
                kind=ErrorKind.BAD_REQUEST,
            )
        if not speakable(text):
            return
        for piece in split_text(text.strip(), MAX_INPUT_CHARS):
            async for frame in self._speak(piece):
                yield frame

    async def _speak(self, text: str) -> AsyncIterator[AudioFrame]:
        request: dict[str, Any] = {
            "model": self.settings.model,
            "voice": self.settings.voice,
            "input": text,
            "response_format": "pcm",
        }
        if self.settings.speed is not None:
            request["speed"] = self.settings.speed
        if self.settings.instructions and not self.settings.model.startswith("tts-1"):
            request["instructions"] = self.settings.instructions
        frame_bytes = 2 * (self.sample_rate * self.settings.frame_ms // 1000)
        pending = bytearray()
        logger.debug("{}: speaking {} characters", self.label, len(text))
        speech = self.client.audio.speech.with_streaming_response
        started = False  # whether the reply's headers came and its body is being read
        try:
            async with speech.create(**request) as response:
                started = True
                self._check_content_type(response.headers.get("content-type", ""))
                async for chunk in response.iter_bytes():
                    pending += chunk
                    # Whole frames only: chunks split samples at odd byte counts.
                    while len(pending) >= frame_bytes:
                        yield AudioFrame(bytes(pending[:frame_bytes]), self.sample_rate)
                        del pending[:frame_bytes]
        except Exception as exc:
            raise provider_error(self, exc, started=started) from exc
        if len(pending) % 2:
            logger.warning("{}: dropping a trailing half sample", self.label)
            del pending[-1:]
        if pending:
            yield AudioFrame(bytes(pending), self.sample_rate)

    def _check_content_type(self, content_type: str) -> None:
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in _COMPRESSED:
            raise self.error(
                f"server sent {kind} instead of raw PCM; it does not support response_format 'pcm'",
                recoverable=False,
                kind=ErrorKind.BAD_REQUEST,
            )

"""The ``google`` realtime provider: Gemini Live over the ``BidiGenerateContent`` WebSocket.

``{wss}/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent``
with the key in ``x-goog-api-key``. The first client message is ``setup``
(model, voice, instructions, tools, activity detection, transcription,
resumption), sent once per socket; the server answers ``setupComplete``
before anything else. User audio goes up as 16 kHz PCM, the model's comes
down as 24 kHz PCM. The conversation itself lives in
:mod:`vocalis_google.live_session`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from loguru import logger
from pydantic import Field, model_validator

from vocalis.chat.formats import JSONObject
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ToolSpec
from vocalis.providers.realtime import RealtimeModel
from vocalis.providers.redact import RedactingLogger, redact
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_google.common import (
    GoogleSettings,
    auth_headers,
    has_credentials,
    missing_key_error,
    one_thinking_setting,
    secrets_of,
    shared_ssl_context,
)
from vocalis_google.contents import function_declarations, history_turns
from vocalis_google.errors import api_error, close_error, http_error, parse_error
from vocalis_google.live_events import OUTPUT_RATE
from vocalis_google.live_session import INPUT_RATE, GeminiLiveSession

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from vocalis.chat import ChatContext

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
_CLOSE_TIMEOUT = 2.0
_MAX_MESSAGE = 16 * 2**20  # audio messages are small; a setup echo or an error is not huge either
_SENSITIVITY = {"low": "LOW", "high": "HIGH"}


class GeminiLive(RealtimeModel):
    """Gemini's native-audio models, speech to speech over the Live API.

    The server detects the user's turns by default, answers on its own and
    stops when the user talks over it (``interrupted``). Conversations
    survive the server's ``goAway`` and dropped connections through session
    resumption. ``sample_rate`` is the input rate (16 kHz);
    ``output_sample_rate``, that of the model's audio (24 kHz).
    """

    name: ClassVar[str] = "google"
    sample_rate: ClassVar[int] = INPUT_RATE
    output_sample_rate: ClassVar[int | None] = OUTPUT_RATE

    class Settings(GoogleSettings):
        """Settings, read from ``VOCALIS_REALTIME_GOOGLE_*``.

        Attributes:
            model: The Live model (``gemini-2.5-flash-native-audio-preview-12-2025``,
                ``gemini-3.1-flash-live-preview``...).
            voice: Prebuilt voice (``Puck``, ``Kore``, ``Charon``...); None: the server's.
            language: BCP-47 language of the speech (``en-US``); None: the model picks.
            temperature: Sampling temperature (0 to 2); None sends none.
            max_output_tokens: Most tokens one answer may take; None sends none.
            thinking_budget: Thinking tokens of 2.5 native-audio models (0 is off); None sends none.
            thinking_level: ``minimal``/``low``/``medium``/``high`` on Gemini 3.1 Live
                models; None sends none (later models take no thinking setting).
            automatic_activity_detection: The server detects the user's turns
                (default). Off: the user's activity starts with the audio that
                follows an answer request, and :meth:`create_response` ends it.
            start_sensitivity: How readily speech is detected (``low``/``high``).
            end_sensitivity: How readily the end of speech is detected.
            prefix_padding_ms: Speech needed before the start of speech is committed.
            silence_duration_ms: Silence that ends the user's turn.
            interrupt_on_activity: The user's speech cuts the model off
                (``START_OF_ACTIVITY_INTERRUPTS``); off: ``NO_INTERRUPTION``.
            input_transcription: Transcribe the user (for the chat history).
            output_transcription: Transcribe the model's audio.
            context_window_compression: Slide the context window, so sessions
                are not cut at the 15-minute audio limit.
            session_resumption: Ask for resumption handles, and resume on
                ``goAway`` or a dropped connection.
            report_interruptions: After a barge-in, tell the model what the
                user actually heard (its context holds all it generated).
            websocket_url: The full WebSocket URL, overriding the one derived
                from ``base_url``.
        """

        model_config = provider_settings_config("realtime", "google")

        model: str = DEFAULT_MODEL
        voice: str | None = "Puck"
        language: str | None = None
        temperature: float | None = Field(None, ge=0.0, le=2.0)
        max_output_tokens: int | None = Field(None, ge=1)
        thinking_budget: int | None = Field(None, ge=-1)
        thinking_level: Literal["minimal", "low", "medium", "high"] | None = None
        automatic_activity_detection: bool = True
        start_sensitivity: Literal["low", "high"] | None = None
        end_sensitivity: Literal["low", "high"] | None = None
        prefix_padding_ms: int | None = Field(None, ge=0)
        silence_duration_ms: int | None = Field(None, ge=0)
        interrupt_on_activity: bool = True
        input_transcription: bool = True
        output_transcription: bool = True
        context_window_compression: bool = True
        session_resumption: bool = True
        report_interruptions: bool = True
        websocket_url: str | None = None

        _one_thinking_setting = model_validator(mode="after")(one_thinking_setting)

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._sessions: weakref.WeakSet[GeminiLiveSession] = weakref.WeakSet()

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it."""
        return super().error(redact(message, secrets_of(self)), recoverable=recoverable, kind=kind)

    @property
    def url(self) -> str:
        """The ``BidiGenerateContent`` WebSocket URL."""
        s = self.settings
        if s.websocket_url:
            return s.websocket_url
        root = s.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{root}/ws/google.ai.generativelanguage.{s.api_version}.GenerativeService.BidiGenerateContent"

    async def prewarm(self) -> None:
        """Load the TLS context off the loop; each session opens its own socket."""
        await asyncio.to_thread(shared_ssl_context)

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[ToolSpec] = (),
        chat_ctx: ChatContext | None = None,
    ) -> GeminiLiveSession:
        """Open a session: handshake, ``setup``, ``setupComplete``; then the history.

        Raises:
            ProviderError: No key, or the server refused, closed or could not
                be reached (kind and ``recoverable`` by HTTP status or close code).
        """
        if not has_credentials(self.settings):
            raise missing_key_error(self)
        setup = self.setup_message(instructions, tools)
        history = history_turns(chat_ctx.items) if chat_ctx is not None else []
        session = GeminiLiveSession(self, setup, history)
        await session.start()
        self._sessions.add(session)
        logger.debug("{} connected: model {}", self.label, self.settings.model)
        return session

    def setup_message(self, instructions: str, tools: Sequence[ToolSpec] = ()) -> JSONObject:
        """The body of the ``setup`` message (without ``sessionResumption``)."""
        s = self.settings
        generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        speech: dict[str, Any] = {}
        if s.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": s.voice}}
        if s.language:
            speech["languageCode"] = s.language
        if speech:
            generation["speechConfig"] = speech
        optional = {"temperature": s.temperature, "maxOutputTokens": s.max_output_tokens}
        generation.update({key: value for key, value in optional.items() if value is not None})
        if s.thinking_budget is not None:
            generation["thinkingConfig"] = {"thinkingBudget": s.thinking_budget}
        elif s.thinking_level is not None:
            generation["thinkingConfig"] = {"thinkingLevel": s.thinking_level}
        model = s.model if "/" in s.model else f"models/{s.model}"
        setup: dict[str, Any] = {"model": model, "generationConfig": generation}
        if instructions.strip():
            setup["systemInstruction"] = {"parts": [{"text": instructions}]}
        if tools:
            setup["tools"] = [{"functionDeclarations": function_declarations(tools)}]
        realtime: dict[str, Any] = {}
        detection: dict[str, Any] = {}
        if not s.automatic_activity_detection:
            detection["disabled"] = True
        if s.start_sensitivity:
            detection["startOfSpeechSensitivity"] = f"START_SENSITIVITY_{_SENSITIVITY[s.start_sensitivity]}"
        if s.end_sensitivity:
            detection["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{_SENSITIVITY[s.end_sensitivity]}"
        timing = {"prefixPaddingMs": s.prefix_padding_ms, "silenceDurationMs": s.silence_duration_ms}
        detection.update({key: value for key, value in timing.items() if value is not None})
        if detection:
            realtime["automaticActivityDetection"] = detection
        if not s.interrupt_on_activity:
            realtime["activityHandling"] = "NO_INTERRUPTION"
        if realtime:
            setup["realtimeInputConfig"] = realtime
        if s.input_transcription:
            setup["inputAudioTranscription"] = {}
        if s.output_transcription:
            setup["outputAudioTranscription"] = {}
        if s.context_window_compression:
            setup["contextWindowCompression"] = {"slidingWindow": {}}
        return setup

    async def dial(self, setup: JSONObject, handle: str | None) -> ClientConnection:
        """Open a socket and set it up; returns it once ``setupComplete`` came.

        Args:
            setup: The ``setup`` body.
            handle: A resumption handle: the server restores that conversation.

        Raises:
            ProviderError: The handshake failed or the server refused the setup.
        """
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        s = self.settings
        body = dict(setup)
        if s.session_resumption:
            body["sessionResumption"] = {"handle": handle} if handle else {}
        tls = await asyncio.to_thread(shared_ssl_context) if self.url.startswith("wss") else None
        try:
            ws = await connect(
                self.url,
                additional_headers=auth_headers(s),
                open_timeout=s.timeout,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=_MAX_MESSAGE,
                ssl=tls,
                logger=RedactingLogger("websockets.client", secrets_of(self)),
            )
        except Exception as exc:
            raise self._handshake_error(exc) from exc
        try:
            await ws.send(json.dumps({"setup": body}))
            async with asyncio.timeout(s.timeout):
                while True:
                    raw = await ws.recv()
                    if not raw:
                        continue  # an empty frame carries nothing
                    reply = json.loads(raw)
                    if isinstance(reply, dict) and "setupComplete" in reply:
                        break
                    if (failure := parse_error(reply)) is not None:
                        raise api_error(self, failure, where="setup refused")
                    # Nothing else is due first; anything else is skipped, not fatal.
                    logger.debug("{}: skipping a message before setupComplete", self.label)
        except BaseException as exc:
            await ws.close()
            if isinstance(exc, ConnectionClosed):
                frame = exc.rcvd
                raise close_error(self, frame.code if frame else None, frame.reason if frame else "") from None
            if isinstance(exc, TimeoutError):
                raise self.error(f"no setupComplete within {s.timeout:g} s", kind=ErrorKind.TIMEOUT) from None
            if isinstance(exc, ValueError):
                raise self.error("the setup reply is not JSON", kind=ErrorKind.PROTOCOL) from None
            raise
        return ws

    def _handshake_error(self, exc: BaseException) -> ProviderError:
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

        if isinstance(exc, InvalidStatus):
            body = bytes(exc.response.body or b"").decode("utf-8", "replace")
            return http_error(self, exc.response.status_code, body or exc.response.reason_phrase)
        if isinstance(exc, InvalidURI):
            return self.error(f"bad WebSocket URL: {exc}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
        if isinstance(exc, TimeoutError):
            return self.error(f"handshake timed out after {self.settings.timeout:g} s", kind=ErrorKind.TIMEOUT)
        if isinstance(exc, OSError | EOFError):
            return self.error(f"connection failed: {type(exc).__name__}: {exc}", kind=ErrorKind.CONNECTION)
        if isinstance(exc, InvalidHandshake):
            return self.error(f"handshake failed: {type(exc).__name__}: {exc}", kind=ErrorKind.PROTOCOL)
        return self.error(f"connection failed: {type(exc).__name__}: {exc}", recoverable=False)

    async def aclose(self) -> None:
        """Close the open sessions. Idempotent."""
        sessions = list(self._sessions)
        self._sessions.clear()
        for session in sessions:
            await session.aclose()

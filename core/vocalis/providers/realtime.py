"""Speech-to-speech (realtime) model contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.llm import ToolCallRequest, ToolSpec
from vocalis.providers.streams import ProviderStream

if TYPE_CHECKING:
    from vocalis.chat import ChatContext


class RealtimeEventType(StrEnum):
    """What a :class:`RealtimeEvent` reports."""

    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    INPUT_TRANSCRIPT = "input_transcript"
    RESPONSE_STARTED = "response_started"
    AUDIO = "audio"
    OUTPUT_TRANSCRIPT = "output_transcript"
    FUNCTION_CALL = "function_call"
    RESPONSE_DONE = "response_done"
    ERROR = "error"


@dataclass(slots=True)
class RealtimeEvent:
    """An event from a realtime model session.

    Attributes:
        type: What happened.
        text: Transcript text (input or output delta).
        is_final: For input transcripts, whether the text is final.
        frame: Audio for ``AUDIO`` events.
        tool_calls: Calls for ``FUNCTION_CALL`` events.
        response_id: The response an output event belongs to.
        interrupted: On ``RESPONSE_DONE``, whether it was cut short.
        error: On ``ERROR``: a non-fatal failure the model reported (the
            session reports it and keeps going; a fatal one ends the stream
            with an exception instead).
    """

    type: RealtimeEventType
    text: str = ""
    is_final: bool = True
    frame: AudioFrame | None = None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    response_id: str = ""
    interrupted: bool = False
    error: BaseException | None = None


class RealtimeSession(ProviderStream[RealtimeEvent]):
    """One connection to a realtime model."""

    def push_audio(self, frame: AudioFrame) -> None:
        """Send user audio at the model's ``sample_rate``."""
        raise NotImplementedError

    async def create_response(self, instructions: str | None = None) -> None:
        """Ask the model to respond now (optionally with extra instructions)."""
        raise NotImplementedError

    async def send_text(self, text: str) -> None:
        """Add a user text message to the conversation."""
        raise NotImplementedError

    async def cancel_response(self, *, played_seconds: float | None = None) -> None:
        """Stop the current response; truncate it to what the user heard."""
        raise NotImplementedError

    async def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        """Return a tool's result to the model."""
        raise NotImplementedError

    async def update_instructions(self, instructions: str) -> None:
        """Replace the session's instructions."""
        raise NotImplementedError


class RealtimeModel(Provider):
    """Base class of speech-to-speech models.

    Attributes:
        sample_rate: Rate of the user audio the model takes (and of the
            audio it speaks, unless ``output_sample_rate`` says otherwise).
        output_sample_rate: The rate of the audio the model speaks; None:
            the same as ``sample_rate``. Each ``AUDIO`` event's frame carries
            its own rate as well; this is what a caller may expect up front.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.REALTIME
    sample_rate: ClassVar[int] = 24_000
    output_sample_rate: ClassVar[int | None] = None

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[ToolSpec] = (),
        chat_ctx: ChatContext | None = None,
    ) -> RealtimeSession:
        """Open a session configured with instructions and tools."""
        raise NotImplementedError

"""What the pipeline reports to observers as a reply runs.

The pipeline does not keep metrics or traces itself. It reports a few
moments of each agent utterance as :data:`StageEvent` values — the
utterance started, an LLM request started / gave its first chunk / ended,
a tool call finished, synthesis started, the first audio went out, the
utterance ended — and observers (the session's metrics recorder, traces,
an application's own :class:`Observer`) build what they need from them.

Nothing is reported per audio frame or per token: each event is one per
stage of one utterance, so observing costs the hot path nothing. All times
are the event loop's clock (``loop.time()``), exact under the virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from vocalis.speech import SpeechSource


@dataclass(frozen=True, slots=True)
class UserTurnTiming:
    """What the turn controller measured for a committed user turn (loop times)."""

    speech_started_at: float | None = None
    speech_ended_at: float | None = None
    vad_end_at: float | None = None
    stt_final_at: float | None = None
    decided_at: float | None = None
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class UtteranceStarted:
    """An agent utterance starts running (its turn in the speech queue came).

    Attributes:
        speech_id: The utterance's id (every later event of it carries it).
        source: Why the agent speaks (a user turn, ``say``, ``reply``, ...).
        at: Loop time.
        user_timing: The user turn it answers, if any.
        user_text: The user's words it answers, if any.
    """

    speech_id: str
    source: SpeechSource
    at: float
    user_timing: UserTurnTiming | None = None
    user_text: str | None = None


@dataclass(frozen=True, slots=True)
class LLMRequestStarted:
    """An LLM request of the utterance started (a reply makes one per tool round)."""

    speech_id: str
    provider: str
    model: str | None
    at: float
    preemptive: bool = False


@dataclass(frozen=True, slots=True)
class LLMFirstChunk:
    """The current LLM request gave its first chunk (text or tool call)."""

    speech_id: str
    at: float


@dataclass(frozen=True, slots=True)
class LLMRequestEnded:
    """The current LLM request's stream ended (or failed, or was cut off).

    Attributes:
        prompt_tokens: Tokens in, when the provider reported usage (else 0).
        completion_tokens: Tokens out, when reported (else 0).
        chunks: Chunks received (an estimate of tokens without usage).
    """

    speech_id: str
    at: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    chunks: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool call of the utterance finished.

    Attributes:
        started_at: Loop time the call started.
        duration: Seconds it ran.
    """

    speech_id: str
    name: str
    call_id: str
    started_at: float
    duration: float
    is_error: bool


@dataclass(frozen=True, slots=True)
class SynthesisStarted:
    """The first text of the utterance reached its TTS."""

    speech_id: str
    provider: str
    model: str | None
    at: float


@dataclass(frozen=True, slots=True)
class AgentAudioStarted:
    """The utterance's first audio reached the output.

    Attributes:
        user_speech_ended_at: When the user stopped speaking, for pipelines
            whose turn detection happens in the model (realtime).
    """

    speech_id: str
    at: float
    user_speech_ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class SynthesisEnded:
    """The utterance's TTS is done.

    Attributes:
        characters: Characters of text sent to the TTS.
        audio_duration: Seconds of audio it produced.
    """

    speech_id: str
    characters: int
    audio_duration: float


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    """The utterance is over: played, interrupted, failed or discarded.

    Attributes:
        text: What the user heard of it.
        discarded: Dropped before it said anything (e.g. a superseded reply).
    """

    speech_id: str
    at: float
    text: str
    interrupted: bool
    discarded: bool


StageEvent = (
    UtteranceStarted
    | LLMRequestStarted
    | LLMFirstChunk
    | LLMRequestEnded
    | ToolCallFinished
    | SynthesisStarted
    | AgentAudioStarted
    | SynthesisEnded
    | UtteranceEnded
)
"""Any of the moments an observer is told about."""


class Observer(Protocol):
    """Watches a session's utterances (add one with ``session.add_observer``).

    Called synchronously on the session's event loop, once per stage: keep
    it quick, and never block. An exception is logged and does not reach the
    session.
    """

    def on_stage(self, event: StageEvent) -> None:
        """One moment of an utterance."""
        ...


class Observers:
    """A session's observers, told of each stage in the order they were added."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def add(self, observer: Observer) -> None:
        """Tell ``observer`` of every later stage."""
        self._observers.append(observer)

    def remove(self, observer: Observer) -> None:
        """Stop telling ``observer`` (no error when it was not added)."""
        if observer in self._observers:
            self._observers.remove(observer)

    def notify(self, event: StageEvent) -> None:
        """Tell every observer; one that raises is logged and skipped."""
        for observer in tuple(self._observers):
            try:
                observer.on_stage(event)
            except Exception:
                logger.exception("observer {!r} failed on {}", observer, type(event).__name__)

"""When the user's speech cuts the agent off, and when it only seems to.

Speech that lasts ``min_duration`` over the agent, enough words, or a stop
phrase interrupts it (:class:`~vocalis.pipeline.config.InterruptConfig`);
backchannels ("yeah") never do. In hybrid mode long speech first *pauses*
the agent: if no words follow (a cough, a door) or only a backchannel, it is
a false interruption and the agent resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.pipeline.config import InterruptConfig, InterruptMode
from vocalis.states import AgentState

if TYPE_CHECKING:
    from vocalis.pipeline.ports import TurnHost
    from vocalis.speech import SpeechHandle


class Interruptions:
    """Decides whether user speech interrupts, pauses or leaves the agent.

    Args:
        host: The session.
        config: Interruption settings.
        user_speaking: Whether the user is speaking now.
        speech_duration: The VAD's speech time in the current segment, if known.
        counts: Where ``interruptions`` and ``false_interruptions`` are counted.
    """

    def __init__(
        self,
        host: TurnHost,
        config: InterruptConfig,
        user_speaking: Callable[[], bool],
        speech_duration: Callable[[], float | None],
        counts: dict[str, int],
    ) -> None:
        self._host = host
        self.config = config
        self._user_speaking = user_speaking
        self._speech_duration = speech_duration
        self._counts = counts
        self._paused: SpeechHandle | None = None
        self._paused_at = 0.0
        self._long_timer: asyncio.TimerHandle | None = None
        self._false_timer: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        """Whether the agent is paused by user speech (a possible false interruption)."""
        return self._paused is not None

    def agent_speech(self) -> SpeechHandle | None:
        """The agent's utterance in progress, if any."""
        handle = self._host.current_speech
        return handle if handle is not None and not handle.done() else None

    def _interruptible(self) -> bool:
        handle = self.agent_speech()
        return self.config.enabled and handle is not None and handle.allow_interruptions

    # -- user speech -------------------------------------------------------------
    def speech_starting(self) -> None:
        """The user speaks again: a pending false interruption waits for the end."""
        self._cancel_false_timer()

    def watch_speech(self) -> None:
        """The user started speaking: over an interruptible agent, time it."""
        config = self.config
        if self._interruptible() and config.mode in (InterruptMode.VAD, InterruptMode.HYBRID):
            self._long_timer = asyncio.get_running_loop().call_later(config.min_duration, self._on_long_speech)

    def speech_ended(self) -> None:
        """The user stopped speaking: a paused agent resumes unless words follow."""
        self._cancel(self._long_timer)
        self._long_timer = None
        if self._paused is not None:
            self._cancel(self._false_timer)
            self._false_timer = asyncio.get_running_loop().call_later(
                self.config.false_interruption_timeout, self._on_false_interruption
            )

    def _on_long_speech(self) -> None:
        """The user's sound lasted ``min_duration`` over the agent."""
        self._long_timer = None
        handle = self.agent_speech()
        if handle is None or not self._interruptible():
            return
        config = self.config
        spoken = self._speech_duration()
        if spoken is not None and spoken + 1e-9 < config.min_duration:
            # Part of the time since the start was the VAD's hangover silence.
            self._long_timer = asyncio.get_running_loop().call_later(config.min_duration - spoken, self._on_long_speech)
            return
        if config.mode is InterruptMode.HYBRID and config.resume_false_interruption:
            output = self._host.audio_output
            if output.speaking and not output.paused:
                output.pause()
                self._paused = handle
                self._paused_at = asyncio.get_running_loop().time()
                self._false_timer = asyncio.get_running_loop().call_later(
                    config.false_interruption_timeout, self._on_false_interruption
                )
                self._host.set_agent_state(AgentState.LISTENING)
                logger.debug("agent paused: user speech over it")
                return
        self.interrupt_now("speech")

    # -- words -------------------------------------------------------------------
    def judge_words(self, transcript: str) -> None:
        """Decide on an interruption from the words heard so far."""
        if not self._interruptible():
            return
        config = self.config
        if config.has_interrupt_phrase(transcript):
            self.interrupt_now("phrase")
        elif config.is_backchannel(transcript):
            return
        elif self._paused is not None:
            self.interrupt_now("words")
        elif config.mode in (InterruptMode.STT, InterruptMode.HYBRID) and len(transcript.split()) >= config.min_words:
            self.interrupt_now("words")

    def interrupt_now(self, reason: str) -> None:
        """Cut the agent's utterance off (if it allows it)."""
        handle = self.agent_speech()
        self._paused = None
        self._cancel_false_timer()
        if handle is not None and handle.interrupt():
            self._counts["interruptions"] += 1
            self._host.emit("interruption", {"reason": reason, "speech_id": handle.id})
            logger.debug("user interrupted the agent ({})", reason)

    def resume(self, reason: str) -> None:
        """Let a paused agent speak on."""
        handle, self._paused = self._paused, None
        self._cancel_false_timer()
        if handle is None or handle.done():
            return
        self._host.audio_output.resume()
        self._host.set_agent_state(AgentState.SPEAKING)
        logger.debug("agent resumed ({})", reason)

    def _on_false_interruption(self) -> None:
        self._false_timer = None
        if self._paused is None:
            return
        timeout = self.config.false_interruption_timeout
        if self._user_speaking() and asyncio.get_running_loop().time() - self._paused_at < 3 * timeout:
            # Sound goes on without words yet: give the recogniser more time,
            # but never leave the agent paused for good (steady noise).
            self._false_timer = asyncio.get_running_loop().call_later(timeout, self._on_false_interruption)
            return
        self._counts["false_interruptions"] += 1
        self._host.emit("false_interruption", {"speech_id": self._paused.id})
        self.resume("no words followed")

    # -- timers ------------------------------------------------------------------
    def _cancel_false_timer(self) -> None:
        self._cancel(self._false_timer)
        self._false_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def aclose(self) -> None:
        """Cancel the timers."""
        self._cancel(self._long_timer)
        self._cancel(self._false_timer)

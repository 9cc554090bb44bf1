"""The turn controller: when the user's turn ends, and what it commits.

After the user stops, it waits a delay that depends on the turn detector's
probability (:class:`~vocalis.pipeline.config.EOUConfig`), then commits the
transcript as a user turn. It waits for every final the recogniser still
owes (up to ``stt_timeout``), drops a lone backchannel said over the agent,
and decides anyway when the recogniser goes quiet while the VAD still hears
noise (the watchdog). Interruptions are judged by :class:`Interruptions`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, ChatRole
from vocalis.pipeline.config import EOUConfig, InterruptConfig, ProviderTimeouts
from vocalis.pipeline.turn_taking.detector import TurnAudio, predict
from vocalis.pipeline.turn_taking.interruptions import Interruptions
from vocalis.pipeline.turn_taking.segments import OwedFinals, _Segment
from vocalis.stages import UserTurnTiming

if TYPE_CHECKING:
    from vocalis.pipeline.generation import Preemptive
    from vocalis.pipeline.ports import TurnHost
    from vocalis.providers.eou import EOU


class TurnController:
    """Decides when the user's turn ends and when they interrupt the agent.

    Args:
        host: The session whose turns are managed (its turn port).
        eou: End-of-turn settings.
        interrupt: Interruption settings.
        detector: Optional end-of-utterance model.
        start_preemptive: Builds a preemptive generation for a transcript.
        speech_duration: The VAD's speech time in the current segment.
        timeouts: Limits on the turn detector and the final transcript.
        on_stt_stuck: Called with the seconds waited when no final
            transcript came within ``timeouts.stt_final``; it replaces the
            recogniser's stream and calls :meth:`stt_failed`.
    """

    def __init__(
        self,
        host: TurnHost,
        eou: EOUConfig,
        interrupt: InterruptConfig,
        detector: EOU | None,
        start_preemptive: Callable[[str], Preemptive] | None = None,
        speech_duration: Callable[[], float | None] | None = None,
        *,
        timeouts: ProviderTimeouts | None = None,
        on_stt_stuck: Callable[[float], None] | None = None,
    ) -> None:
        self.host = host
        self.timeouts = timeouts or ProviderTimeouts()
        self.eou = eou
        self.interrupt = interrupt
        self.detector = detector
        self._start_preemptive = start_preemptive
        self.counts = {"interruptions": 0, "false_interruptions": 0, "backchannels": 0}
        self.user_speaking = False
        self.segments = OwedFinals(self.timeouts, on_stt_stuck)
        self.interruptions = Interruptions(
            host, interrupt, lambda: self.user_speaking, speech_duration or (lambda: None), self.counts
        )
        self._audio = TurnAudio()
        self._speech_started_at = 0.0
        self._speech_ended_at = 0.0
        self._finals: list[str] = []
        self._over_agent = False  # this utterance began while the agent spoke
        self._audio_eou: asyncio.Task[float] | None = None
        self._actual_end: float | None = None
        self._final_at: float | None = None
        self._probability: float | None = None
        self._eou_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.preemptive: Preemptive | None = None

    @property
    def turn_pending(self) -> bool:
        """Whether the user is speaking, a final transcript is still owed, or a
        user turn is waiting to be committed."""
        return self.user_speaking or self.segments.owed or bool(self._finals) or self._eou_task is not None

    # -- inputs ------------------------------------------------------------------
    def push_audio(self, frame: AudioFrame) -> None:
        """User audio at the detector's rate, kept for an audio turn detector."""
        if self.detector is None or not self.detector.uses_audio:
            return
        self._audio.push(frame, in_turn=self.user_speaking or bool(self._finals))

    def speech_started(self) -> None:
        """The VAD (or STT) says the user started speaking."""
        self.user_speaking = True
        self._speech_started_at = asyncio.get_running_loop().time()
        self.segments.speech_started()
        self.interruptions.speech_starting()
        self._cancel_eou()
        self._cancel_audio_eou()
        if not self._finals:
            self._over_agent = self.interruptions.agent_speech() is not None
        self.host.user_speech_started()
        self.interruptions.watch_speech()

    def speech_ended(self, silence: float = 0.0) -> None:
        """The VAD (or STT) says the user stopped speaking.

        Args:
            silence: Seconds of silence the VAD waited before saying so; the
                user actually stopped that long ago (used for metrics).
        """
        self.user_speaking = False
        self._speech_ended_at = asyncio.get_running_loop().time()
        self._actual_end = self._speech_ended_at - max(0.0, silence)
        self.segments.speech_ended(self._speech_ended_at - self._speech_started_at)
        self._cancel(self._watchdog)
        self._watchdog = None
        self.interruptions.speech_ended()
        self.host.user_speech_stopped()
        if self.detector is not None and self.detector.uses_audio and self._audio:
            # An audio model needs no transcript: judge the turn while the STT works.
            self._cancel_audio_eou()
            context = self._pending_context(" ".join([*self._finals, self.segments.interim]).strip())
            self._audio_eou = asyncio.get_running_loop().create_task(self._predict(context, self._audio.audio()))
        self._schedule_end_of_turn()

    def interim(self, text: str, language: str | None) -> None:
        """An interim transcript (may still change)."""
        self.segments.add_interim(text)
        self.host.emit("on_speech_in", {"text": text, "is_final": False, "language": language})
        self._arm_watchdog()
        self.interruptions.judge_words(" ".join([*self._finals, text]))

    def final(self, text: str, language: str | None) -> None:
        """A final transcript, for the oldest speech segment that owes one.

        It joins the pending turn, or starts one if the turn its speech
        belonged to was already committed: finals are never dropped, only
        the words a turn already took from the segment's interim.
        """
        text = self.segments.take_final(text, self.user_speaking)
        if text:
            self._final_at = asyncio.get_running_loop().time()
            self._finals.append(text)
            self.host.user_activity()
            self.host.emit("on_speech_in", {"text": text, "is_final": True, "language": language})
            self._arm_watchdog()
            self.interruptions.judge_words(" ".join(self._finals))
        if not self.user_speaking:
            self._schedule_end_of_turn()

    def stt_failed(self) -> None:
        """The recogniser failed or was stuck, and was replaced: the finals it
        owed will never come. The turn goes on with what was heard; if no
        words were heard of a pending turn, the session apologises."""
        self.segments.stt_failed(self.user_speaking)
        if not self.user_speaking:
            self._schedule_end_of_turn()

    # -- end of turn -----------------------------------------------------------------
    def _pending_context(self, transcript: str) -> ChatContext:
        pending = self.host.agent.chat_context.copy()
        if transcript:
            pending.add_message(ChatRole.USER, transcript)
        return pending

    def _arm_watchdog(self) -> None:
        if not self.user_speaking or not self.eou.stt_watchdog:
            return
        self._cancel(self._watchdog)
        self._watchdog = asyncio.get_running_loop().call_later(self.eou.stt_watchdog, self._on_watchdog)

    def _on_watchdog(self) -> None:
        """Transcripts stopped while the VAD still hears sound: decide anyway."""
        self._watchdog = None
        if self.user_speaking and (self._finals or self.segments.interim):
            logger.debug("STT went quiet while VAD still hears speech: deciding the turn")
            self.user_speaking = False
            self._speech_ended_at = asyncio.get_running_loop().time()
            self.host.user_speech_stopped()
            self._schedule_end_of_turn()

    def _schedule_end_of_turn(self) -> None:
        self._cancel_eou()
        task = self._eou_task = asyncio.get_running_loop().create_task(self._end_of_turn())
        task.add_done_callback(self._eou_done)

    def _eou_done(self, task: asyncio.Task[None]) -> None:
        # A decision that ended without a turn (no words came) leaves nothing pending.
        if self._eou_task is task:
            self._eou_task = None

    def _cancel_eou(self) -> None:
        if self._eou_task is not None:
            self._eou_task.cancel()
            self._eou_task = None

    def _cancel_audio_eou(self) -> None:
        task, self._audio_eou = self._audio_eou, None
        if task is not None and not task.done():
            task.cancel()

    async def _end_of_turn(self) -> None:
        config = self.eou
        if self.segments.owed:
            # Words the user said are still being recognised: wait for them
            # (each final reschedules this task), up to stt_timeout.
            await asyncio.sleep(config.stt_timeout)
        # The interim as it stands now is what this decision takes; a newer
        # one (the STT goes on while the decision waits) comes with its final.
        interim, interim_of = self.segments.interim_snapshot()
        transcript = " ".join([*self._finals, interim]).strip()
        if not transcript:
            if self.segments.lost_words and not self.segments.owed:
                self.segments.lost_words = False
                self.host.apologize()
            return
        if self._over_agent and self.interrupt.is_backchannel(transcript) and self.interruptions.agent_speech():
            self._drop_backchannel(transcript)
            return
        self._maybe_preempt(transcript)
        probability: float | None = None
        if self.detector is not None:
            try:
                if self._audio_eou is not None:
                    probability = await asyncio.shield(self._audio_eou)
                else:
                    probability = await self._predict(self._pending_context(transcript), None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._audio_eou = None
                self.host.report_error(self.detector.label, exc)
        self._probability = probability
        self.host.emit("end_of_turn_probability", {"probability": probability, "transcript": transcript})
        # The delay is silence after the user's last word: it counts from when
        # they actually stopped (the VAD reports that after its own silence
        # hang-over) and not from the transcript, so neither the VAD's nor
        # the recogniser's latency is added on top.
        stopped = self._actual_end if self._actual_end is not None else self._speech_ended_at
        remaining = stopped + config.delay_for(probability) - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if self.user_speaking:
            return
        self._eou_task = None
        self._commit(transcript, interim, interim_of)

    async def _predict(self, context: ChatContext, audio: AudioFrame | None) -> float:
        assert self.detector is not None
        return await predict(self.detector, context, audio, self.timeouts.eou_predict)

    def _drop_backchannel(self, transcript: str) -> None:
        self.counts["backchannels"] += 1
        self._reset_turn()
        self.host.emit("backchannel", {"text": transcript})
        if self.interruptions.paused:
            self.interruptions.resume("backchannel")

    def _commit(self, transcript: str, interim: str = "", interim_of: _Segment | None = None) -> None:
        # A paused agent was cut off by this turn. An agent still speaking was
        # not (too few words): the new turn is answered after it finishes.
        if self.interruptions.paused:
            self.interruptions.interrupt_now("turn")
        timing = UserTurnTiming(
            speech_started_at=self._speech_started_at,
            speech_ended_at=self._actual_end,
            vad_end_at=self._speech_ended_at,
            # Taken from an interim, the last speech has no final yet.
            stt_final_at=None if interim and interim_of is not None else self._final_at,
            decided_at=asyncio.get_running_loop().time(),
            probability=self._probability,
        )
        self.segments.turn_committed(interim, interim_of)
        self._reset_turn()
        self.host.start_user_turn(transcript, timing=timing)

    def _reset_turn(self) -> None:
        # Finals still owed are kept: their words start the next turn.
        self.segments.reset_turn()
        self._audio_eou = None
        self._finals.clear()
        self._audio.clear()
        self._over_agent = False
        self._final_at = None
        self._probability = None

    # -- preemptive generation ---------------------------------------------------------
    def _maybe_preempt(self, transcript: str) -> None:
        if not self.eou.preemptive_generation or self._start_preemptive is None:
            return
        if self.preemptive is not None and self.preemptive.transcript == transcript:
            return
        self.drop_preemptive()
        if self.interruptions.agent_speech() is None:
            self.preemptive = self._start_preemptive(transcript)

    def drop_preemptive(self) -> None:
        """Cancel a preemptive generation that will not be used."""
        if self.preemptive is not None:
            self.preemptive.cancel()
            self.preemptive = None

    def take_preemptive(self, transcript: str) -> Preemptive | None:
        """The preemptive generation for ``transcript``, if it is still valid."""
        preemptive, self.preemptive = self.preemptive, None
        if preemptive is None:
            return None
        if preemptive.matches(transcript, self.host.agent.chat_context):
            return preemptive
        preemptive.cancel()
        return None

    # -- lifecycle ---------------------------------------------------------------------
    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    async def aclose(self) -> None:
        """Cancel timers and pending decisions."""
        self.interruptions.aclose()
        self._cancel(self._watchdog)
        self.segments.aclose()
        self.drop_preemptive()
        self._cancel_audio_eou()
        task, self._eou_task = self._eou_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

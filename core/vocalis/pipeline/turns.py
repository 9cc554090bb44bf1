"""Turn-taking for the cascading pipeline: end of turn and interruptions.

The controller turns VAD and STT events into three decisions:

- **End of turn**: after the user stops, wait a delay that depends on the
  turn detector's probability (:class:`~vocalis.turn.EOUConfig`), then commit
  the transcript as a user turn. A watchdog decides when the STT goes quiet
  while the VAD still hears noise.
- **Interruption** (:class:`~vocalis.turn.InterruptConfig`): user speech that
  lasts long enough, or enough words, or a stop phrase, cuts the agent off;
  backchannels ("yeah") never do.
- **False interruption**: in hybrid mode the agent first *pauses*; if no
  words follow (a cough, a door) or only a backchannel, it resumes.

Nothing recognised is lost: every speech segment the recogniser still owes a
final for is kept in order (:class:`_Segment`), the end of turn waits for
those finals (up to ``stt_timeout``), and a final that arrives after its turn
was committed starts, or joins, the next turn. A turn committed from an
interim remembers the words it took, so the segment's final adds only the
rest.
"""

from __future__ import annotations

import asyncio
import difflib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame, concat
from vocalis.chat import ChatRole
from vocalis.metrics_recorder import UserTurnTiming
from vocalis.pipeline.guards import check_probability
from vocalis.providers.base import ProviderError
from vocalis.states import AgentState
from vocalis.turn import EOUConfig, InterruptConfig, InterruptMode, ProviderTimeouts

if TYPE_CHECKING:
    from vocalis.pipeline.generation import Preemptive
    from vocalis.providers.eou import EOU
    from vocalis.session import AgentSession
    from vocalis.speech import SpeechHandle

_MAX_TURN_AUDIO = 8.0  # seconds kept for audio turn detectors (their window)
_PREROLL = 0.5  # seconds before the VAD start kept for them


class _Segment:
    """One stretch of user speech (VAD start to end) and its final transcript.

    Attributes:
        taken: Words of it already committed as (part of) a turn from its
            interim transcript; its final adds only the words after them.
    """

    __slots__ = ("taken", "words_pending")

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.words_pending = False  # an interim came after its last final


class TurnController:
    """Decides when the user's turn ends and when they interrupt the agent.

    Args:
        session: The session whose turns are managed.
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
        session: AgentSession,
        eou: EOUConfig,
        interrupt: InterruptConfig,
        detector: EOU | None,
        start_preemptive: Any = None,
        speech_duration: Callable[[], float | None] | None = None,
        *,
        timeouts: ProviderTimeouts | None = None,
        on_stt_stuck: Callable[[float], None] | None = None,
    ) -> None:
        self.session = session
        self.timeouts = timeouts or ProviderTimeouts()
        self._on_stt_stuck = on_stt_stuck
        # Flushed segments whose final the recogniser still owes, oldest first.
        self._owed: deque[_Segment] = deque()
        self._open: _Segment | None = None  # speech started, its end (the STT flush) not yet
        self._interim_of: _Segment | None = None  # the segment the current interim belongs to
        self._final_timer: asyncio.TimerHandle | None = None
        self._lost_words = False  # the recogniser failed while the user's turn was pending
        self._unasked_final = False  # a final came during the current speech, before its end
        self.eou = eou
        self.interrupt = interrupt
        self.detector = detector
        self._start_preemptive = start_preemptive
        self._speech_duration = speech_duration or (lambda: None)
        self.user_speaking = False
        self._speech_started_at = 0.0
        self._speech_ended_at = 0.0
        self._finals: list[str] = []
        self._interim = ""
        self._over_agent = False  # this utterance began while the agent spoke
        self._turn_audio: list[AudioFrame] = []
        self._preroll: deque[AudioFrame] = deque()
        self._preroll_seconds = 0.0
        self._turn_audio_seconds = 0.0
        self._paused: SpeechHandle | None = None
        self._paused_at = 0.0
        self._audio_eou: asyncio.Task[float] | None = None
        self._actual_end: float | None = None
        self._final_at: float | None = None
        self._probability: float | None = None
        self._eou_task: asyncio.Task[None] | None = None
        self._interrupt_timer: asyncio.TimerHandle | None = None
        self._false_timer: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.preemptive: Preemptive | None = None
        self.counts = {"interruptions": 0, "false_interruptions": 0, "backchannels": 0}

    @property
    def turn_pending(self) -> bool:
        """Whether the user is speaking, a final transcript is still owed, or a
        user turn is waiting to be committed."""
        return self.user_speaking or bool(self._owed) or bool(self._finals) or self._eou_task is not None

    # -- inputs ------------------------------------------------------------------
    def push_audio(self, frame: AudioFrame) -> None:
        """User audio at the detector's rate, kept while the user speaks.

        Half a second before the VAD's start is kept too, since the VAD
        fires only after some speech and the detector should hear the onset.
        """
        if self.detector is None or not self.detector.uses_audio:
            return
        if not self.user_speaking and not self._finals:
            self._preroll.append(frame)
            self._preroll_seconds += frame.duration
            while self._preroll_seconds - self._preroll[0].duration >= _PREROLL:
                self._preroll_seconds -= self._preroll.popleft().duration
            return
        if self._preroll:
            self._turn_audio.extend(self._preroll)
            self._turn_audio_seconds += self._preroll_seconds
            self._preroll.clear()
            self._preroll_seconds = 0.0
        self._turn_audio.append(frame)
        self._turn_audio_seconds += frame.duration
        while self._turn_audio_seconds > _MAX_TURN_AUDIO and len(self._turn_audio) > 1:
            self._turn_audio_seconds -= self._turn_audio.pop(0).duration

    def speech_started(self) -> None:
        """The VAD (or STT) says the user started speaking."""
        loop = asyncio.get_running_loop()
        self.user_speaking = True
        self._speech_started_at = loop.time()
        self._unasked_final = False
        if self._open is None:
            self._open = _Segment()
        self._cancel(self._false_timer)
        self._false_timer = None
        self._cancel_eou()
        self._cancel_audio_eou()
        if not self._finals:
            self._over_agent = self._agent_speech() is not None
        self.session._on_user_speech_started()
        config = self.interrupt
        if self._interruptible() and config.mode in (InterruptMode.VAD, InterruptMode.HYBRID):
            self._interrupt_timer = loop.call_later(config.min_duration, self._on_long_speech)

    def speech_ended(self, silence: float = 0.0) -> None:
        """The VAD (or STT) says the user stopped speaking.

        Args:
            silence: Seconds of silence the VAD waited before saying so; the
                user actually stopped that long ago (used for metrics).
        """
        self.user_speaking = False
        segment, self._open = self._open or _Segment(), None
        self._speech_ended_at = asyncio.get_running_loop().time()
        self._actual_end = self._speech_ended_at - max(0.0, silence)
        if not self._unasked_final or segment.words_pending:
            # A recogniser that finalised this speech on its own owes nothing
            # more, unless words came after that final.
            self._owed.append(segment)
            self._arm_final_timer(self._speech_ended_at - self._speech_started_at)
        self._cancel(self._interrupt_timer)
        self._interrupt_timer = None
        self._cancel(self._watchdog)
        self._watchdog = None
        if self._paused is not None:
            self._cancel(self._false_timer)
            self._false_timer = asyncio.get_running_loop().call_later(
                self.interrupt.false_interruption_timeout, self._on_false_interruption
            )
        self.session._on_user_speech_stopped()
        if self.detector is not None and self.detector.uses_audio and self._turn_audio:
            # An audio model needs no transcript: judge the turn while the STT works.
            self._cancel_audio_eou()
            context = self._pending_context(" ".join([*self._finals, self._interim]).strip())
            self._audio_eou = asyncio.get_running_loop().create_task(
                self._predict(context, concat(self._turn_audio))
            )
        self._schedule_end_of_turn()

    def _pending_context(self, transcript: str) -> Any:
        pending = self.session.agent.chat_context.copy()
        if transcript:
            pending.add_message(ChatRole.USER, transcript)
        return pending

    def _cancel_audio_eou(self) -> None:
        task, self._audio_eou = self._audio_eou, None
        if task is not None and not task.done():
            task.cancel()

    def interim(self, text: str, language: str | None) -> None:
        """An interim transcript (may still change)."""
        self._interim = text
        self._interim_of = self._open or (self._owed[-1] if self._owed else None)
        if self._interim_of is not None:
            self._interim_of.words_pending = True
        self.session.emit("on_speech_in", {"text": text, "is_final": False, "language": language})
        self._arm_watchdog()
        self._judge_words(" ".join([*self._finals, text]))

    def final(self, text: str, language: str | None) -> None:
        """A final transcript, for the oldest speech segment that owes one.

        It joins the pending turn, or starts one if the turn its speech
        belonged to was already committed: finals are never dropped, only
        the words a turn already took from the segment's interim.
        """
        segment: _Segment | None
        if self._owed:
            segment = self._owed.popleft()
            self._cancel(self._final_timer)
            self._final_timer = None
            if self._owed:
                self._arm_final_timer(0.0)
        else:
            segment = self._open
            if self.user_speaking:
                self._unasked_final = True
        taken: list[str] = []
        if segment is not None:
            taken, segment.taken = segment.taken, []
            segment.words_pending = False
        text = _untaken(text.strip(), taken)
        of = self._interim_of
        if of is not None and (of is segment or (of is not self._open and of not in self._owed)):
            # The interim's segment is finalised: its words are in the finals.
            self._interim, self._interim_of = "", None
        if text:
            self._final_at = asyncio.get_running_loop().time()
            self._finals.append(text)
            if self._interim_of is None:
                self._interim = ""
            self.session._mark_user_activity()
            self.session.emit("on_speech_in", {"text": text, "is_final": True, "language": language})
            self._arm_watchdog()
            self._judge_words(" ".join(self._finals))
        if not self.user_speaking:
            self._schedule_end_of_turn()

    def _arm_final_timer(self, spoken: float) -> None:
        limit = self.timeouts.stt_final
        if limit is None or self._on_stt_stuck is None or self._final_timer is not None:
            return
        # A recogniser that is not streaming needs time in proportion to the speech.
        waited = limit + max(0.0, spoken)
        loop = asyncio.get_running_loop()
        self._final_timer = loop.call_later(waited, self._on_stt_stuck, round(waited, 1))

    def stt_failed(self) -> None:
        """The recogniser failed or was stuck, and was replaced: the finals it
        owed will never come. The turn goes on with what was heard; if no
        words were heard of a pending turn, the session apologises."""
        pending = self.user_speaking or bool(self._owed)
        self._owed.clear()
        self._cancel(self._final_timer)
        self._final_timer = None
        if pending:
            self._lost_words = True
        if not self.user_speaking:
            self._schedule_end_of_turn()

    # -- interruptions -------------------------------------------------------------
    def _agent_speech(self) -> SpeechHandle | None:
        handle = self.session.current_speech
        return handle if handle is not None and not handle.done() else None

    def _interruptible(self) -> bool:
        handle = self._agent_speech()
        return self.interrupt.enabled and handle is not None and handle.allow_interruptions

    def _on_long_speech(self) -> None:
        """The user's sound lasted ``min_duration`` over the agent."""
        self._interrupt_timer = None
        handle = self._agent_speech()
        if handle is None or not self._interruptible():
            return
        config = self.interrupt
        spoken = self._speech_duration()
        if spoken is not None and spoken + 1e-9 < config.min_duration:
            # Part of the time since the start was the VAD's hangover silence.
            self._interrupt_timer = asyncio.get_running_loop().call_later(
                config.min_duration - spoken, self._on_long_speech
            )
            return
        if config.mode is InterruptMode.HYBRID and config.resume_false_interruption:
            if self.session.audio_output.speaking and not self.session.audio_output.paused:
                self.session.audio_output.pause()
                self._paused = handle
                self._paused_at = asyncio.get_running_loop().time()
                self._false_timer = asyncio.get_running_loop().call_later(
                    config.false_interruption_timeout, self._on_false_interruption
                )
                self.session._set_agent_state(AgentState.LISTENING)
                logger.debug("agent paused: user speech over it")
                return
        self._interrupt_now("speech")

    def _judge_words(self, transcript: str) -> None:
        """Decide on an interruption from the words heard so far."""
        if not self._interruptible():
            return
        config = self.interrupt
        if config.has_interrupt_phrase(transcript):
            self._interrupt_now("phrase")
        elif config.is_backchannel(transcript):
            return
        elif self._paused is not None:
            self._interrupt_now("words")
        elif config.mode in (InterruptMode.STT, InterruptMode.HYBRID) and len(transcript.split()) >= config.min_words:
            self._interrupt_now("words")

    def _interrupt_now(self, reason: str) -> None:
        handle = self._agent_speech()
        self._paused = None
        self._cancel(self._false_timer)
        self._false_timer = None
        if handle is not None and handle.interrupt():
            self.counts["interruptions"] += 1
            self.session.emit("interruption", {"reason": reason, "speech_id": handle.id})
            logger.debug("user interrupted the agent ({})", reason)

    def _resume(self, reason: str) -> None:
        handle, self._paused = self._paused, None
        self._cancel(self._false_timer)
        self._false_timer = None
        if handle is None or handle.done():
            return
        self.session.audio_output.resume()
        self.session._set_agent_state(AgentState.SPEAKING)
        logger.debug("agent resumed ({})", reason)

    def _on_false_interruption(self) -> None:
        self._false_timer = None
        if self._paused is None:
            return
        timeout = self.interrupt.false_interruption_timeout
        if self.user_speaking and asyncio.get_running_loop().time() - self._paused_at < 3 * timeout:
            # Sound goes on without words yet: give the recogniser more time,
            # but never leave the agent paused for good (steady noise).
            self._false_timer = asyncio.get_running_loop().call_later(timeout, self._on_false_interruption)
            return
        self.counts["false_interruptions"] += 1
        self.session.emit("false_interruption", {"speech_id": self._paused.id})
        self._resume("no words followed")

    # -- end of turn -----------------------------------------------------------------
    def _arm_watchdog(self) -> None:
        if not self.user_speaking or not self.eou.stt_watchdog:
            return
        self._cancel(self._watchdog)
        self._watchdog = asyncio.get_running_loop().call_later(self.eou.stt_watchdog, self._on_watchdog)

    def _on_watchdog(self) -> None:
        """Transcripts stopped while the VAD still hears sound: decide anyway."""
        self._watchdog = None
        if self.user_speaking and (self._finals or self._interim):
            logger.debug("STT went quiet while VAD still hears speech: deciding the turn")
            self.user_speaking = False
            self._speech_ended_at = asyncio.get_running_loop().time()
            self.session._on_user_speech_stopped()
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

    async def _end_of_turn(self) -> None:
        session = self.session
        config = self.eou
        if self._owed:
            # Words the user said are still being recognised: wait for them
            # (each final reschedules this task), up to stt_timeout.
            await asyncio.sleep(config.stt_timeout)
        # The interim as it stands now is what this decision takes; a newer
        # one (the STT goes on while the decision waits) comes with its final.
        interim, interim_of = self._interim, self._interim_of
        transcript = " ".join([*self._finals, interim]).strip()
        if not transcript:
            if self._lost_words and not self._owed:
                self._lost_words = False
                self.session._apologize()
            return
        if self._over_agent and self.interrupt.is_backchannel(transcript) and self._agent_speech():
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
                session.report_error(self.detector.label, exc)
        self._probability = probability
        session.emit("end_of_turn_probability", {"probability": probability, "transcript": transcript})
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

    async def _predict(self, context: Any, audio: AudioFrame | None) -> float:
        """The detector's probability within ``eou_predict`` seconds, checked."""
        assert self.detector is not None
        label, limit = self.detector.label, self.timeouts.eou_predict
        if limit is None:
            value = await self.detector.predict(context, audio=audio)
        else:
            try:
                async with asyncio.timeout(limit) as timer:
                    value = await self.detector.predict(context, audio=audio)
            except TimeoutError:
                if not timer.expired():
                    raise
                message = f"timed out after {limit:g} s predicting the end of turn"
                raise ProviderError(message, provider=label) from None
        return check_probability(label, value)

    def _drop_backchannel(self, transcript: str) -> None:
        self.counts["backchannels"] += 1
        self._reset_turn()
        self.session.emit("backchannel", {"text": transcript})
        if self._paused is not None:
            self._resume("backchannel")

    def _maybe_preempt(self, transcript: str) -> None:
        if not self.eou.preemptive_generation or self._start_preemptive is None:
            return
        if self.preemptive is not None and self.preemptive.transcript == transcript:
            return
        self.drop_preemptive()
        if self._agent_speech() is None:
            self.preemptive = self._start_preemptive(transcript)

    def drop_preemptive(self) -> None:
        """Cancel a preemptive generation that will not be used."""
        if self.preemptive is not None:
            self.preemptive.cancel()
            self.preemptive = None

    def _commit(self, transcript: str, interim: str = "", interim_of: _Segment | None = None) -> None:
        # A paused agent was cut off by this turn. An agent still speaking was
        # not (too few words): the new turn is answered after it finishes.
        if self._paused is not None:
            self._interrupt_now("turn")
        timing = UserTurnTiming(
            speech_started_at=self._speech_started_at,
            speech_ended_at=self._actual_end,
            vad_end_at=self._speech_ended_at,
            # Taken from an interim, the last speech has no final yet.
            stt_final_at=None if interim and interim_of is not None else self._final_at,
            decided_at=asyncio.get_running_loop().time(),
            probability=self._probability,
        )
        if interim and interim_of is not None:
            # Committed before this segment's final: the final adds only the rest.
            interim_of.taken = interim.split()
        self._reset_turn()
        self.session._start_user_turn(transcript, timing=timing)

    def _reset_turn(self) -> None:
        # Finals still owed are kept: their words start the next turn.
        self._lost_words = False
        self._audio_eou = None
        self._finals.clear()
        self._interim = ""
        self._interim_of = None
        self._turn_audio.clear()
        self._turn_audio_seconds = 0.0
        self._over_agent = False
        self._final_at: float | None = None
        self._probability: float | None = None

    def take_preemptive(self, transcript: str) -> Preemptive | None:
        """The preemptive generation for ``transcript``, if it is still valid."""
        preemptive, self.preemptive = self.preemptive, None
        if preemptive is None:
            return None
        if preemptive.matches(transcript, self.session.agent.chat_context):
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
        for timer in (self._interrupt_timer, self._false_timer, self._watchdog, self._final_timer):
            self._cancel(timer)
        self.drop_preemptive()
        self._cancel_audio_eou()
        task, self._eou_task = self._eou_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def _alike(a: str, b: str) -> bool:
    """The same word, allowing a recogniser's revision of its spelling."""
    return a == b or (len(a) > 2 and len(b) > 2 and difflib.SequenceMatcher(a=a, b=b).ratio() >= 0.75)


def _untaken(text: str, taken: list[str]) -> str:
    """``text`` (a final) without the words a turn already took from its interim.

    A final may revise its interim ("John.mit them" becomes "jon.mit at"), so
    the taken words are aligned with the final's first words by edit distance
    over words (case, punctuation and close spellings aside), and the final
    is cut where the taken words end. When fewer than half the taken words
    find their word in the final, the whole final is kept: a word said twice
    beats a word lost.
    """
    if not taken:
        return text
    words = text.split()
    want, have = [_key(w) for w in taken], [_key(w) for w in words]
    n, m = len(want), len(have)
    # cost[i][j]: edits to turn want[:i] into have[:j].
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                cost[i][j] = i + j
                continue
            same = 0 if _alike(want[i - 1], have[j - 1]) else 1
            cost[i][j] = min(cost[i - 1][j - 1] + same, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    best = min(range(m + 1), key=lambda j: (cost[n][j], abs(j - n)))
    # Walk the alignment back, counting the taken words that found their word.
    matched, i, j = 0, n, best
    while i and j:
        same = _alike(want[i - 1], have[j - 1])
        if cost[i][j] == cost[i - 1][j - 1] + (0 if same else 1):
            matched += same
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    if matched * 2 < n:
        return text
    return " ".join(words[best:])

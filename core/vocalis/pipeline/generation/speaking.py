"""Speaking a reply: its text to the TTS, the TTS's audio to the output.

Text reaches the TTS as soon as it is produced, and audio reaches the
transport as soon as the TTS produces it. An interruption clears the
output's buffer and cancels the generation synchronously; the reply is then
cut down to what the user heard (:class:`Utterance`), and so is it after a
provider failure. Each sentence is announced (``on_speech_out``) by a mark
on the audio output's playout timeline, so it is announced when it starts
playing, after any pause, and never when it was cut off before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from vocalis.event_types import SpeechOutEvent
from vocalis.pipeline.config import ProviderTimeouts
from vocalis.pipeline.generation.utterance import Utterance
from vocalis.pipeline.ports import output_label
from vocalis.providers.base import ProviderError, as_provider_error
from vocalis.providers.fallback_tts import FallbackTTSStream
from vocalis.providers.guards import Deadline, check_audio
from vocalis.stages import AgentAudioStarted, SynthesisEnded, SynthesisStarted
from vocalis.text import speakable

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.providers.tts import TTS, TTSStream
    from vocalis.speech import SpeechHandle


async def speak(
    session: SessionPort,
    handle: SpeechHandle,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    *,
    timeouts: ProviderTimeouts | None = None,
    apology: str | None = None,
) -> None:
    """Speak a text stream; returns when played out, interrupted or failed.

    Args:
        timeouts: Limits on the TTS and the transport.
        apology: Spoken instead when a provider fails before anything was
            heard (the session's ``error_message``); None stays silent.
    """
    timeouts = timeouts or ProviderTimeouts()
    text = await _speak_once(session, handle, tts, text_source, utterance, timeouts)
    nothing_heard = utterance.failed and utterance.pushed == 0
    if apology and nothing_heard and not handle.interrupted and not session.closed:
        sorry = Utterance(utterance.chat_ctx, handle.id)

        async def one() -> AsyncIterator[str]:
            yield apology

        text = await _speak_once(session, handle, tts, one(), sorry, timeouts)
    handle.text = text
    session.emit(
        "agent_turn",
        {"speech_id": handle.id, "text": text, "interrupted": handle.interrupted, "source": handle.source},
    )


async def _speak_once(
    session: SessionPort,
    handle: SpeechHandle,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    timeouts: ProviderTimeouts,
) -> str:
    loop = asyncio.get_running_loop()
    output = session.audio_output
    work = loop.create_task(_generate(session, tts, text_source, utterance, timeouts))

    def on_interrupt() -> None:
        utterance.heard = output.clear_buffer() if output.speaking else utterance.pushed
        work.cancel()

    utterance.speech_id = handle.id
    handle.add_interrupt_callback(on_interrupt)
    if handle.interrupted:
        on_interrupt()
    await asyncio.wait([work])
    failure = None if work.cancelled() else work.exception()
    if failure is not None:
        utterance.failed = True
        session.report_error("speech", failure)
        if utterance.played is None and not handle.interrupted:
            # It failed before playout ended: what was queued still plays.
            output.flush()
            result = await output.wait_for_playout()
            utterance.played = result.position if utterance.pushed else 0.0
    if utterance.failed and utterance.heard is None:
        # After a failure, text the user never heard is not kept as said:
        # the cut is where playout stopped (a sentence cut short, in proportion).
        utterance.heard = min(utterance.played or 0.0, utterance.pushed)
    return utterance.finish(handle.interrupted or utterance.failed)


async def _generate(
    session: SessionPort,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    timeouts: ProviderTimeouts,
) -> None:
    loop = asyncio.get_running_loop()
    output = session.audio_output
    stream = tts.stream()
    utterance.flush_tts = stream.flush
    deadline = Deadline()
    forward = loop.create_task(_forward_audio(session, tts.label, stream, utterance, deadline, timeouts))
    deadline.task = forward
    if isinstance(stream, FallbackTTSStream):
        # A fallback times each provider it tries itself: each gets the whole limit here too.
        stream.on_new_attempt = lambda: deadline.restart("tts", _tts_limit(stream, utterance, timeouts))
    try:
        try:
            async for text in text_source:
                if text:
                    if not utterance.characters:
                        session.observe(SynthesisStarted(utterance.speech_id, tts.label, tts.model_name, loop.time()))
                    utterance.characters += len(text)
                    stream.push_text(utterance.add_text(text, loop.time()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # LLM, flow or tool failure: keep what was said
            utterance.failed = True
            session.report_error(getattr(exc, "provider", "") or "llm", exc)
        stream.end_input()
        # All the text is in: from now on the TTS owes audio, within limits.
        first = utterance.first_audio_at is None
        deadline.restart("tts", timeouts.tts_first_audio if first else timeouts.tts_next_audio)
        await asyncio.wait([forward])
        failure = deadline.error if forward.cancelled() else forward.exception()
        if failure is not None:
            utterance.failed = True
            session.report_error(tts.label, failure)
        output.flush()
        result = await output.wait_for_playout()
        utterance.played = result.position if utterance.pushed else 0.0
    finally:
        deadline.cancel()
        forward.cancel()
        with contextlib.suppress(BaseException):
            await forward
        session.observe(SynthesisEnded(utterance.speech_id, utterance.characters, utterance.pushed))
        await stream.aclose()
        aclose = getattr(text_source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


def _tts_limit(stream: TTSStream, utterance: Utterance, timeouts: ProviderTimeouts) -> float | None:
    """How long the TTS may take to produce its next audio now."""
    if not stream.input_ended:
        return None  # the LLM still writes: the TTS may be waiting for text
    return timeouts.tts_first_audio if utterance.first_audio_at is None else timeouts.tts_next_audio


def _announce_when_played(session: SessionPort, utterance: Utterance, start: float, text: str) -> None:
    """Emit ``on_speech_out`` when this sentence starts playing, not when it is
    synthesised (TTS runs ahead of playout): a mark at its offset on the audio
    output's timeline, so a pause delays it and an interruption that cuts the
    sentence off before it plays drops it."""
    payload: SpeechOutEvent = {"text": text, "speech_id": utterance.speech_id}
    if not session.audio_output.add_mark(start, lambda: session.emit("on_speech_out", payload)):
        if utterance.heard is None:
            # An output that keeps no timeline (its segment never started): say it now.
            session.emit("on_speech_out", payload)


async def _forward_audio(
    session: SessionPort,
    label: str,
    stream: TTSStream,
    utterance: Utterance,
    deadline: Deadline,
    timeouts: ProviderTimeouts,
) -> None:
    output = session.audio_output
    sink = output_label(session)
    iterator = aiter(stream)
    while True:
        deadline.wait_on("tts", _tts_limit(stream, utterance, timeouts), label, "waiting for audio")
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            utterance.last_complete = stream.input_ended  # every sentence's audio is in
            break
        except Exception as exc:
            raise as_provider_error(label, exc) from exc
        audio = check_audio(label, item)
        start = utterance.pushed
        if audio.text:
            utterance.start_segment(audio.text)
        if audio.words:
            utterance.add_timings(audio.words)
        deadline.wait_on("output", timeouts.audio_output, sink, "for the transport to take agent audio")
        try:
            await output.capture_frame(audio.frame)
        except Exception as exc:
            raise as_provider_error(sink, exc) from exc
        utterance.pushed += audio.frame.duration
        if audio.segment_end:
            utterance.last_complete = True
        if audio.text:
            _announce_when_played(session, utterance, start, audio.text)
        if utterance.first_audio_at is None:
            utterance.first_audio_at = now = asyncio.get_running_loop().time()
            session.observe(AgentAudioStarted(utterance.speech_id, now))
            session.agent_audio_started()
    if not stream.input_ended:
        raise ProviderError("stream ended early: it closed while text was still coming", provider=label)
    said = "".join(message.content for message in utterance.messages)
    if utterance.pushed == 0 and speakable(said):
        raise ProviderError(f"stream ended early: no audio for {len(said.strip())} characters of text", provider=label)

"""The stream of :class:`~vocalis.providers.fallback.FallbackTTS`: one provider's own stream, replaced when it fails.

The stream opens the first available provider's :meth:`TTS.stream` (a hosted
WebSocket TTS keeps taking text as the LLM writes it), forwards the text,
flushes and end of input to it, and relays its audio unchanged (``text``,
``segment_end`` and ``words`` included). Everything pushed is logged until
audio that speaks it was relayed, so a replacement can be given exactly what
is left to say.

A provider is replaced (marked down, as the chain does for one-shot
requests) when its stream fails, ends early, yields garbage, or produces no
audio within ``ConnectOptions.timeout`` of having a sentence (or a flush, or
the end of input) to say:

- before any audio was relayed: the next provider gets the whole log;
- at a segment boundary (the last audio relayed carried ``segment_end``, and
  every segment so far was labelled with the text it speaks): the next
  provider gets the text no segment spoke yet;
- anywhere else, i.e. mid-sentence or when the text spoken is unknown, the
  failure is raised: the listener would hear words twice, or miss some.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

from vocalis.providers.base import as_provider_error
from vocalis.providers.fallback_core import FallbackChain, describe, every_failed, no_output
from vocalis.providers.guards import check_audio
from vocalis.providers.tts import TTS, SynthesizedAudio, TTSStream
from vocalis.text import speakable

# A sentence end followed by more text: the provider then has something whole to say.
_SENTENCE_END = re.compile(r"[.!?;:\n][\"')\]]*\s")


class TextLog:
    """Text pushed to the stream that no relayed audio has spoken yet, with its flushes.

    Attributes:
        text: The text not spoken yet, as pushed.
        flushes: Offsets in ``text`` where :meth:`TTSStream.flush` was called.
        tracked: Whether every segment relayed so far named the text it
            speaks, matching the log in order. Once not, what is left to say
            is unknown and the log is dropped (nothing can be replayed).
    """

    def __init__(self) -> None:
        self.text = ""
        self.flushes: list[int] = []
        self.tracked = True

    def push(self, text: str) -> None:
        """Text was pushed."""
        if self.tracked:
            self.text += text

    def flush(self) -> None:
        """The stream was flushed after the text so far."""
        if self.tracked and (not self.flushes or self.flushes[-1] != len(self.text)):
            self.flushes.append(len(self.text))

    def ready(self, input_ended: bool) -> bool:
        """Whether a provider has something to say now (not only words it may wait to complete)."""
        if not self.tracked or not speakable(self.text):
            return False
        return input_ended or bool(self.flushes) or _SENTENCE_END.search(self.text) is not None

    def spoken(self, said: str) -> None:
        """Audio that speaks ``said`` was relayed: drop that text from the log."""
        if not self.tracked:
            return
        end = _match(self.text, said)
        if end is None:
            self.untrack()
            return
        self.text = self.text[end:]
        self.flushes = [offset - end for offset in self.flushes if offset > end]

    def untrack(self) -> None:
        """Audio was relayed whose text is unknown: what is left to say is unknown too."""
        self.tracked = False
        self.text, self.flushes = "", []

    def replay(self, stream: TTSStream) -> None:
        """Push the log, with its flushes, into a new provider's stream."""
        done = 0
        for offset in self.flushes:
            if offset > done:
                stream.push_text(self.text[done:offset])
                done = offset
            stream.flush()
        if done < len(self.text):
            stream.push_text(self.text[done:])


def _match(text: str, said: str) -> int | None:
    """Where in ``text`` the words of ``said`` end, or None if ``text`` does not start with them.

    Letters and digits are compared (case aside) and anything else is
    skipped on both sides: providers trim white space, drop punctuation and
    skip what cannot be spoken. The punctuation attached to the last word is
    taken too, so that a replay does not start with it.
    """
    at = 0
    for char in said:
        if not char.isalnum():
            continue
        while at < len(text) and not text[at].isalnum():
            at += 1
        if at == len(text) or text[at].casefold() != char.casefold():
            return None
        at += 1
    while at < len(text) and not text[at].isalnum() and not text[at].isspace():
        at += 1
    return at


class FallbackTTSStream(TTSStream):
    """A :class:`TTSStream` over the chain's providers' own streams (see the module docstring).

    Args:
        chain: The providers and their availability.
        label: The fallback's label (the final error names it).
        max_pending: Audio frames relayed but not read yet at which the
            relay waits for the reader (the provider's stream keeps its own
            buffer).
    """

    def __init__(self, chain: FallbackChain[TTS], label: str, *, max_pending: int = 8) -> None:
        super().__init__(label)
        self._chain = chain
        self._max_pending = max_pending
        self._log = TextLog()
        self._inner: TTSStream | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.Timeout | None = None  # the wait for the provider's next item
        self._owed_since: float | None = None  # when the provider got something to say, while silent
        self._relayed = False  # audio went to the reader
        self._boundary = True  # no segment is open: the last audio relayed (if any) ended one
        self.provider: TTS | None = None
        """The provider whose stream is speaking (None between attempts)."""
        self.on_new_attempt: Callable[[], None] | None = None
        """Called when a provider (the next one, or the same again) is tried after a failure:
        a reader that keeps its own deadline on the audio (the pipeline) restarts it then."""
        self.start_task(self._run())

    # -- input ----------------------------------------------------------------
    def push_text(self, text: str) -> None:
        if self.input_ended:
            raise RuntimeError("push_text() after end_input()")
        self._log.push(text)
        self._forward(lambda inner: inner.push_text(text))
        self._update_owed()

    def flush(self) -> None:
        self._log.flush()
        self._forward(lambda inner: inner.flush())
        self._update_owed()

    def _on_end_input(self) -> None:
        self._forward(lambda inner: inner.end_input())
        self._update_owed()

    def _forward(self, call: Callable[[TTSStream], None]) -> None:
        inner = self._inner
        if inner is None:
            return  # between providers: the log has it for the next one
        try:
            call(inner)
        except Exception as exc:
            inner.fail(exc)  # the relay sees it as that provider's failure

    # -- the timeout on the next audio (the first, or the next sentence's) ------------
    @property
    def _switchable(self) -> bool:
        """Whether a failure now may go to the next provider without saying anything twice."""
        return not self._relayed or (self._boundary and self._log.tracked)

    def _update_owed(self) -> None:
        """(Re)start or stop the clock on the provider's next audio."""
        waiting = self._inner is not None and self._switchable and self._log.ready(self.input_ended)
        if not waiting:
            self._owed_since = None
        elif self._owed_since is None:
            self._owed_since = self._loop.time()
        if self._timer is not None and not self._timer.expired():
            since = self._owed_since
            self._timer.reschedule(None if since is None else since + self._chain.connect.timeout)

    # -- the relay -------------------------------------------------------------------
    async def _run(self) -> None:
        connect = self._chain.connect
        errors: list[str] = []
        first = True
        for provider in self._chain.candidates():
            last: Exception | None = None
            for attempt in range(connect.max_retry + 1):
                if attempt:
                    await asyncio.sleep(connect.retry_interval)
                if not first and self.on_new_attempt is not None:
                    self.on_new_attempt()
                first = False
                try:
                    await self._speak_with(provider)
                    return
                except Exception as exc:
                    if not self._switchable:
                        # Audio of an unfinished segment (or of unknown text) was
                        # relayed: another provider would say words twice or miss some.
                        raise as_provider_error(provider.label, exc) from exc
                    last = exc
            assert last is not None
            errors.append(describe(provider, last))
            self._chain.mark_down(provider, last)
        raise every_failed("TTS", self.label, errors)

    async def _speak_with(self, provider: TTS) -> None:
        """Relay ``provider``'s stream until it ends; raise if it fails."""
        inner = provider.stream()
        try:
            self._log.replay(inner)
            if self.input_ended:
                inner.end_input()
            self.provider, self._inner, self._owed_since = provider, inner, None
            self._update_owed()
            items = aiter(inner)
            while (item := await self._next(items)) is not None:
                await self._relay(check_audio(provider.label, item))
        finally:
            self.provider, self._inner, self._owed_since = None, None, None
            await inner.aclose()
        if not self.input_ended:
            raise provider.error("stream ended early: it closed while text was still coming")
        if self._log.tracked and speakable(self._log.text):
            raise provider.error(f"stream ended early: no audio for {len(self._log.text.strip())} characters of text")

    async def _next(self, items: AsyncIterator[SynthesizedAudio]) -> SynthesizedAudio | None:
        """The provider's next item, within the timeout while it owes audio; None at its end."""
        try:
            async with asyncio.timeout(None) as timer:
                self._timer = timer
                self._update_owed()
                try:
                    return await anext(items)
                except StopAsyncIteration:
                    return None
                finally:
                    self._timer = None
        except TimeoutError:
            if timer.expired():
                raise no_output(self._chain.connect.timeout) from None
            raise

    async def _relay(self, audio: SynthesizedAudio) -> None:
        await self.wait_for_room(self._max_pending)
        if audio.text:
            self._log.spoken(audio.text)
        elif self._boundary:
            self._log.untrack()  # a segment that does not say what it speaks
        self._relayed, self._boundary = True, audio.segment_end
        self._update_owed()
        self.send(audio)

    async def aclose(self) -> None:
        """Stop relaying and close the provider's stream. Idempotent."""
        inner = self._inner
        await super().aclose()  # cancels the relay, which closes the provider's stream
        if inner is not None:
            await inner.aclose()

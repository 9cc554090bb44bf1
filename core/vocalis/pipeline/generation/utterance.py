"""One spoken reply's book-keeping: its messages and its audio timeline.

As text reaches the TTS it joins the reply's assistant message; as audio
reaches the output each sentence is placed on the reply's audio timeline.
When the reply is interrupted, or a provider fails, the messages are cut
down to what the user heard: whole sentences played, and the last one to
the words whose audio played (by the TTS's word timings when it gives them,
otherwise in proportion to how much of its audio played).
"""

from __future__ import annotations

from collections.abc import Callable

from vocalis.chat import ChatContext, ChatMessage, ChatRole
from vocalis.providers.tts import WordTiming

# Speaking rate assumed for a sentence whose audio was cut short before any
# sentence of the reply was complete (about 14 characters a second).
_SECONDS_PER_CHAR = 0.07


class Utterance:
    """Book-keeping for one spoken reply: its messages and its audio timeline.

    Args:
        chat_ctx: Where the reply's assistant messages go.
        speech_id: The reply's utterance id (set by :func:`speak` otherwise).
    """

    def __init__(self, chat_ctx: ChatContext, speech_id: str = "") -> None:
        self.chat_ctx = chat_ctx
        self.messages: list[ChatMessage] = []
        self._open: ChatMessage | None = None
        self.segments: list[tuple[float, str]] = []  # (audio offset, sentence)
        self.timings: list[list[WordTiming]] = []  # per segment: the TTS's word timings, if any
        self.last_complete = False  # whether the last segment's audio is all in
        self.pushed = 0.0
        self.heard: float | None = None  # seconds played, set when interrupted or failed
        self.played: float | None = None  # seconds played when playout ended
        self.first_audio_at: float | None = None
        self.flush_tts: Callable[[], None] | None = None
        self.speech_id = speech_id
        self.characters = 0  # text sent to the TTS
        self.failed = False  # a provider failed: what was not heard is dropped

    def add_text(self, text: str, now: float) -> str:
        """Text sent to the TTS joins the open assistant message.

        Returns:
            The text to push to the TTS (with a separating space when a new
            message follows an earlier one of the same reply).
        """
        if self._open is None:
            self._open = self.chat_ctx.add_message(ChatRole.ASSISTANT, "", created_at=now)
            if self.messages and not text[:1].isspace():
                text = " " + text
            self.messages.append(self._open)
        self._open.content += text
        return text

    def close_message(self) -> None:
        """Tool calls follow: speak what is pending now, and put later text
        into a new message after the calls."""
        self._open = None
        if self.flush_tts is not None:
            self.flush_tts()

    def start_segment(self, text: str) -> None:
        """The TTS's audio for a new sentence begins at the current offset."""
        self.segments.append((self.pushed, text))
        self.timings.append([])
        self.last_complete = False

    def add_timings(self, words: tuple[WordTiming, ...]) -> None:
        """Word timings the TTS reported for the current segment."""
        if self.timings:
            self.timings[-1].extend(words)

    def _segment_end(self, index: int) -> float:
        """Where segment ``index``'s audio ends (or would have, for one cut short)."""
        if index + 1 < len(self.segments):
            return self.segments[index + 1][0]
        start, text = self.segments[index]
        if self.last_complete:
            return self.pushed
        # Its audio stopped coming (a failure, an interruption while the TTS
        # still worked on it): judge its full length from the reply's pace.
        done = self.segments[:-1]
        chars = sum(len(t) for _, t in done)
        spoken = start - done[0][0] if done else 0.0
        rate = spoken / chars if chars and spoken > 0 else _SECONDS_PER_CHAR
        return max(self.pushed, start + rate * len(text))

    def heard_text(self) -> str:
        """The sentences the user heard, the last one cut proportionally."""
        if self.heard is None:
            return " ".join(text for _, text in self.segments)
        parts: list[str] = []
        for index, (start, text) in enumerate(self.segments):
            if start >= self.heard:
                break
            end = self._segment_end(index)
            timings = self.timings[index] if index < len(self.timings) else []
            if end <= self.heard + 1e-9 or end <= start:
                parts.append(text)
            elif timings:
                played = self.heard - start
                keep = sum(1 for timing in timings if timing.end <= played + 1e-9)
                # The TTS's words may differ from the text's (normalised numbers):
                # keep that many of the text's words, never more than it has.
                words = text.split()
                if keep:
                    parts.append(" ".join(words[: min(keep, len(words))]))
            else:
                words = text.split()
                keep = int(len(words) * (self.heard - start) / (end - start))
                if keep:
                    parts.append(" ".join(words[:keep]))
        return " ".join(parts)

    def finish(self, interrupted: bool) -> str:
        """Cut the recorded messages to what was heard; returns that text."""
        heard = self.heard_text()
        for message in self.messages:
            message.content = message.content.strip()
        if not interrupted:
            return heard or " ".join(m.content for m in self.messages)
        budget = len(heard)
        for message in self.messages:
            if budget >= len(message.content):
                budget -= len(message.content) + 1
                continue
            cut = message.content[: max(budget, 0)]
            message.content = cut.rsplit(" ", 1)[0] if cut and not heard.endswith(cut) else cut
            message.interrupted = True
            budget = 0
        for message in self.messages:
            if not message.content and message in self.chat_ctx.items:
                self.chat_ctx.items.remove(message)
        if self.messages and self.messages[-1].content and not any(m.interrupted for m in self.messages):
            self.messages[-1].interrupted = True
        return heard

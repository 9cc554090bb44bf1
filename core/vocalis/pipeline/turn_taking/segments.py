"""Speech segments and the final transcripts the recogniser owes for them.

Every stretch of user speech (VAD start to end) is a segment; once its end
flushes the recogniser, the segment is *owed* a final. Owed segments are kept
in order, so each final is matched to the oldest one, and a final that comes
after its turn was committed is not lost. A turn committed from an interim
remembers the words it took, so the segment's final adds only the rest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from vocalis.pipeline.config import ProviderTimeouts


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


class OwedFinals:
    """The segments whose final the recogniser still owes, and the current interim.

    Args:
        timeouts: ``stt_final`` limits the wait for a final.
        on_stuck: Called with the seconds waited when no final came within
            ``timeouts.stt_final`` (None: no limit).

    Attributes:
        interim: The latest interim transcript not yet covered by a final.
        lost_words: The recogniser failed while the user's turn was pending.
    """

    def __init__(self, timeouts: ProviderTimeouts, on_stuck: Callable[[float], None] | None) -> None:
        self._timeouts = timeouts
        self._on_stuck = on_stuck
        self._owed: deque[_Segment] = deque()  # flushed segments, oldest first
        self._open: _Segment | None = None  # speech started, its end (the STT flush) not yet
        self._interim_of: _Segment | None = None  # the segment the current interim belongs to
        self._timer: asyncio.TimerHandle | None = None
        self._unasked_final = False  # a final came during the current speech, before its end
        self.interim = ""
        self.lost_words = False

    @property
    def owed(self) -> bool:
        """Whether a final transcript is still owed."""
        return bool(self._owed)

    def speech_started(self) -> None:
        """User speech began: a segment opens (unless one is open already)."""
        self._unasked_final = False
        if self._open is None:
            self._open = _Segment()

    def speech_ended(self, spoken: float) -> None:
        """User speech ended after ``spoken`` seconds: its segment is owed a final.

        A recogniser that finalised this speech on its own owes nothing more,
        unless words came after that final.
        """
        segment, self._open = self._open or _Segment(), None
        if not self._unasked_final or segment.words_pending:
            self._owed.append(segment)
            self._arm_timer(spoken)

    def add_interim(self, text: str) -> None:
        """An interim transcript, of the open segment or else the newest owed one."""
        self.interim = text
        self._interim_of = self._open or (self._owed[-1] if self._owed else None)
        if self._interim_of is not None:
            self._interim_of.words_pending = True

    def take_final(self, text: str, user_speaking: bool) -> str:
        """A final transcript, for the oldest segment that owes one.

        Returns:
            Its words that no committed turn took yet (may be empty).
        """
        segment: _Segment | None
        if self._owed:
            segment = self._owed.popleft()
            self._cancel_timer()
            if self._owed:
                self._arm_timer(0.0)
        else:
            segment = self._open
            if user_speaking:
                self._unasked_final = True
        taken: list[str] = []
        if segment is not None:
            taken, segment.taken = segment.taken, []
            segment.words_pending = False
        text = _untaken(text.strip(), taken)
        of = self._interim_of
        if of is not None and (of is segment or (of is not self._open and of not in self._owed)):
            # The interim's segment is finalised: its words are in the finals.
            self.interim, self._interim_of = "", None
        if text and self._interim_of is None:
            self.interim = ""
        return text

    def stt_failed(self, user_speaking: bool) -> None:
        """The recogniser was replaced: the finals it owed will never come."""
        if user_speaking or self._owed:
            self.lost_words = True
        self._owed.clear()
        self._cancel_timer()

    def interim_snapshot(self) -> tuple[str, _Segment | None]:
        """The interim as it stands, with its segment: what a decision takes."""
        return self.interim, self._interim_of

    def turn_committed(self, interim: str = "", interim_of: _Segment | None = None) -> None:
        """A turn took ``interim`` (a snapshot): its segment's final adds only the rest."""
        if interim and interim_of is not None:
            interim_of.taken = interim.split()

    def reset_turn(self) -> None:
        """The turn was committed or dropped; finals still owed start the next one."""
        self.lost_words = False
        self.interim = ""
        self._interim_of = None

    def _arm_timer(self, spoken: float) -> None:
        limit = self._timeouts.stt_final
        if limit is None or self._on_stuck is None or self._timer is not None:
            return
        # A recogniser that is not streaming needs time in proportion to the speech.
        waited = limit + max(0.0, spoken)
        self._timer = asyncio.get_running_loop().call_later(waited, self._on_stuck, round(waited, 1))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def aclose(self) -> None:
        """Stop waiting for finals."""
        self._cancel_timer()


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def _alike(a: str, b: str) -> bool:
    """The same word, allowing a recogniser's revision of its spelling."""
    if a == b or len(a) <= 2 or len(b) <= 2:
        return a == b
    import difflib  # only when words differ: importing it costs every agent's start-up

    return difflib.SequenceMatcher(a=a, b=b).ratio() >= 0.75


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

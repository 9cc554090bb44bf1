"""What happened in one user turn, and fluent assertions on it.

``result.expect.tool_call("calculate", expression="2+2")``: every check
raises :class:`AssertionError` with what was expected and a listing of what
happened in the turn, so a failing pytest shows the conversation rather than
a bare ``assert False``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vocalis.evaluation.judge import Judge, Verdict, as_judge

if TYPE_CHECKING:
    from vocalis.providers.llm import LLM

__all__ = ["Expect", "ExpectReply", "ToolCall", "TurnEvent", "TurnResult", "arguments_match"]


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """A session event seen during the turn, with the loop time it came at."""

    time: float
    name: str
    payload: dict[str, object]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A finished tool call (``arguments`` parsed; ``{}`` when the JSON was malformed)."""

    name: str
    arguments: dict[str, object]
    raw_arguments: str
    output: str
    is_error: bool


def _arguments(text: str) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class TurnResult:
    """One user turn and everything the agent did in answer.

    Attributes:
        user: What the user said (typed, spoken or the WAV's path).
        started_at: Loop time the turn was sent (typed) or finished (audio).
        events: The session's events from the turn's start until the agent
            was done, in order.
        conversation: The conversation so far as ``user: ...`` / ``agent: ...``
            lines, this turn included (what a judge reads).
        heard: In audio mode, what speech recognition made of the agent's audio.
    """

    user: str
    started_at: float
    events: list[TurnEvent] = field(default_factory=list)
    conversation: str = ""
    heard: str | None = None

    # -- views over the events --------------------------------------------------
    def _named(self, name: str) -> list[TurnEvent]:
        return [event for event in self.events if event.name == name]

    @property
    def replies(self) -> list[str]:
        """Each agent utterance of the turn, as the user heard it."""
        return [str(event.payload.get("text", "")) for event in self._named("agent_turn")]

    @property
    def recognized(self) -> str:
        """What the session recognised of the user in the turn (in audio mode, the STT's finals)."""
        return " ".join(str(event.payload.get("text", "")) for event in self._named("user_turn")).strip()

    @property
    def reply(self) -> str:
        """The agent's whole answer (utterances joined; in audio mode what was transcribed)."""
        if self.heard is not None:
            return self.heard
        return " ".join(text for text in self.replies if text)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls made in the turn, in order."""
        calls = []
        for event in self._named("function_call"):
            raw = str(event.payload.get("arguments", ""))
            calls.append(
                ToolCall(
                    name=str(event.payload.get("name", "")),
                    arguments=_arguments(raw),
                    raw_arguments=raw,
                    output=str(event.payload.get("output", "")),
                    is_error=bool(event.payload.get("is_error", False)),
                )
            )
        return calls

    @property
    def handoffs(self) -> list[str]:
        """Agents the conversation moved to during the turn (their names)."""
        return [str(event.payload.get("to", "")) for event in self._named("agent_handoff")]

    @property
    def interrupted(self) -> bool:
        """Whether any agent utterance of the turn was cut off."""
        return bool(self._named("interruption")) or any(e.payload.get("interrupted") for e in self._named("agent_turn"))

    @property
    def errors(self) -> list[str]:
        """``source: message`` of each ``error`` event in the turn."""
        return [f"{e.payload.get('source')}: {e.payload.get('message')}" for e in self._named("error")]

    @property
    def latency(self) -> float | None:
        """Seconds from the user's turn to the agent starting to speak (None: it never did)."""
        for event in self.events:
            if event.name == "agent_state_changed" and event.payload.get("state") == "speaking":
                return max(0.0, event.time - self.started_at)
        return None

    @property
    def expect(self) -> Expect:
        """Assertions on this turn: ``result.expect.tool_call("calculate")``, ..."""
        return Expect(self)

    def describe(self) -> str:
        """What happened in the turn, for failure messages."""
        lines = [f"user: {self.user}"]
        for event in self.events:
            payload = event.payload
            at = f"  +{event.time - self.started_at:.2f}s"
            if event.name == "user_turn" and self.heard is not None:
                lines.append(f"{at} user (recognised): {payload.get('text')!r}")
            elif event.name == "function_call":
                mark = " (error)" if payload.get("is_error") else ""
                lines.append(
                    f"{at} tool {payload.get('name')}({payload.get('arguments')}) -> {payload.get('output')!r}{mark}"
                )
            elif event.name == "agent_turn":
                mark = " [interrupted]" if payload.get("interrupted") else ""
                lines.append(f"{at} agent: {payload.get('text')!r}{mark}")
            elif event.name == "agent_handoff":
                lines.append(f"{at} handoff: {payload.get('from')} -> {payload.get('to')}")
            elif event.name == "interruption":
                lines.append(f"{at} interruption ({payload.get('reason')})")
            elif event.name == "error":
                lines.append(f"{at} error: {payload.get('source')}: {payload.get('message')}")
        if self.heard is not None:
            lines.append(f"  heard (transcribed agent audio): {self.heard!r}")
        latency = self.latency
        lines.append("  latency: " + ("no speech" if latency is None else f"{latency:.2f}s"))
        return "\n".join(lines)


# -- expectations ----------------------------------------------------------------
def _squeeze(text: str) -> str:
    return "".join(text.split()).lower()


def arguments_match(expected: dict[str, object], actual: dict[str, object]) -> bool:
    """Whether ``actual`` has every expected argument (others may be present).

    Numbers compare by value (``2`` matches ``2.0``) and strings ignore case
    and white space (``"17*23"`` matches ``"17 * 23"``), since models vary in both.
    """
    for key, want in expected.items():
        if key not in actual:
            return False
        got = actual[key]
        if isinstance(want, str) and isinstance(got, str):
            if _squeeze(want) != _squeeze(got):
                return False
        elif isinstance(want, dict) and isinstance(got, dict):
            if not arguments_match({str(k): v for k, v in want.items()}, {str(k): v for k, v in got.items()}):
                return False
        elif want != got:
            return False
    return True


class Expect:
    """Checks on one :class:`~vocalis.evaluation.result.TurnResult`; each returns ``self`` to chain."""

    def __init__(self, result: TurnResult) -> None:
        self.result = result

    def fail(self, expected: str) -> AssertionError:
        """An AssertionError saying ``expected`` and what happened in the turn."""
        return AssertionError(f"expected {expected}\n{self.result.describe()}")

    @property
    def reply(self) -> ExpectReply:
        """Checks on the agent's reply text."""
        return ExpectReply(self)

    def tool_call(self, name: str, **arguments: object) -> ToolCall:
        """The agent called ``name`` with at least these ``arguments``; returns the call."""
        calls = [call for call in self.result.tool_calls if call.name == name]
        for call in calls:
            if arguments_match(arguments, call.arguments):
                return call
        if not calls:
            raise self.fail(f"a call to tool {name!r}")
        raise self.fail(f"a call to tool {name!r} with arguments including {arguments!r}")

    def no_tool_call(self, name: str | None = None) -> Expect:
        """The agent called no tool (or not ``name``)."""
        if any(name is None or call.name == name for call in self.result.tool_calls):
            raise self.fail("no tool call" if name is None else f"no call to tool {name!r}")
        return self

    def handoff(self, to: str) -> Expect:
        """The conversation moved to the agent named ``to``."""
        if to not in self.result.handoffs:
            raise self.fail(f"a handoff to {to!r}")
        return self

    def no_interruption(self) -> Expect:
        """No agent utterance of the turn was cut off."""
        if self.result.interrupted:
            raise self.fail("no interruption")
        return self

    def no_errors(self) -> Expect:
        """No provider or tool reported an ``error`` event."""
        if self.result.errors:
            raise self.fail("no errors")
        return self

    def latency_below(self, seconds: float) -> Expect:
        """The agent started speaking within ``seconds`` of the user's turn."""
        latency = self.result.latency
        if latency is None:
            raise self.fail(f"the agent to start speaking within {seconds:g}s (it never did)")
        if latency > seconds:
            raise self.fail(f"the agent to start speaking within {seconds:g}s (it took {latency:.2f}s)")
        return self


class ExpectReply:
    """Checks on the agent's reply text (:attr:`TurnResult.reply`)."""

    def __init__(self, expect: Expect) -> None:
        self._expect = expect

    @property
    def text(self) -> str:
        """The reply checked."""
        return self._expect.result.reply

    def contains(self, *parts: str, case_sensitive: bool = False) -> ExpectReply:
        """The reply contains every one of ``parts`` (case-insensitive by default)."""
        text = self.text if case_sensitive else self.text.lower()
        missing = [part for part in parts if (part if case_sensitive else part.lower()) not in text]
        if missing:
            raise self._expect.fail(f"the reply to contain {', '.join(map(repr, missing))}")
        return self

    def matches(self, pattern: str, *, flags: int = re.IGNORECASE) -> ExpectReply:
        """The reply matches the regular expression ``pattern`` somewhere."""
        if re.search(pattern, self.text, flags) is None:
            raise self._expect.fail(f"the reply to match /{pattern}/")
        return self

    def not_empty(self) -> ExpectReply:
        """The agent said something."""
        if not self.text.strip():
            raise self._expect.fail("a non-empty reply")
        return self

    async def judged(self, judge: Judge | LLM, *, intent: str) -> Verdict:
        """A judge (or an LLM asked yes or no) finds that the reply meets ``intent``."""
        result = self._expect.result
        verdict = await as_judge(judge)(intent=intent, reply=self.text, conversation=result.conversation)
        if not verdict.passed:
            raise self._expect.fail(f"the reply to meet the intent {intent!r} (judge said {verdict.answer})")
        return verdict

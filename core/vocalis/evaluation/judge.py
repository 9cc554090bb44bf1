"""LLM judges: does an agent's reply meet an intent? (yes or no)

A judge is any async callable taking ``intent``, ``reply`` and
``conversation`` keywords and returning a :class:`Verdict`, so a test can
pass a rule of its own, and :class:`LLMJudge` asks any configured LLM (the
offline one by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from vocalis.chat import ChatContext
from vocalis.providers.llm import LLM

__all__ = ["JUDGE_INSTRUCTIONS", "Judge", "LLMJudge", "Verdict", "as_judge"]

JUDGE_INSTRUCTIONS = (
    "You grade a voice assistant's reply. You are given the conversation, the reply and an intent. "
    "Answer with exactly one word: yes if the reply meets the intent, no if it does not."
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer.

    Attributes:
        passed: The reply meets the intent.
        answer: What the judge said (for failure messages).
    """

    passed: bool
    answer: str


class Judge(Protocol):
    """Decides whether a reply meets an intent."""

    async def __call__(self, *, intent: str, reply: str, conversation: str) -> Verdict:
        """Judge ``reply`` (the last agent turn of ``conversation``) against ``intent``."""
        ...


_WORD = re.compile(r"[a-z]+")


def parse_yes_no(answer: str) -> bool | None:
    """The verdict in a yes/no answer: its first word, or None when that is neither."""
    match = _WORD.search(answer.lower())
    if match is None or match.group() not in ("yes", "no"):
        return None
    return match.group() == "yes"


class LLMJudge:
    """Asks an LLM a yes/no question about a reply.

    The LLM gets no tools and a one-word answer is demanded; an answer that
    does not start with yes or no fails the check, with the answer shown,
    rather than being guessed at.

    Args:
        llm: Any LLM provider (started by the caller; a pipeline's LLM is).
    """

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    async def __call__(self, *, intent: str, reply: str, conversation: str) -> Verdict:
        ctx = ChatContext()
        ctx.set_instructions(JUDGE_INSTRUCTIONS)
        ctx.add_message(
            "user",
            f"Conversation:\n{conversation}\n\nThe assistant's reply: {reply!r}\n\n"
            f"Intent: {intent}\n\nDoes the reply meet the intent? Answer yes or no.",
        )
        parts: list[str] = []
        stream = self.llm.chat(ctx, tool_choice="none")
        try:
            async for chunk in stream:
                parts.append(chunk.text)
                # A verdict needs one word: stop a model that goes on explaining.
                if parse_yes_no("".join(parts)) is not None and len("".join(parts).split()) > 1:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # async generators have it
        answer = "".join(parts).strip()
        verdict = parse_yes_no(answer)
        return Verdict(passed=bool(verdict), answer=answer if verdict is not None else f"{answer!r} (not yes or no)")


def as_judge(judge: Judge | LLM) -> Judge:
    """An LLM becomes an :class:`LLMJudge`; a judge is returned as is."""
    return LLMJudge(judge) if isinstance(judge, LLM) else judge

"""Large-language-model contract: streaming chat with tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from vocalis.providers.base import Provider, ProviderKind

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.chat.formats import JSONObject


@runtime_checkable
class ToolSpec(Protocol):
    """What an LLM needs to know of a tool (function tools and MCP tools alike)."""

    name: str
    description: str
    parameters: JSONObject


@dataclass(slots=True)
class ToolCallRequest:
    """A complete tool call the model asked for.

    Attributes:
        call_id: The model's id for the call (generated when it gives none).
        name: The tool's name.
        arguments: The raw JSON argument text, unparsed: it may be malformed,
            and the session reports that back to the model.
    """

    call_id: str
    name: str
    arguments: str = "{}"


@dataclass(slots=True)
class Usage:
    """Token counts for one completion."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class ChatChunk:
    """A piece of a streamed completion.

    Attributes:
        text: Newly generated text (may be empty).
        tool_calls: Tool calls completed in this chunk.
        usage: Set on the last chunk when the provider reports usage.
    """

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: Usage | None = None


class LLM(Provider):
    """Base class of LLM providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.LLM

    def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a completion for the conversation.

        Implement as an async generator. The caller stops a reply by closing
        the iterator or cancelling its task; implementations must then stop
        generating (and release the request) promptly.

        Args:
            chat_ctx: The conversation so far, instructions first.
            tools: Tools the model may call.
            tool_choice: ``"auto"`` (default), ``"none"`` or ``"required"``.
        """
        raise NotImplementedError

    async def warm_context(self, chat_ctx: ChatContext) -> None:
        """Prepare for replies to this conversation (called when a session starts).

        A local model can evaluate the instructions now, so the first reply
        pays only for the words that follow them, as later replies do. The
        default does nothing: a hosted model would be billed for it.

        Args:
            chat_ctx: The conversation so far, instructions first.
        """

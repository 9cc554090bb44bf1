"""A minimal agent with one tool.

Run it with ``vocalis talk examples/minimal_agent.py --input examples/sample.wav``
(or ``--text "What's the weather in Paris?"``), serve it with
``vocalis serve examples/minimal_agent.py``, or run this file:
``python examples/minimal_agent.py examples/sample.wav``.
"""

import asyncio
import sys

from vocalis import Agent, AgentSession, CascadingPipeline, function_tool
from vocalis.transports.file import FileTransport


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__("You are a friendly voice assistant. Keep answers short.")

    async def on_enter(self) -> None:
        await self.session.say("Hi! Ask me about the weather.")

    @function_tool
    async def get_weather(self, city: str) -> str:
        """Look up the current weather.

        Args:
            city: The city to look up.
        """
        return f"It is sunny and 21 degrees in {city}."


def make_agent() -> Agent:
    """What `vocalis talk` and `vocalis serve` call for each conversation."""
    return WeatherAgent()


def make_pipeline() -> CascadingPipeline:
    # Providers are instances or names of installed plugins (`vocalis plugins`
    # lists them), e.g. CascadingPipeline(stt="whisper", llm="llamacpp",
    # tts="piper"); omitted ones come from VOCALIS_STT / VOCALIS_LLM / ... or
    # the single installed provider of that kind.
    return CascadingPipeline()


async def main(wav: str) -> None:
    session = AgentSession(make_agent(), make_pipeline())
    session.on("user_turn", lambda event: print("you:  ", event["text"]))
    session.on("agent_turn", lambda event: print("agent:", event["text"]))
    answered = asyncio.Event()  # set by a reply to the user (not by the greeting)
    session.on("agent_turn", lambda event: session.agent.last_user_text() and answered.set())
    transport = FileTransport(input=wav, realtime=True)  # the WAV file plays the microphone
    await session.start(transport)
    await answered.wait()
    await session.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "examples/sample.wav"))

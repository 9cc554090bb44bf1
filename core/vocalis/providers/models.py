"""Loading local models once per process, and the worker threads that run them.

Local providers (VAD, turn detection, STT, TTS, LLM) load model files that
take from milliseconds to seconds and megabytes to gigabytes. A
:class:`ModelCache` keeps each loaded model for the whole process, keyed by
what was loaded (the file and the options that change the loaded object, see
:class:`ModelKey`), so every provider instance and every session asking for
the same model shares one read-only copy::

    _voices: ModelCache[ModelKey, Voice] = ModelCache("Piper voice", thread_name="piper")

    def load_voice(path: str, threads: int) -> Voice:
        key = ModelKey.of(path, threads=threads)
        return _voices.load(key, lambda: Voice(path, threads, _voices.executor(key)))

Guarantees:

- Concurrent first loads of one key load once: the first caller loads, the
  others wait for it and get the same object.
- A failed load is not cached: every caller waiting for it gets the error and
  the next call tries again.
- :meth:`ModelCache.aload` runs the load in the running loop's default
  executor, so the event loop is never blocked; only threading primitives
  are kept between calls, so any number of event loops (``asyncio.run``
  after ``asyncio.run``, virtual-time loops) may use one cache.
- A ``warm_up`` function, when the cache has one, runs each model once
  right after it loads (a first inference allocates buffers and compiles
  kernels), so a session's first turn costs what later turns cost. It is
  part of the load: callers get the model once it is warm.
- Each load is logged once at INFO: ``loaded <what> in <seconds> s`` (with
  the warm-up's share).

Models often run on a dedicated worker thread, so concurrent sessions queue
instead of oversubscribing the cores: :meth:`ModelCache.executor` gives one
single-thread executor per model, or one shared by the whole cache.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loguru import logger

__all__ = ["ModelCache", "ModelKey", "clear_model_caches"]

K = TypeVar("K", bound=Hashable)
M = TypeVar("M")

_SHARED: Any = object()
"""Executor key of the worker thread shared by a whole cache."""
_MISSING: Any = object()
_caches: weakref.WeakValueDictionary[int, ModelCache[Any, Any]] = weakref.WeakValueDictionary()


@dataclass(frozen=True, slots=True)
class ModelKey:
    """What identifies a loaded model: a file and the options it was loaded with.

    Attributes:
        path: The model file or directory (resolve it first, so that two
            spellings of one file share a model).
        options: ``(name, value)`` pairs sorted by name; values must be hashable.
    """

    path: str
    options: tuple[tuple[str, Hashable], ...] = ()

    @classmethod
    def of(cls, path: object, **options: Hashable) -> ModelKey:
        """A key for ``path`` (anything ``str()`` turns into the path) and ``options``."""
        return cls(str(path), tuple(sorted(options.items())))


@dataclass(slots=True)
class _Loading:
    """A load in progress: its outcome and the thread running it."""

    outcome: Future[Any]
    thread: int


class ModelCache(Mapping[K, M], Generic[K, M]):
    """Models loaded once per process, with their worker threads.

    Reading it as a mapping gives the models loaded so far, by key.

    Args:
        label: What the models are, for the log (``"Whisper model"``).
        describe: Builds the log's description of a loaded model from its
            key and the model; by default ``"<label> <key>"``.
        thread_name: Name prefix of the worker threads of :meth:`executor`.
        warm_up: Runs a loaded model once (a first inference on silence or a
            word), before any caller gets it. Its failure fails the load.
    """

    def __init__(
        self,
        label: str,
        *,
        describe: Callable[[K, M], str] | None = None,
        thread_name: str = "vocalis-model",
        warm_up: Callable[[M], object] | None = None,
    ) -> None:
        self.label = label
        self.thread_name = thread_name
        self._describe = describe
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._models: dict[K, M] = {}
        self._loading: dict[K, _Loading] = {}
        self._executors: dict[Any, ThreadPoolExecutor] = {}
        _caches[id(self)] = self

    # -- the mapping of loaded models --------------------------------------------
    def __getitem__(self, key: K) -> M:
        return self._models[key]

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._models))

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"<ModelCache {self.label!r}: {len(self)} loaded>"

    # -- loading ------------------------------------------------------------------
    def load(self, key: K, loader: Callable[[], M]) -> M:
        """The model for ``key``, calling ``loader`` on first use. Blocking.

        Call it from a worker thread (or synchronous code): a first load runs
        ``loader`` on the calling thread, and a caller arriving during another
        thread's load waits for it.

        Args:
            key: What identifies the model (hashable).
            loader: Loads the model; called at most once per successful load.

        Returns:
            The one loaded model for ``key``.

        Raises:
            RuntimeError: ``loader`` needs the model it is loading.
            Exception: Whatever ``loader`` raised, for every caller waiting on
                that load; nothing is cached then.
        """
        with self._lock:
            if key in self._models:
                return self._models[key]
            loading = self._loading.get(key)
            if loading is None:
                loading = _Loading(Future(), threading.get_ident())
                loading.outcome.set_running_or_notify_cancel()
                self._loading[key] = loading
                owner = True
            elif loading.thread == threading.get_ident():
                raise RuntimeError(f"loading {self.label} {key!r} needs itself")
            else:
                owner = False
        if not owner:
            return loading.outcome.result()  # type: ignore[no-any-return]
        return self._run(key, loader, loading)

    async def aload(self, key: K, loader: Callable[[], M]) -> M:
        """The model for ``key``, loaded off the event loop on first use.

        A loaded model is returned at once; otherwise :meth:`load` runs in the
        running loop's default executor (a virtual-time loop's clock stands
        still meanwhile). Cancelling the caller does not stop a load already
        running: it completes and is cached.

        Args:
            key: What identifies the model (hashable).
            loader: Loads the model, on a worker thread.

        Raises:
            Exception: Whatever ``loader`` raised (see :meth:`load`).
        """
        model = self._models.get(key, _MISSING)
        if model is not _MISSING:
            return model  # type: ignore[no-any-return]
        return await asyncio.get_running_loop().run_in_executor(None, self.load, key, loader)

    def _run(self, key: K, loader: Callable[[], M], loading: _Loading) -> M:
        started = time.perf_counter()
        warm = 0.0
        try:
            model = loader()
            if self._warm_up is not None:
                loaded = time.perf_counter()
                self._warm_up(model)
                warm = time.perf_counter() - loaded
        except BaseException as exc:
            with self._lock:
                if self._loading.get(key) is loading:
                    del self._loading[key]
                    if key not in self._models:
                        # Its worker thread, if the loader made one, goes with it.
                        self._executors.pop(key, None)
            loading.outcome.set_exception(exc)
            raise
        seconds = time.perf_counter() - started
        with self._lock:
            # After clear() the load still answers its callers but is not kept.
            if self._loading.get(key) is loading:
                del self._loading[key]
                self._models[key] = model
        loading.outcome.set_result(model)
        what = self._describe(key, model) if self._describe else f"{self.label} {key}"
        if self._warm_up is not None:
            logger.info("loaded {} in {:.2f} s (warm-up {:.2f} s)", what, seconds, warm)
        else:
            logger.info("loaded {} in {:.2f} s", what, seconds)
        return model

    # -- worker threads ------------------------------------------------------------
    def executor(self, key: K | None = None) -> ThreadPoolExecutor:
        """A single-thread executor to run inference on, created on first use.

        Args:
            key: The model it belongs to (one thread per model); None gives
                the one thread shared by every model of this cache.
        """
        slot = _SHARED if key is None else key
        with self._lock:
            executor = self._executors.get(slot)
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
                self._executors[slot] = executor
            return executor

    def clear(self) -> None:
        """Forget every model and worker thread (for tests).

        Later calls load again. Objects already handed out keep working:
        a worker thread ends once nobody holds its executor any more. A load
        still running answers its callers but is not kept.
        """
        with self._lock:
            self._models.clear()
            self._loading.clear()
            self._executors.clear()


def clear_model_caches() -> None:
    """:meth:`ModelCache.clear` every cache of the process (for tests)."""
    for cache in list(_caches.values()):
        cache.clear()

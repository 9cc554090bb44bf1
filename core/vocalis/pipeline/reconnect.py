"""Keeping a realtime model's connection alive.

A connection that fails, closes, sends a malformed event or stops answering
is reported (labelled with the model) and reopened with the conversation so
far. What waited on it is released at once; a user turn it lost is answered
with the session's ``error_message``, if one is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.base import ErrorKind, ProviderError, as_provider_error

if TYPE_CHECKING:
    from vocalis.pipeline.config import ProviderTimeouts
    from vocalis.pipeline.ports import SessionPort
    from vocalis.providers.realtime import RealtimeModel, RealtimeSession
    from vocalis.speech import SpeechHandle


class Reconnecting:
    """The part of :class:`~vocalis.pipeline.realtime.RealTimePipeline` that
    handles a broken or stuck connection."""

    session: SessionPort | None
    model: RealtimeModel
    timeouts: ProviderTimeouts
    _rt: RealtimeSession | None
    _reader: asyncio.Task[None] | None
    _response: Any
    _awaiting: asyncio.Future[Any] | None

    def _init_reconnecting(self) -> None:
        self._no_response: asyncio.TimerHandle | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._apology_due = False

    async def _connect(self) -> None:
        raise NotImplementedError

    def _end_response(self) -> None:
        raise NotImplementedError

    async def _respond(self, handle: SpeechHandle, instructions: str | None, *, apologize: bool) -> None:
        raise NotImplementedError

    def _connection_lost(self, error: ProviderError) -> None:
        """Report ``error``, release whatever waits on the connection, reopen it."""
        assert self.session is not None
        self.session.report_error(self.model.label, error)
        expecting = self._no_response is not None
        self._cancel_no_response()
        if self._response is not None:
            self._response.failed = True
            self._end_response()
        if self._awaiting is not None and not self._awaiting.done():
            self._awaiting.set_result(None)  # _respond apologises
        elif expecting:
            self._apology_due = True  # the user's turn got no response
        self._reconnect()

    def _reconnect(self) -> None:
        if self._reconnecting is not None and not self._reconnecting.done():
            return  # already under way
        old, self._rt = self._rt, None
        self._reconnecting = asyncio.get_running_loop().create_task(self._reopen(old, self._reader))

    async def _reopen(self, old: RealtimeSession | None, reader: asyncio.Task[None] | None) -> None:
        assert self.session is not None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.aclose()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        try:
            await self._connect()
        except Exception as exc:
            self.session.report_error(self.model.label, as_provider_error(self.model.label, exc), recoverable=False)
            return
        logger.info("{} reconnected", self.model.label)
        if self._apology_due:
            self._apology_due = False
            self.session.apologize()

    async def _connection(self) -> RealtimeSession | None:
        """The live connection, reopening it first if it was lost."""
        if self._rt is None:
            if self._reconnecting is None or self._reconnecting.done():
                self._reconnect()
            assert self._reconnecting is not None
            await asyncio.shield(self._reconnecting)
        return self._rt

    def _arm_no_response(self) -> None:
        self._cancel_no_response()
        limit = self.timeouts.realtime_response
        if limit is not None:
            self._no_response = asyncio.get_running_loop().call_later(limit, self._on_no_response, limit)

    def _cancel_no_response(self) -> None:
        if self._no_response is not None:
            self._no_response.cancel()
            self._no_response = None

    def _on_no_response(self, limit: float) -> None:
        """The user stopped speaking long ago and the model has not answered."""
        self._no_response = None
        if self._awaiting is not None or self.session is None or self.session.closed:
            return  # a requested response has its own limit
        label = self.model.label
        self._connection_lost(
            ProviderError(
                f"timed out after {limit:g} s waiting for a response to the user",
                provider=label,
                kind=ErrorKind.TIMEOUT,
            )
        )
        self._apology_due = True

    async def _say_sorry(self, handle: SpeechHandle) -> None:
        """The turn failed before anything was heard: say the session's ``error_message``."""
        session = self.session
        assert session is not None
        message = session.error_message
        if message and not handle.interrupted and not session.closed:
            await self._respond(handle, f"Say exactly this, and nothing else: {message}", apologize=False)

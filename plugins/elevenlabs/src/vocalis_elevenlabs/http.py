"""Speech over HTTP: ``POST /v1/text-to-speech/{voice_id}/stream``, the body streamed.

Used by :meth:`ElevenLabsTTS.synthesize` (one text at a time) and, sentence
by sentence, by a stream that cannot use the WebSocket. The audio is read
as it arrives, so the first frame plays while the server still speaks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

import aiohttp
from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_elevenlabs.errors import http_error, network_error

if TYPE_CHECKING:
    from vocalis_elevenlabs.tts import ElevenLabsTTS

# Formats a server sends when it ignored ``output_format=pcm_...``; played
# as PCM they would be loud noise. The header alone is not trusted (the API's
# own description labels every format of this endpoint ``audio/mpeg``): the
# first bytes decide.
_COMPRESSED = ("audio/mpeg", "audio/mp3", "audio/ogg", "audio/opus", "audio/aac", "audio/flac")
_SNIFF_BYTES = 12  # enough to tell MP3, Ogg, FLAC and WAV from raw PCM
_MAX_WAV_HEADER = 4096


async def speak_http(
    tts: ElevenLabsTTS, session: aiohttp.ClientSession, url: str, body: Mapping[str, object]
) -> AsyncGenerator[AudioFrame, None]:
    """POST one text and yield its audio in frames of ``frame_ms`` as it streams in.

    Closing the generator (or cancelling its reader) closes the response,
    which stops the generation server-side.

    Raises:
        ProviderError: Refused (by status and the API's error code), timed
            out, or the connection dropped mid-audio.
    """
    settings = tts.settings
    frame_bytes = 2 * (tts.sample_rate * settings.frame_ms // 1000)
    headers = {"xi-api-key": tts.api_key(), "Accept": "audio/pcm, application/octet-stream, */*"}
    timeout = aiohttp.ClientTimeout(total=None, connect=settings.timeout, sock_read=settings.timeout)
    started = False
    pending = bytearray()
    response: aiohttp.ClientResponse | None = None
    try:
        response = await session.post(url, json=dict(body), headers=headers, timeout=timeout)
        if response.status >= 400:
            raise http_error(tts, response.status, await error_body(response))
        declared = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        started = True
        checked = False
        async for chunk in response.content.iter_any():
            pending += chunk
            if not checked:
                header = _audio_start(tts, declared, pending)
                if header is None:
                    continue  # too few bytes yet to tell the format
                checked = True
                del pending[:header]
            # Whole frames only: chunks split samples at odd byte counts.
            while len(pending) >= frame_bytes:
                yield AudioFrame(bytes(pending[:frame_bytes]), tts.sample_rate)
                del pending[:frame_bytes]
    except ProviderError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise network_error(tts, exc, settings.timeout, started=started) from exc
    finally:
        if response is not None:
            # close(), not release(): an unread body means the audio was not
            # wanted any more, and only dropping the connection stops it.
            response.close()
    if not checked and pending:
        del pending[: _audio_start(tts, declared, pending, complete=True) or 0]
    if len(pending) % 2:
        logger.warning("{}: dropping a trailing half sample", tts.label)
        del pending[-1:]
    if pending:
        yield AudioFrame(bytes(pending), tts.sample_rate)


async def error_body(response: aiohttp.ClientResponse) -> object:
    """An error reply's JSON, or its text when it is not JSON."""
    try:
        text = await asyncio.wait_for(response.text(errors="replace"), 5.0)
    except (TimeoutError, aiohttp.ClientError):
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _audio_start(tts: ElevenLabsTTS, declared: str, data: bytearray, *, complete: bool = False) -> int | None:
    """Where the PCM starts in a body beginning with ``data``; None until that can be told.

    Raw PCM starts at 0; a WAV file (a server that wrapped the PCM) after
    its header.

    Raises:
        ProviderError: The body is compressed audio, not the PCM asked for.
    """
    if len(data) < _SNIFF_BYTES and not complete:
        return None
    head = bytes(data[:_SNIFF_BYTES])
    if _is_compressed(head, declared):
        raise tts.error(
            f"server sent {declared or 'compressed audio'} instead of raw PCM; "
            f"it ignored output_format={tts.settings.output_format}",
            recoverable=False,
            kind=ErrorKind.BAD_REQUEST,
        )
    if declared in _COMPRESSED:
        logger.debug("{}: the reply is labelled {} but holds raw PCM", tts.label, declared)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    return _wav_data_offset(bytes(data), complete=complete)


def _wav_data_offset(data: bytes, *, complete: bool) -> int | None:
    """Bytes before the samples of a WAV file (its ``data`` chunk), None if more are needed."""
    offset = 12
    while offset + 8 <= min(len(data), _MAX_WAV_HEADER):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if data[offset : offset + 4] == b"data":
            return offset + 8
        offset += 8 + size + size % 2
    if complete or len(data) >= _MAX_WAV_HEADER:
        return min(44, len(data))  # no data chunk found: the canonical header
    return None


def _is_compressed(head: bytes, declared: str) -> bool:
    """Whether the first bytes are MP3, Ogg or FLAC rather than raw PCM."""
    if head.startswith((b"ID3", b"OggS", b"fLaC")):
        return True
    if declared not in _COMPRESSED or len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    # An MPEG audio frame header: a real version, layer, bitrate and rate
    # (quiet PCM such as ff ff ff ff is none of these).
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3

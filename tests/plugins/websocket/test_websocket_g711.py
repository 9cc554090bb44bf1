"""G.711 μ-law against the reference algorithm's values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vocalis_websocket.g711 import ulaw_decode, ulaw_decode_array, ulaw_encode, ulaw_encode_array

# Decoded values of G.711 μ-law codes (16-bit scale of the 14-bit table: the
# end points ±8031·4 and 0, the first step of each segment, both signs).
DECODED = {
    0x00: -32124,
    0x01: -31100,
    0x0F: -16764,
    0x10: -15996,
    0x70: -120,
    0x7E: -8,
    0x7F: 0,
    0x80: 32124,
    0x8F: 16764,
    0x90: 15996,
    0xDF: 396,
    0xE0: 372,
    0xEF: 132,
    0xF0: 120,
    0xFE: 8,
    0xFF: 0,
}

# Samples and the codes the reference encoder gives them (clipping, zero,
# both signs around segment edges).
ENCODED = {
    32767: 0x80,
    32124: 0x80,
    16764: 0x8F,
    1000: 0xCE,
    132: 0xEF,
    100: 0xF2,
    8: 0xFE,
    0: 0xFF,
    -1: 0x7E,
    -8: 0x7E,
    -100: 0x72,
    -1000: 0x4E,
    -32768: 0x00,
}


def test_decoding_matches_the_reference_table() -> None:
    decoded = np.frombuffer(ulaw_decode(bytes(DECODED)), dtype="<i2")
    assert dict(zip(DECODED, decoded.tolist(), strict=True)) == DECODED
    table = ulaw_decode_array(np.arange(256))
    # Codes count down in magnitude within each sign half.
    assert (np.diff(table[:128]) > 0).all() and (np.diff(table[128:]) < 0).all()
    assert (table[:128] == -table[128:]).all()


def test_encoding_matches_the_reference_encoder() -> None:
    samples = np.array(list(ENCODED), dtype="<i2")
    assert dict(zip(ENCODED, ulaw_encode(samples.tobytes()), strict=True)) == ENCODED


def test_every_code_survives_a_round_trip() -> None:
    codes = np.arange(256, dtype=np.uint8)
    back = ulaw_encode_array(ulaw_decode_array(codes))
    expected = codes.copy()
    expected[0x7F] = 0xFF  # "negative zero" decodes to 0, which encodes as positive zero
    assert (back == expected).all()


def test_quantisation_is_telephone_quality() -> None:
    t = np.arange(8000) / 8000
    sine = np.round(0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    decoded = ulaw_decode_array(ulaw_encode_array(sine)).astype(np.float64)
    noise = decoded - sine
    snr = 10 * np.log10(np.sum(sine.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr > 35, snr  # G.711 μ-law gives about 38 dB on a loud sine


def test_odd_byte_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number"):
        ulaw_encode(b"\x00\x01\x02")
    assert ulaw_encode(b"") == b"" and ulaw_decode(b"") == b""


def test_bit_exact_with_the_standard_librarys_codec() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # from audioop-lts (the test extra) on Python 3.13+

    pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert ulaw_encode(pcm) == audioop.lin2ulaw(pcm, 2)
    codes = bytes(range(256))
    assert ulaw_decode(codes) == audioop.ulaw2lin(codes, 2)

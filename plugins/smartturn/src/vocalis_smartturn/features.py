"""Whisper log-mel features in numpy, as Smart Turn v3 was trained on them.

This reproduces ``transformers.WhisperFeatureExtractor(chunk_length=8)`` with
``do_normalize=True`` (which is Whisper's ``log_mel_spectrogram`` applied to a
zero-mean, unit-variance waveform): a centred STFT (n_fft 400, hop 160,
periodic Hann, reflect padding), power spectrum, an 80-bin Slaney mel
filterbank (librosa's ``filters.mel(norm="slaney")``), ``log10`` floored at
1e-10, the last frame dropped, values clamped to ``max - 8`` and scaled as
``(x + 4) / 4``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SECONDS = 8
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
FRAMES = WINDOW_SAMPLES // HOP  # 800


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """The ``[80, 201]`` Slaney-normalised triangular mel filterbank (0–8 kHz)."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    top = _hz_to_mel(np.array(SAMPLE_RATE / 2))
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), top, N_MELS + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: each triangle has unit area.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights


@lru_cache(maxsize=1)
def _mel_spans() -> list[tuple[int, int, np.ndarray]]:
    """Each filter's non-zero FFT-bin range and weights (1–14 bins wide)."""
    spans = []
    for row in mel_filters():
        nonzero = np.flatnonzero(row)
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        spans.append((lo, hi, row[lo:hi].copy()))
    return spans


def _apply_mel(power: np.ndarray) -> np.ndarray:
    """``mel_filters() @ power`` for ``power`` of shape ``[201, frames]``.

    The filterbank is >97 % zeros. One dense matmul would go to a
    multi-threaded BLAS, which on a busy 2-core machine spins and costs 5–15x
    more than these 80 tiny products (~1 ms).
    """
    out = np.empty((N_MELS, power.shape[1]), np.float64)
    for index, (lo, hi, weights) in enumerate(_mel_spans()):
        np.dot(weights, power[lo:hi], out=out[index])
    return out


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    # Periodic Hann (torch.hann_window's default), not numpy's symmetric one.
    return np.hanning(N_FFT + 1)[:-1]


def fit_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of ``audio``, left-padded with zeros when shorter.

    Smart Turn judges how the audio *ends*: padding goes at the start so the
    end stays at the end of the window (padding at the end flips results).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) >= WINDOW_SAMPLES:
        return audio[-WINDOW_SAMPLES:]
    return np.concatenate([np.zeros(WINDOW_SAMPLES - len(audio), np.float32), audio])


def trim_trailing_silence(audio: np.ndarray, keep: float, *, floor_db: float = -40.0) -> np.ndarray:
    """Cut quiet audio after the last speech down to ``keep`` seconds.

    Quiet means 10 ms blocks whose RMS is ``floor_db`` below the loudest
    block. Audio with no sound at all is returned unchanged.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    block = SAMPLE_RATE // 100
    count = len(audio) // block
    if count == 0:
        return audio
    blocks = audio[: count * block].reshape(count, block).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(blocks), axis=1))
    peak = float(rms.max())
    if peak <= 1e-5:  # below -100 dBFS: nothing to anchor on
        return audio
    loud = np.flatnonzero(rms >= peak * 10 ** (floor_db / 20))
    end = (int(loud[-1]) + 1) * block + round(keep * SAMPLE_RATE)
    return audio[:end] if end < len(audio) else audio


def log_mel_features(window: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Whisper log-mel features of an 8 s window of 16 kHz audio.

    Args:
        window: Exactly 128 000 float samples in -1..1 (see :func:`fit_window`).
        normalize: Zero-mean, unit-variance waveform first (Smart Turn does).

    Returns:
        float32 ``[80, 800]``.

    Raises:
        ValueError: The window is not 128 000 samples.
    """
    x = np.asarray(window, dtype=np.float32)
    if x.shape != (WINDOW_SAMPLES,):
        raise ValueError(f"expected {WINDOW_SAMPLES} samples, got shape {x.shape}")
    if normalize:
        # In float32, as the reference normalises its float32 buffer.
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP]  # 801 centred frames
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2
    mel = _apply_mel(np.ascontiguousarray(power[:-1].T))  # drop the last frame, as Whisper does
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    scaled: np.ndarray = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return scaled

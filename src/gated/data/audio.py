"""Speech audio: WAV files in, frames of log-mel energies or MFCCs out.

:func:`read_wav` reads 16-bit PCM mono WAV with the standard library's ``wave``
module and refuses anything else with a ``file: reason`` DataError (a stereo
file would otherwise be read as one channel at twice the rate, and 8-bit or
24-bit samples as noise). A file at another sample rate than the one asked for
is resampled with ``scipy.signal.resample_poly`` (a polyphase filter that
removes what the new rate cannot hold), never read at the wrong speed.

:func:`features` turns samples into frames: a 25 ms Hann window every 10 ms,
its power spectrum from ``torch.stft``, summed through a triangular mel
filterbank (:func:`mel_filterbank`, HTK's mel scale), then the log (``logmel``)
and, for ``mfcc``, a DCT-II of that log (the cepstrum) keeping the first 13
coefficients. :class:`FrameFeatures` computes the same frames from audio that
arrives in pieces (a microphone's buffers), each frame as soon as its samples are in.
"""

from __future__ import annotations

import functools
import math
import os
import wave
from fractions import Fraction

import numpy as np
import torch

from .errors import DataError

FEATURES = ("mfcc", "logmel")
SAMPLE_RATE = 8000  # FSDD's rate, and telephone speech's: 4 kHz of bandwidth holds what tells digits apart
WINDOW_SECONDS, HOP_SECONDS = 0.025, 0.010  # the usual speech frame: short enough that the voice is steady in it
N_MELS, N_MFCC = 40, 13
_FLOOR = 1e-6  # added before the log: silence gives a finite, low value, not -inf


def read_wav(path: str | os.PathLike, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The samples of a 16-bit PCM mono WAV file as float32 in [-1, 1), at ``rate`` Hz (resampled if need be)."""
    try:
        with wave.open(os.fspath(path), "rb") as f:
            channels, width, file_rate, count = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            raw = f.readframes(count)
    except (wave.Error, EOFError) as error:
        raise DataError(path, f"not a PCM WAV file ({error}); convert it to 16-bit PCM mono WAV") from None
    if channels != 1:
        raise DataError(path, f"{channels} channels; only mono is read: mix it down to one channel "
                        "(e.g. sox in.wav -c 1 out.wav)")
    if width != 2:
        raise DataError(path, f"{8 * width}-bit samples; only 16-bit PCM is read: convert it "
                        "(e.g. sox in.wav -b 16 out.wav)")
    samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if samples.size == 0:
        raise DataError(path, "no audio in it (0 samples)")
    if file_rate != rate:
        samples = resample(samples, file_rate, rate)
    return samples


def wav_rate(path: str | os.PathLike) -> int:
    """The sample rate a WAV file declares (read its samples with :func:`read_wav`, which checks the rest)."""
    try:
        with wave.open(os.fspath(path), "rb") as f:
            return f.getframerate()
    except (wave.Error, EOFError) as error:
        raise DataError(path, f"not a PCM WAV file ({error}); convert it to 16-bit PCM mono WAV") from None


def resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    """``samples`` at ``source`` Hz as they would be at ``target`` Hz: polyphase, low-pass filtered first."""
    from scipy.signal import resample_poly

    ratio = Fraction(target, source)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def hz_to_mel(hz):
    """HTK's mel scale: about linear below 1 kHz and logarithmic above, as pitch is heard."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, rate: int, low: float = 20.0, high: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangles, equally spaced on the mel scale from ``low`` to ``high`` Hz.

    Each triangle rises from its left neighbour's centre to its own and falls to its right neighbour's,
    so neighbouring filters cross at half height and together they cover the band evenly.
    """
    high = rate / 2 if high is None else high
    edges = mel_to_hz(np.linspace(hz_to_mel(low), hz_to_mel(high), n_mels + 2))
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)  # the frequency of each FFT bin
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None)).float()


def frame_sizes(rate: int) -> tuple[int, int, int]:
    """Window and hop in samples, and the FFT size: the power of two that holds the window."""
    window, hop = round(WINDOW_SECONDS * rate), round(HOP_SECONDS * rate)
    return window, hop, 2 ** math.ceil(math.log2(window))


def power_spectrogram(samples: np.ndarray, rate: int) -> torch.Tensor:
    """(frames, n_fft // 2 + 1) power of each Hann-windowed frame, one every hop from the start.

    Frame k reads samples k * hop to k * hop + n_fft with the window centred in them (torch.stft's way);
    a clip shorter than n_fft is padded with silence to give one frame.
    """
    window, hop, n_fft = frame_sizes(rate)
    x = torch.from_numpy(np.asarray(samples, dtype=np.float32))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spectrum = torch.stft(x, n_fft, hop_length=hop, win_length=window, window=_hann(window),
                          center=False, return_complex=True)
    return spectrum.abs().pow(2).T


@functools.lru_cache(maxsize=8)
def _hann(size: int) -> torch.Tensor:
    """torch's periodic Hann window, made once per size: a stream computes a frame every 10 ms."""
    return torch.hann_window(size)


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_in, n_out) orthonormal DCT-II: ``x @ D`` gives the first n_out cosine coefficients of x."""
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


@functools.lru_cache(maxsize=8)
def _projections(rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mel filterbank (transposed) and the DCT for ``rate``, built once: a stream asks for them every frame."""
    _, _, n_fft = frame_sizes(rate)
    return mel_filterbank(N_MELS, n_fft, rate).T.contiguous(), dct_matrix(N_MELS, N_MFCC)


def features(samples: np.ndarray, rate: int = SAMPLE_RATE, kind: str = "mfcc") -> np.ndarray:
    """(frames, 13) MFCCs or (frames, 40) log-mel energies of ``samples`` (float32)."""
    if kind not in FEATURES:
        raise ValueError(f"unknown features {kind!r}: choose one of {', '.join(FEATURES)}")
    mel, dct = _projections(rate)
    log_mel = torch.log(power_spectrogram(samples, rate) @ mel + _FLOOR)
    if kind == "logmel":
        return log_mel.numpy()
    return (log_mel @ dct).numpy()


def channels(kind: str) -> int:
    """How many numbers a frame of ``kind`` features has."""
    return N_MELS if kind == "logmel" else N_MFCC


class FrameFeatures:
    """The frames of :func:`features`, computed while the audio arrives.

    ``push(samples)`` takes the next piece of audio (any length, as a microphone's buffer
    gives it) and returns the frames that piece completed: frame k needs samples
    ``k * hop`` to ``k * hop + n_fft``, so it is out as soon as those are in. Each frame is
    computed by :func:`features` itself on exactly its samples, so the frames equal those of
    the whole recording. ``finish()`` ends the audio: a recording shorter than one frame then
    gives its one frame, padded with silence as :func:`features` pads it.
    """

    def __init__(self, rate: int = SAMPLE_RATE, kind: str = "mfcc") -> None:
        if kind not in FEATURES:
            raise ValueError(f"unknown features {kind!r}: choose one of {', '.join(FEATURES)}")
        self.rate, self.kind = rate, kind
        _, self.hop, self.n_fft = frame_sizes(rate)
        self._pending = np.zeros(0, dtype=np.float32)  # samples from the next frame's start on
        self.frames = 0  # frames given out so far
        self.samples = 0  # samples received so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        """(new frames, channels): the frames completed by ``samples``, possibly none."""
        self.samples += len(samples)
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        ready = 0 if len(self._pending) < self.n_fft else 1 + (len(self._pending) - self.n_fft) // self.hop
        if not ready:
            return np.zeros((0, channels(self.kind)), dtype=np.float32)
        out = features(self._pending[: (ready - 1) * self.hop + self.n_fft], self.rate, self.kind)
        self._pending = self._pending[ready * self.hop :]
        self.frames += ready
        return out

    def finish(self) -> np.ndarray:
        """The frames still owed at the end of the audio: one padded frame if there was none yet, else none."""
        if self.frames or not len(self._pending):
            return np.zeros((0, channels(self.kind)), dtype=np.float32)
        self.frames = 1
        return features(self._pending, self.rate, self.kind)

    def frame_time(self, k: int) -> float:
        """Seconds into the audio at which frame k can be computed: when its last sample has arrived."""
        return min(k * self.hop + self.n_fft, max(self.samples, 1)) / self.rate

"""WAV reading and speech features, checked against independent computations (numpy's FFT, scipy's DCT)."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import scipy.fft

from gated.data import audio
from gated.data.errors import DataError


def write_wav(path, samples, rate=8000, channels=1, width=2):
    """Samples in [-1, 1] as a PCM WAV file (16-bit unless ``width`` says otherwise)."""
    ints = np.round(np.asarray(samples) * (2 ** (8 * width - 1) - 1)).astype("<i2" if width == 2 else np.int32)
    data = ints.tobytes() if width == 2 else bytes(int(v + 128) & 0xFF for v in ints.ravel())
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data)
    return path


def sine(freq, seconds=0.5, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def test_a_wav_reads_back_as_its_samples(tmp_path):
    samples = sine(440)
    read = audio.read_wav(write_wav(tmp_path / "a.wav", samples))
    assert read.dtype == np.float32 and len(read) == len(samples)
    assert np.abs(read - samples).max() < 1e-4  # 16-bit rounding


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_text("not audio at all"), "not a PCM WAV file"),
    (lambda p: write_wav(p, []), "no audio in it"),
    (lambda p: write_wav(p, np.zeros(800), channels=2), "2 channels; only mono"),
    (lambda p: write_wav(p, sine(440), width=1), "8-bit samples; only 16-bit"),
])
def test_bad_audio_names_the_file_and_the_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError) as error:
        audio.read_wav(path)
    assert str(error.value).startswith(f"{path}: ") and reason in str(error.value)
    assert "\n" not in str(error.value)


def test_another_sample_rate_is_resampled_not_misread(tmp_path):
    """A 1 kHz tone recorded at 16 kHz is still 1 kHz at 8 kHz, with half the samples."""
    read = audio.read_wav(write_wav(tmp_path / "hi.wav", sine(1000, rate=16000), rate=16000), rate=8000)
    assert len(read) == 4000
    spectrum = np.abs(np.fft.rfft(read))
    assert np.fft.rfftfreq(len(read), 1 / 8000)[spectrum.argmax()] == pytest.approx(1000, abs=2)


def test_the_stft_puts_a_sine_in_its_bin_as_numpy_does():
    rate = 8000
    window, hop, n_fft = audio.frame_sizes(rate)
    assert (window, hop, n_fft) == (200, 80, 256)
    freq = 40 * rate / n_fft  # the centre of bin 40
    samples = sine(freq).astype(np.float32)
    power = audio.power_spectrogram(samples, rate).numpy()
    assert power.shape == (1 + (len(samples) - n_fft) // hop, n_fft // 2 + 1)
    assert (power.argmax(1) == 40).all()
    # Frame 3 by hand: a periodic Hann window, zero-padded to n_fft, centred as torch.stft centres it.
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    frame = np.zeros(n_fft)
    start = (n_fft - window) // 2
    frame[start : start + window] = hann
    frame *= samples[3 * hop : 3 * hop + n_fft]
    np.testing.assert_allclose(power[3], np.abs(np.fft.rfft(frame)) ** 2, rtol=1e-3, atol=1e-3)


def test_the_mel_filters_peak_at_their_centres_and_cover_the_band_evenly():
    rate, n_fft, n_mels = 8000, 4096, 10  # fine bins, so a centre falls close to a bin
    bank = audio.mel_filterbank(n_mels, n_fft, rate, low=100.0).numpy()
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    centres = bins[bank.argmax(1)]
    assert np.all(np.diff(centres) > 0)
    mel_steps = np.diff(audio.hz_to_mel(centres))
    assert np.allclose(mel_steps, mel_steps.mean(), rtol=0.01)  # equally spaced in mel, not in Hz
    assert np.diff(centres)[-1] > 2 * np.diff(centres)[0]
    assert bank.max(1) == pytest.approx(np.ones(n_mels), abs=0.01)
    inside = (bins >= centres[0]) & (bins <= centres[-1])
    assert bank[:, inside].sum(0) == pytest.approx(np.ones(inside.sum()), abs=1e-6)  # neighbours cross at half


def test_mfccs_are_scipys_orthonormal_dct_of_the_log_mel():
    samples = sine(300) + 0.1 * np.random.default_rng(0).standard_normal(4000)
    log_mel = audio.features(samples, 8000, "logmel")
    mfcc = audio.features(samples, 8000, "mfcc")
    assert log_mel.shape[1] == audio.N_MELS and mfcc.shape == (len(log_mel), audio.N_MFCC)
    expected = scipy.fft.dct(log_mel.astype(np.float64), type=2, norm="ortho", axis=1)[:, : audio.N_MFCC]
    np.testing.assert_allclose(mfcc, expected, rtol=1e-4, atol=1e-3)


def test_a_clip_shorter_than_one_window_still_gives_one_frame():
    assert audio.features(sine(440, seconds=0.01), 8000).shape == (1, audio.N_MFCC)

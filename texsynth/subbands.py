"""Sub-band envelopes of a waveform at a few milliseconds' resolution.

The spectrogram's statistics are measured on frames of 16-128 ms; whatever happens inside a
frame (the click of a droplet, a bubble's chirp sweeping through a band, the beating of close
partials) is decided by the phase, which the spectrogram does not hold. These envelopes see
it: each band of an auditory-like filterbank is cut out of the signal's spectrum, shifted to
baseband and brought back as an analytic signal whose magnitude is the band's envelope (the
cochlear-envelope view of McDermott & Simoncelli, "Sound texture perception via statistics of
the auditory periphery", 2011). Only a waveform has them, so they serve the waveform stage.
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import torch

N_BANDS = 32
LOWEST_HZ = 40.0
ENVELOPE_RATE = 500  # Hz: envelopes are averaged down to 2 ms steps after compression
COMPRESSION = 0.3  # the cochlea's compressive response, as in the spectrogram's envelopes
WRAP_SECONDS = 0.05  # dropped at each end: how far the circular wrap of a band's filter reaches


class SubbandEnvelopes:
    """Compressed envelopes (bands, steps) of signals of ``n_samples`` samples at ``sr`` Hz.

    Bands are half-cosine windows on the mel scale, each reaching the centres of its
    neighbours, from `LOWEST_HZ` to just below Nyquist; their squared gains sum to 1 between
    the first and last centre, so the bands share the signal's power without gaps or excess.
    Envelopes come from the whole signal's FFT, so a signal is treated as circular; `trim`
    steps at each end, where the wrap reaches, are dropped.
    """

    def __init__(self, n_samples: int, sr: int, *, n_bands: int = N_BANDS, device="cpu"):
        self.n_samples = n_samples
        n_bins = n_samples // 2 + 1
        freqs = np.fft.rfftfreq(n_samples, 1 / sr)
        edges = librosa.mel_frequencies(n_bands + 2, fmin=LOWEST_HZ, fmax=0.95 * sr / 2)
        mels = librosa.hz_to_mel(freqs)
        lo, hi, gains = [], [], []
        for k in range(n_bands):
            a, b, c = librosa.hz_to_mel(edges[k:k + 3])
            first = np.searchsorted(freqs, edges[k])
            last = min(np.searchsorted(freqs, edges[k + 2]), n_bins)
            m = mels[first:last]
            gains.append(np.cos((m - b) / np.where(m < b, b - a, c - b) * np.pi / 2))
            lo.append(first)
            hi.append(last)
        # Every band's slice fits one baseband buffer. The envelopes come out at a multiple of
        # ENVELOPE_RATE fast enough for the widest band's fluctuations, then are averaged down
        # to ENVELOPE_RATE.
        widest = max(h - l for l, h in zip(lo, hi))
        self.pool = math.ceil(widest * sr / n_samples / ENVELOPE_RATE)
        self.n_baseband = max(widest, math.ceil(n_samples * self.pool * ENVELOPE_RATE / sr))
        gain = np.zeros((n_bands, self.n_baseband), np.float32)
        index = np.zeros((n_bands, self.n_baseband), np.int64)
        for k, (l, h, g) in enumerate(zip(lo, hi, gains)):
            gain[k, :h - l] = g
            index[k, :h - l] = np.arange(l, h)
        self.gain = torch.from_numpy(gain).to(device)
        self.index = torch.from_numpy(index).to(device)
        self.rate = self.n_baseband / n_samples * sr / self.pool
        self.trim = math.ceil(WRAP_SECONDS * self.rate)

    def analytic(self, y: torch.Tensor) -> torch.Tensor:
        """Each band's analytic signal (bands, n_baseband), shifted to baseband: sample ``j``
        is the band-passed analytic signal at time ``j * n_samples / n_baseband`` times a
        unit-modulus factor, so its magnitude is the band's envelope there."""
        spectrum = torch.fft.rfft(y, self.n_samples)
        # An analytic signal has only positive frequencies, each twice the rfft bin.
        bands = spectrum[self.index] * (2 * self.gain)
        return torch.fft.ifft(bands, dim=1) * (self.n_baseband / self.n_samples)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """Envelopes of ``y`` (n_samples,) as (bands, steps), compressed and averaged."""
        a = self.analytic(y)
        env = (a.real**2 + a.imag**2 + 1e-12) ** (COMPRESSION / 2)
        if self.pool > 1:
            env = torch.nn.functional.avg_pool1d(env[None], self.pool, self.pool)[0]
        return env[:, self.trim:env.shape[1] - self.trim] if env.shape[1] > 4 * self.trim else env

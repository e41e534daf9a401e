"""Choosing the STFT size and the rhythm horizon for an input.

No one window suits every texture. Short windows keep the attack of every droplet and
crackle, which the statistics of impulsive sounds depend on; long windows resolve partials
that short ones smear into noise. We ask the input itself: for each candidate size, take the
magnitude of its STFT, rebuild audio from that magnitude alone (Griffin-Lim) and compare the
rebuilt audio with the original in two ways:

* auditory texture statistics (subband envelope moments, correlations, modulation power),
  which short windows keep best for impulsive sounds;
* the fine long-term spectrum (about 4 Hz resolution), which only windows long enough to
  resolve the partials keep for tonal sounds.

The chosen size is the shortest whose statistics come within `TOLERANCE_DB` of the best size
and whose long-term spectrum comes through within `SPECTRUM_ERROR_DB` (RMS over frequency),
unless a longer one is as good on statistics and clearly sharper (`SHARPER_SPECTRUM_DB`).

How far the autocorrelation loss looks is asked of the input too (`periodicity`). A loop or a
steady beat repeats at lags of seconds and needs them matched; for a beatless texture the
autocorrelation at such lags is estimation noise of one short recording, and matching it ties
the synthesis to that recording's particular slow events.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from . import spectral
from .settings import N_FFT_CHOICES, Settings, at_rate, scale_size, validate

log = logging.getLogger(__name__)

TOLERANCE_DB = 6.0  # how far below the best round trip the chosen size's statistics may be
# Half or double the power, on average over the spectrum. Measured at 256 / 512 / 1024 / 2048:
# a 50 Hz hum 5.0 / 4.7 / 1.2 / 0.5 dB, a church bell 3.8 / 2.8 / 1.8 / 1.2 dB; fire, rain,
# wind, war drums, tapping and clicks at most 2.2 dB at 256, where their statistics are best.
SPECTRUM_ERROR_DB = 3.0
# A longer size is preferred when its statistics are at most FREE_STATS_DB worse and its
# spectrum error SHARPER_SPECTRUM_DB lower. Measured: a 110-330 Hz drone's 16 ms and 64 ms
# round trips keep statistics of 28.6 and 28.1 dB, spectrum errors 2.5 and 0.3 dB, and its
# synthesis scores fidelity 0.15 (2 of 10 spectral peaks kept) and 0.67 (all kept); war
# drums gain 0.9 dB of spectrum at 32 ms and stay at 16 ms, as does everything else measured.
FREE_STATS_DB = 1.0
SHARPER_SPECTRUM_DB = 1.5
SPECTRUM_SECONDS = 0.256  # Welch segment for the long-term spectrum: ~4 Hz bins
EXCERPT_SECONDS = 10.0  # the round trips look at this much of the input
ROUND_TRIP_ITERS = 32
N_BANDS = 24
ENVELOPE_RATE = 400  # Hz
MODULATION_EDGES = 2.0 ** np.arange(0, 8)  # 1-128 Hz, octave bands
ONSET_RATE = 100  # onset-strength frames per second for `periodicity`
# An input repeats when the autocorrelation of its onset strength at lags 0.2-4 s has a peak
# above PERIODIC_PEAK (a dense loop: near 1), or one peak standing PERIODIC_Z robust standard
# deviations above the rest (a sparse loop, whose hits rarely coincide elsewhere). Measured
# (peak, z): rain, wind, fire, ship creaks, a hum, one bell strike at most 0.26 and 4.0;
# synthetic tapping 0.95 and 13.9, war drums 0.36 and 36, a repeated bell 0.99 and 268.
PERIODIC_PEAK = 0.5
PERIODIC_Z = 8.0
# An input whose chosen window is at least this long has partials that need it: a hum, a
# drone, sustained chimes (fire, rain, wind, creaks, drums, insects, water: 16 ms).
TONAL_SECONDS = 0.060
PERIODIC_LAG_SECONDS = 4.0
APERIODIC_LAG_SECONDS = 1.0


def band_gains(n: int, sr: int, n_bands: int = N_BANDS) -> np.ndarray:
    """Raised-cosine bands, evenly spaced on the mel scale from 50 Hz to 0.45 sr, over the
    ``rfft`` bins of an ``n``-sample signal: (bands, n // 2 + 1)."""
    import librosa

    edges = librosa.mel_frequencies(n_bands + 2, fmin=50.0, fmax=0.45 * sr)
    mel = librosa.hz_to_mel(np.fft.rfftfreq(n, 1.0 / sr))
    centres = librosa.hz_to_mel(edges)
    gains = np.zeros((n_bands, mel.size))
    for k in range(n_bands):
        lo, hi = centres[k], centres[k + 2]
        inside = (mel > lo) & (mel < hi)
        gains[k, inside] = np.sin(np.pi * (mel[inside] - lo) / (hi - lo))
    return gains


def auditory_statistics(y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """Envelope statistics of mel-spaced subbands (McDermott & Simoncelli 2011 in spirit):
    per-band mean, coefficient of variation, skewness and log kurtosis of the compressed
    envelopes, their cross-band correlations, and each band's modulation power in octave
    bands from 1 to 128 Hz (as fractions of its total)."""
    n = y.size
    spectrum = np.fft.rfft(y)
    gains = band_gains(n, sr)
    # Analytic signal of each band: positive frequencies doubled, negative ones dropped.
    full = np.zeros((gains.shape[0], n), dtype=complex)
    full[:, : spectrum.size] = 2 * spectrum * gains
    env = np.abs(np.fft.ifft(full, axis=1)) ** 0.3
    step = max(1, sr // ENVELOPE_RATE)
    usable = env.shape[1] // step * step
    env = env[:, :usable].reshape(env.shape[0], -1, step).mean(2)
    trim = env.shape[1] // 20  # the circular filtering wraps at the ends
    env = env[:, trim: env.shape[1] - trim]

    mean = env.mean(1)
    centred = env - mean[:, None]
    std = centred.std(1) + 1e-12
    z = centred / std[:, None]
    stats = {
        "mean": mean,
        "cv": std / (mean + 1e-12),
        "skew": (z**3).mean(1),
        "kurtosis": np.log((z**4).mean(1)),
        "correlation": np.corrcoef(env)[np.triu_indices(env.shape[0], 1)],
    }
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2
    freqs = np.fft.rfftfreq(env.shape[1], step / sr)
    total = power.sum(1) + 1e-12
    stats["modulation"] = np.stack([power[:, (freqs >= a) & (freqs < b)].sum(1) / total
                                    for a, b in zip(MODULATION_EDGES[:-1], MODULATION_EDGES[1:])], 1).ravel()
    return stats


def long_term_spectrum(y: np.ndarray, sr: int) -> np.ndarray:
    """Welch power spectrum in dB from 40 Hz to 0.45 sr, less its mean."""
    import scipy.signal

    freqs, power = scipy.signal.welch(y, sr, nperseg=min(y.size, int(SPECTRUM_SECONDS * sr)))
    db = 10 * np.log10(power[(freqs >= 40) & (freqs <= 0.45 * sr)] + 1e-12)
    return db - db.mean()


def rms_db(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """``10 log10(|ref|^2 / |ref - other|^2)``."""
    return float(10 * np.log10((np.sum(reference**2) + 1e-20) / (np.sum((reference - other) ** 2) + 1e-20)))


def statistics_snr(reference: dict, other: dict) -> float:
    """Mean of `snr_db` over the statistic classes, dB."""
    return float(np.mean([snr_db(ref, other[key]) for key, ref in reference.items()]))


def round_trip(y: np.ndarray, sr: int, n_fft: int) -> tuple[float, float]:
    """How ``y`` rebuilt from its STFT magnitude differs from ``y``: the SNR of its auditory
    statistics and the RMS error of its long-term spectrum, both in dB."""
    x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    S = spectral.stft(x, n_fft, n_fft // 4).abs()
    rebuilt = spectral.griffin_lim(S, n_fft=n_fft, hop_length=n_fft // 4, length=x.numel(),
                                   n_iter=ROUND_TRIP_ITERS, momentum=0.99, init="pghi")
    z = rebuilt.numpy().astype(np.float64)
    y = y.astype(np.float64)
    return (statistics_snr(auditory_statistics(y, sr), auditory_statistics(z, sr)),
            rms_db(long_term_spectrum(y, sr), long_term_spectrum(z, sr)))


def choose_n_fft(y: np.ndarray, sr: int, candidates=N_FFT_CHOICES) -> tuple[int, dict]:
    """The STFT size for ``y`` at ``sr``, from ``candidates`` given at 16 kHz.

    Returns the size and, for the record, each size's `round_trip` figures.
    """
    excerpt = np.asarray(y[: int(EXCERPT_SECONDS * sr)], dtype=np.float64)
    excerpt = excerpt - excerpt.mean()
    sizes = [scale_size(n, sr) for n in candidates]
    sizes = [n for n in sizes if 4 * n <= excerpt.size] or sizes[:1]
    if len(sizes) == 1 or not np.any(excerpt):
        return sizes[0], {}
    snrs = {n: round_trip(excerpt, sr, n) for n in sizes}
    best = max(stats for stats, _ in snrs.values())
    fine = [n for n, (stats, spectrum) in snrs.items()
            if stats >= best - TOLERANCE_DB and spectrum <= SPECTRUM_ERROR_DB]
    # With no size good on both counts, the spectrum decides: its loss is the one heard as smear.
    chosen = min(fine) if fine else min(snrs, key=lambda n: snrs[n][1])
    # A longer window that keeps the statistics as they are and clearly sharpens the spectrum
    # is taken even when the shorter one passed: low partials smear at 16 ms without pushing
    # the spectrum error past its bound (a 110 Hz drone: 2.5 dB at 16 ms, 0.3 at 64 ms).
    for n in sorted(snrs):
        if (n > chosen and snrs[n][0] >= snrs[chosen][0] - FREE_STATS_DB
                and snrs[n][1] <= snrs[chosen][1] - SHARPER_SPECTRUM_DB):
            chosen = n
    log.info("STFT size %d chosen; round trip by size (statistics SNR / spectrum error): %s", chosen,
             ", ".join(f"{n}: {a:.1f} / {b:.1f} dB" for n, (a, b) in snrs.items()))
    return chosen, snrs


def periodicity(y: np.ndarray, sr: int) -> tuple[float, float]:
    """How strongly ``y`` repeats at lags of 0.2-4 s, from the autocorrelation of its onset
    strength (normalised to 1 at lag 0): the highest local peak, and how many robust standard
    deviations (1.4826 x the median absolute deviation) that peak stands above the median
    over those lags. Both are (0, 0) when ``y`` is too short to tell (under about 0.9 s) or
    has no onsets at all.
    """
    import librosa

    hop = max(1, round(sr / ONSET_RATE))
    onset = librosa.onset.onset_strength(y=np.asarray(y, dtype=np.float32), sr=sr, hop_length=hop,
                                         n_fft=scale_size(2048, sr))
    onset = onset - onset.mean()
    T = onset.size
    lo, hi = round(0.2 * ONSET_RATE), min(round(4.0 * ONSET_RATE), T // 3 - 1)
    if hi - lo < 10 or not np.any(onset):
        return 0.0, 0.0
    n = 1 << (2 * T - 1).bit_length()
    spectrum = np.fft.rfft(onset, n)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, n)[: hi + 1] / np.arange(T, T - hi - 1, -1)
    lags = ac[lo - 1 : hi + 1] / ac[0]
    peaks = lags[1:-1][(lags[1:-1] > lags[:-2]) & (lags[1:-1] >= lags[2:])]
    if peaks.size == 0:  # a smooth decay: nothing repeats
        return 0.0, 0.0
    median = np.median(lags)
    spread = 1.4826 * np.median(np.abs(lags - median))
    return float(peaks.max()), float((peaks.max() - median) / max(spread, 1e-6))


def is_periodic(y: np.ndarray, sr: int) -> bool:
    """Whether ``y`` is a loop or a beat (see `periodicity` and `PERIODIC_PEAK`)."""
    peak, z = periodicity(y, sr)
    periodic = peak >= PERIODIC_PEAK or z >= PERIODIC_Z
    log.info("onset autocorrelation peak %.2f, %.1f robust deviations above the rest: %s", peak, z,
             "periodic" if periodic else "not periodic")
    return periodic


def resolve(settings: Settings, y: np.ndarray, sr: int, *, periodic: bool | None = None) -> Settings:
    """``settings`` for ``y`` at ``sr`` with every size concrete: rates scaled (`at_rate`),
    ``n_fft = 0`` chosen for ``y``, ``hop_length = 0`` made a quarter of ``n_fft`` and
    ``max_lag_seconds = 0`` chosen by whether ``y`` repeats (`is_periodic`, unless
    ``periodic`` already says)."""
    s = at_rate(settings, sr)
    if not s.n_fft:
        s = s.replace(n_fft=choose_n_fft(y, sr)[0])
    if not s.hop_length:
        s = s.replace(hop_length=s.n_fft // 4)
    if not s.max_lag_seconds:
        if periodic is None:
            periodic = is_periodic(y, sr)
        s = s.replace(max_lag_seconds=PERIODIC_LAG_SECONDS if periodic else APERIODIC_LAG_SECONDS)
    return validate(s)

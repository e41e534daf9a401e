"""All tunable settings in one frozen object, validated in one place."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields

from .errors import TexsynthError

OPTIMIZERS = ("lbfgs", "adam")
PHASE_INITS = ("pghi", "random", "zero")
SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT")
REFERENCE_RATE = 16000  # the rate that n_fft and hop_length are given for when sample_rate = 0
NATIVE_RATES = (8000, 48000)  # sample_rate = 0 works at the input's rate, brought into this range
N_FFT_CHOICES = (256, 512, 1024, 2048)  # the sizes n_fft = 0 chooses from, at 16 kHz


@dataclass(frozen=True)
class Settings:
    # Working and output sample rate, Hz. Inputs at other rates are resampled. 0: the input's
    # own rate (brought into 8-48 kHz), with n_fft and hop_length read as sizes at 16 kHz and
    # scaled so that the window and hop span the same time.
    sample_rate: int = 16000
    # STFT size in samples (window = n_fft, Hann); 512 at 16 kHz is 32 ms. 0: chosen for each
    # input from 256, 512, 1024 and 2048 (see texsynth/resolution.py). No size suits all:
    # measured fidelity at 256 / 512 / 1024 / 2048, campfire 1.05 / 0.91 / 0.80 / 0.62,
    # synthetic rain 0.73 / 0.51 / 0.32 / 0.14, synthetic 50 Hz hum 0.07 / 0.09 / 0.24 / 0.31.
    n_fft: int = 0
    # STFT hop in samples; 0: a quarter of n_fft.
    hop_length: int = 0
    # Added to the magnitude before the log, for a signal normalised to RMS 0.1.
    log_floor: float = 1e-3
    # Receptive fields of the random nets, in frames, one net each.
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
    # Random filters per net.
    n_filters: int = 128
    # Taps per filter at most; wider nets see a time-pooled spectrogram (0: never pool).
    # 16 is 6x faster than direct convolution and scored higher fidelity (0.90 vs 0.82).
    max_taps: int = 16
    # Weight of the Gram (filter co-activation) loss.
    gram_weight: float = 1.0
    # Weight of the per-filter autocorrelation loss (rhythm, periodicity); 0 turns it off.
    # Light by default: loops get `rhythmic` (20) and tonal inputs `pitched` (5) unless a
    # preset is named, so the default serves beatless textures, whose marginal statistics a
    # heavier term costs. Measured at 0 / 0.3 / 1: campfire 1.10 / 1.19 / 1.12, synthetic
    # rain 0.98 / 1.03 / 1.00, crickets 0.86 / 0.86 / 0.66, a stream 0.67 / 0.64 / 0.57; ship
    # creaks' modulation statistics 2.1 / 4.8 / 4.5 dB, wind's -3.2 / -1.9 / -0.7 dB.
    autocorr_weight: float = 0.3
    # Longest autocorrelation lag compared, seconds; 0: 4 s for inputs that repeat (loops,
    # beats), 1 s for the rest (see texsynth.resolution.periodicity).
    max_lag_seconds: float = 0.0
    # Weight of the band-envelope moment loss (level, spread, skew, kurtosis per band).
    # Without it crackle turns to hiss: fire fidelity 0.37 -> 0.85 with it.
    moments_weight: float = 1.0
    # Weight of the per-bin marginals of the log spectrogram: each bin's mean, and its spread
    # over time kept at most the recording's (see texsynth.losses.marginal_error). Keeps
    # steady partials steady: synthetic 50 Hz hum fidelity 0.24 -> 0.56 at weight 1, but war
    # drums 1.05 -> 0.70 (broadband hits lose their coherence across bins), so it is 0 here
    # and 3 in `pitched`.
    marginal_weight: float = 0.0
    # Weight of the penalty on similarity to the original at its best time shift.
    # 0.5 brings copying down to the recording's own level between its halves.
    diversity_weight: float = 0.5
    # Optimiser steps (loss evaluations).
    steps: int = 150
    # Times the optimisation stops to replace its spectrogram by that of real audio near it.
    projections: int = 2
    # Griffin-Lim iterations for each of those projections.
    projection_iters: int = 32
    # "lbfgs" or "adam".
    optimizer: str = "lbfgs"
    # Step size: L-BFGS's initial step, or Adam's learning rate.
    learning_rate: float = 1.0
    # Griffin-Lim iterations for the phase.
    griffin_lim_iters: int = 100
    # Griffin-Lim momentum (0 = classic Griffin-Lim; 0.99 = fast Griffin-Lim).
    momentum: float = 0.99
    # L-BFGS steps on the audio samples after Griffin-Lim, with the same loss (0: none).
    # Griffin-Lim's nearest signal loses part of the matched statistics (the loss measured on
    # its audio is 10-100x the spectrogram's); optimising the samples wins it back. Noise-like
    # textures gain (synthetic rain fidelity 0.73 -> 0.89, campfire 1.05 -> 1.13); drum loops
    # lose (war drums 1.09 -> 0.81), so `rhythmic` turns it off. With the sub-band moments
    # below, 75 steps instead of 50: a stream 0.79 -> 0.81 (seed 1: 0.79 -> 0.80), rain 1.150
    # -> 1.158, campfire 1.194 -> 1.196, crickets 0.949 -> 0.939, for about 5 s more per 10 s.
    refine_steps: int = 75
    # Weight, in that refinement, of the moments of the waveform's sub-band envelopes at 2 ms
    # steps (texsynth/subbands.py): what happens inside a spectrogram frame, such as a
    # bubble's chirp or a droplet's click, which the phase decides. Measured at 0 / 5 / 10: a
    # stream 0.64 / 0.78 / 0.79, synthetic rain 1.03 / 1.13 / 1.15, crickets 0.86 / 0.95 /
    # 0.95, campfire 1.19 at each; about 10% more time.
    subband_weight: float = 10.0
    # Initial phase for Griffin-Lim: "pghi", "random" or "zero".
    phase_init: str = "pghi"
    # Only the first this many seconds of an input are analysed.
    max_input_seconds: float = 60.0
    # Output sample format: "PCM_16", "PCM_24", "PCM_32" or "FLOAT".
    subtype: str = "PCM_16"

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def validate(settings: Settings, source: str = "settings") -> Settings:
    """Check every field; raise `TexsynthError` naming the first bad one and what is allowed."""
    s = settings

    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise TexsynthError(f"{source}: {name}={getattr(s, name)!r} must be {rule}")

    need(s.sample_rate == 0 or 4000 <= s.sample_rate <= 192000, "sample_rate",
         "0 (the input's own rate) or between 4000 and 192000 Hz")
    need(s.n_fft == 0 or 64 <= s.n_fft <= 16384, "n_fft", "0 (chosen for each input) or between 64 and 16384")
    if s.n_fft:
        need(0 <= s.hop_length <= s.n_fft // 2, "hop_length", f"0 (n_fft/4) or between 1 and n_fft/2 = {s.n_fft // 2}")
    else:
        shortest = scale_size(min(N_FFT_CHOICES), s.sample_rate or REFERENCE_RATE)
        need(0 <= s.hop_length <= shortest // 2, "hop_length",
             f"0 (n_fft/4) or, with n_fft = 0, between 1 and {shortest // 2} (half the shortest n_fft chosen)")
    need(s.log_floor > 0, "log_floor", "positive")
    need(len(s.widths) >= 1 and all(1 <= w <= 4096 for w in s.widths), "widths",
         "a non-empty list of integers between 1 and 4096")
    need(1 <= s.n_filters <= 4096, "n_filters", "between 1 and 4096")
    need(s.max_taps >= 0, "max_taps", "0 or more")
    for name in ("gram_weight", "autocorr_weight", "moments_weight", "marginal_weight", "diversity_weight",
                 "subband_weight"):
        need(0 <= getattr(s, name) < 1e9, name, "between 0 and 1e9")
    need(s.gram_weight + s.autocorr_weight + s.moments_weight + s.marginal_weight > 0, "gram_weight",
         "positive when autocorr_weight, moments_weight and marginal_weight are 0")
    need(0 <= s.max_lag_seconds <= 60, "max_lag_seconds", "0 (chosen per input) or up to 60")
    need(0 <= s.steps <= 100000, "steps", "between 0 and 100000")
    need(0 <= s.projections <= 100, "projections", "between 0 and 100")
    need(1 <= s.projection_iters <= 1000, "projection_iters", "between 1 and 1000")
    need(s.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}")
    need(0 < s.learning_rate <= 100, "learning_rate", "between 0 and 100")
    need(0 <= s.refine_steps <= 100000, "refine_steps", "between 0 and 100000")
    need(0 <= s.griffin_lim_iters <= 10000, "griffin_lim_iters", "between 0 and 10000")
    need(0 <= s.momentum < 1.5, "momentum", "between 0 and 1.5 (0.99 is usual)")
    need(s.phase_init in PHASE_INITS, "phase_init", f"one of {', '.join(PHASE_INITS)}")
    need(0 < s.max_input_seconds <= 3600, "max_input_seconds", "between 0 and 3600")
    need(s.subtype in SUBTYPES, "subtype", f"one of {', '.join(SUBTYPES)}")
    return s


def native_rate(source_sr: int) -> int:
    """The working rate for ``sample_rate = 0``: the input's, brought into `NATIVE_RATES`."""
    low, high = NATIVE_RATES
    return min(max(int(source_sr), low), high)


def at_rate(settings: Settings, sr: int) -> Settings:
    """``settings`` for audio at ``sr`` Hz.

    With ``sample_rate = 0`` the STFT sizes, given for `REFERENCE_RATE`, are scaled to span
    the same time at ``sr``; otherwise ``sr`` must be the set rate. A size of 0 stays 0 (see
    `texsynth.resolution.resolve`).
    """
    s = settings
    if s.sample_rate:
        if sr != s.sample_rate:
            raise ValueError(f"sr={sr} must equal settings.sample_rate={s.sample_rate}; resample first")
        return s
    n_fft = scale_size(s.n_fft, sr) if s.n_fft else 0
    hop = min(max(1, round(s.hop_length * sr / REFERENCE_RATE)), (n_fft or 1 << 30) // 2) if s.hop_length else 0
    return validate(s.replace(sample_rate=sr, n_fft=n_fft, hop_length=hop))


def scale_size(n_fft: int, sr: int) -> int:
    """An STFT size given at `REFERENCE_RATE`, for ``sr``: even, at least 64."""
    return max(64, 2 * round(n_fft * sr / REFERENCE_RATE / 2))


def from_mapping(values: dict, *, base: Settings | None = None, source: str = "settings") -> Settings:
    """Settings from ``values`` over ``base``; unknown keys and wrong types name the fix."""
    base = base or Settings()
    changes = {}
    for key, value in values.items():
        if key not in FIELD_TYPES:
            close = difflib.get_close_matches(key, FIELD_TYPES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise TexsynthError(f"{source}: unknown setting '{key}'{hint}")
        changes[key] = _coerce(key, value, getattr(base, key), source)
    return validate(base.replace(**changes), source)


def _coerce(key: str, value, default, source: str):
    """Convert ``value`` to the type of ``default``, or raise naming the expected type."""
    def fail(kind: str):
        raise TexsynthError(f"{source}: {key}={value!r} must be {kind}")

    if isinstance(default, bool):
        return value if isinstance(value, bool) else fail("true or false")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if isinstance(default, str):
        return value if isinstance(value, str) else fail("a string")
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            fail("a list of integers")
        return tuple(value)
    raise TypeError(f"no coercion for setting {key}")  # unreachable unless a field is added


def parse_assignment(text: str) -> tuple[str, object]:
    """Parse ``key=value`` from the command line; the value is read as TOML when it can be."""
    import tomllib

    if "=" not in text:
        raise TexsynthError(f"--set {text!r} must look like key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as adam or PCM_24
    return key, value

"""Shared fixtures: synthetic signals and tiny settings, so most tests need no files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TINY_PRESET = Path(__file__).parent / "tiny.toml"


def crackle(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Sparse random clicks over soft noise: an impulsive, stationary texture."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = 0.02 * rng.standard_normal(n)
    clicks = rng.random(n) < 40 / sr
    y[clicks] += rng.choice([-1, 1], clicks.sum()) * rng.uniform(0.2, 0.6, clicks.sum())
    return y.astype(np.float32)


def loop(seconds: float, sr: int, period: float = 0.75) -> np.ndarray:
    """An irregular four-hit pattern repeated every ``period`` seconds over faint noise."""
    rng = np.random.default_rng(1)
    y = 0.005 * rng.standard_normal(int(seconds * sr))
    hit = np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr)) * rng.standard_normal(int(0.05 * sr))
    for start in np.arange(0, seconds - 0.1, period):
        for offset, gain in ((0.0, 1.0), (0.19, 0.5), (0.31, 0.8), (0.55, 0.4)):
            i = int((start + offset) * sr)
            y[i : i + hit.size] += gain * hit[: y.size - i]
    return y.astype(np.float32)


def drone(seconds: float, sr: int) -> np.ndarray:
    """A sustained 110-330 Hz chord whose partials beat slowly, over a low rumble."""
    t = np.arange(int(seconds * sr)) / sr
    partials = [(110.0, 0.3, 0.13), (165.2, 0.2, 0.21), (220.6, 0.15, 0.29), (277.0, 0.1, 0.37),
                (330.4, 0.08, 0.17)]
    y = sum(a * np.sin(2 * np.pi * f * t + f) * (1 + 0.3 * np.sin(2 * np.pi * rate * t)) for f, a, rate in partials)
    rumble = np.random.default_rng(3).standard_normal(t.size)
    for i in range(1, t.size):  # a one-pole low-pass, as scipy.signal.lfilter([1], [1, -0.95])
        rumble[i] += 0.95 * rumble[i - 1]
    return (0.3 * (y + 0.03 * rumble)).astype(np.float32)


@pytest.fixture
def tiny_preset() -> Path:
    return TINY_PRESET


@pytest.fixture
def tiny_settings():
    from texsynth import presets

    return presets.load(str(TINY_PRESET))


@pytest.fixture
def crackle_wav(tmp_path) -> Path:
    path = tmp_path / "crackle.wav"
    sf.write(path, crackle(1.5, 8000), 8000, subtype="PCM_16")
    return path

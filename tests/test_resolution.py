"""Choosing the STFT size for each input: short for clicks, long for low partials."""

import json

import numpy as np
import pytest
import soundfile as sf

from texsynth import resolution
from texsynth.cli import main
from texsynth.settings import Settings

from conftest import crackle, drone, loop

SR = 8000


def hum(seconds: float, sr: int) -> np.ndarray:
    """A 60 Hz hum with ten harmonics over faint noise: partials 60 Hz apart."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * 60 * k * t + k) / k for k in range(1, 11))
    return (0.1 * y + 0.002 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)


def test_long_term_spectrum_sees_partials_smeared_by_short_windows():
    y = hum(4.0, SR).astype(np.float64)
    spectrum = resolution.long_term_spectrum(y, SR)
    assert spectrum.max() - np.median(spectrum) > 30  # sharp peaks over the noise floor
    short, long = (resolution.round_trip(y, SR, resolution.scale_size(n, SR)) for n in (256, 2048))
    assert short[1] > 6 and long[1] < 1.5  # spectrum error, dB


def test_auditory_statistics_ignore_level_where_they_should():
    y = crackle(3.0, SR).astype(np.float64)
    a, b = resolution.auditory_statistics(y, SR), resolution.auditory_statistics(3 * y, SR)
    for key in ("cv", "skew", "kurtosis", "correlation", "modulation"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b["mean"], 3**0.3 * a["mean"], rtol=1e-6)
    assert resolution.statistics_snr(a, a) > 100


@pytest.mark.parametrize("signal, expected", [("crackle", 256), ("hum", 1024)])
def test_choice_follows_the_texture(signal, expected):
    y = crackle(4.0, SR) if signal == "crackle" else hum(4.0, SR)
    chosen, snrs = resolution.choose_n_fft(y, SR)
    assert set(snrs) == {resolution.scale_size(n, SR) for n in (256, 512, 1024, 2048)}
    if expected == 256:
        assert chosen == resolution.scale_size(256, SR)
    else:
        assert chosen >= resolution.scale_size(expected, SR)


def test_resolve_fills_in_sizes_and_keeps_given_ones():
    y = crackle(4.0, SR)
    auto = resolution.resolve(Settings(sample_rate=0), y, SR)
    assert auto.sample_rate == SR and auto.n_fft == resolution.scale_size(256, SR)
    assert auto.hop_length == auto.n_fft // 4
    given = resolution.resolve(Settings(sample_rate=SR, n_fft=300, hop_length=0), y, SR)
    assert (given.n_fft, given.hop_length) == (300, 75)
    # A tiny input leaves only the shortest size, with nothing to compare.
    assert resolution.choose_n_fft(y[:300], SR) == (resolution.scale_size(256, SR), {})
    assert resolution.choose_n_fft(np.zeros(SR * 2, np.float32), SR)[0] == resolution.scale_size(256, SR)


def test_cli_records_the_chosen_size(tmp_path, tiny_preset):
    src = tmp_path / "hum.wav"
    sf.write(src, hum(3.0, SR), SR)
    out = tmp_path / "out.wav"
    args = [str(src), "-o", str(out), "--preset", str(tiny_preset), "--set", "n_fft=0",
            "--set", "hop_length=0", "--set", f"sample_rate={SR}", "--duration", "1", "-q"]
    assert main(args) == 0
    record = json.loads((tmp_path / "out.wav.json").read_text())
    assert record["settings"]["n_fft"] >= resolution.scale_size(1024, SR)
    assert record["settings"]["hop_length"] == record["settings"]["n_fft"] // 4


def test_periodicity_tells_loops_from_beatless_textures():
    dense, sparse = loop(8.0, SR, period=0.4), loop(16.0, SR, period=3.0)
    assert resolution.periodicity(dense, SR)[0] > 0.9
    assert resolution.periodicity(sparse, SR)[1] > 2 * resolution.PERIODIC_Z
    assert resolution.is_periodic(dense, SR) and resolution.is_periodic(sparse, SR)
    noise = np.random.default_rng(2).standard_normal(8 * SR).astype(np.float32)
    for y in (crackle(8.0, SR), hum(8.0, SR), noise):
        peak, z = resolution.periodicity(y, SR)
        assert peak < resolution.PERIODIC_PEAK / 2 and z < resolution.PERIODIC_Z / 2
        assert not resolution.is_periodic(y, SR)
    # Too short to tell, or nothing happening: no claim of periodicity.
    assert resolution.periodicity(loop(0.5, SR), SR) == (0.0, 0.0)
    assert resolution.periodicity(np.zeros(4 * SR, np.float32), SR) == (0.0, 0.0)


def test_resolve_chooses_the_rhythm_horizon_unless_given():
    periodic = resolution.resolve(Settings(sample_rate=0), loop(8.0, SR), SR)
    beatless = resolution.resolve(Settings(sample_rate=0), crackle(8.0, SR), SR)
    assert periodic.max_lag_seconds == resolution.PERIODIC_LAG_SECONDS
    assert beatless.max_lag_seconds == resolution.APERIODIC_LAG_SECONDS
    given = resolution.resolve(Settings(sample_rate=0, max_lag_seconds=2.5), crackle(8.0, SR), SR)
    assert given.max_lag_seconds == 2.5


def test_a_drone_gets_a_window_that_resolves_its_partials(monkeypatch):
    y = drone(6.0, SR)
    chosen, snrs = resolution.choose_n_fft(y, SR)
    assert chosen >= resolution.scale_size(1024, SR)  # 64 ms
    # It is the preference for a sharper spectrum at no cost that decides: the shortest
    # window passes the spectrum bound on its own.
    short = min(snrs)
    assert snrs[short][1] <= resolution.SPECTRUM_ERROR_DB
    monkeypatch.setattr(resolution, "SHARPER_SPECTRUM_DB", np.inf)
    assert resolution.choose_n_fft(y, SR)[0] < chosen

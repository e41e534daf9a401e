"""Sub-band envelopes against direct evaluation, on tones whose envelopes are known."""

import numpy as np
import pytest
import torch

from texsynth.subbands import COMPRESSION, ENVELOPE_RATE, SubbandEnvelopes

SR = 8000


def band_centres(bank: SubbandEnvelopes, sr: int) -> np.ndarray:
    """Frequency of each band's peak gain."""
    peak = bank.index[torch.arange(bank.index.shape[0]), bank.gain.argmax(1)].numpy()
    return peak * sr / bank.n_samples


def test_baseband_analytic_signal_matches_direct_evaluation():
    """The decimated baseband signal has the magnitude of the full band-passed analytic
    signal at the matching instants."""
    n = 1200
    y = np.random.default_rng(0).standard_normal(n)
    bank = SubbandEnvelopes(n, SR, n_bands=8)
    got = bank.analytic(torch.from_numpy(y)).abs().numpy()
    spectrum = np.fft.rfft(y)
    m = bank.n_baseband
    times = np.arange(m) * n / m
    for k in range(8):
        bins = bank.index[k].numpy()
        gain = bank.gain[k].numpy().astype(np.float64)
        # a(t) = 2/n sum_b X_b g_b exp(2 pi i b t / n) over the band's bins.
        direct = (2 / n) * (spectrum[bins] * gain) @ np.exp(2j * np.pi * np.outer(bins, times) / n)
        np.testing.assert_allclose(got[k], np.abs(direct), rtol=1e-3, atol=1e-4 * np.abs(direct).max())


def test_squared_gains_sum_to_one_between_outer_centres():
    bank = SubbandEnvelopes(SR, SR, n_bands=16)
    total = np.zeros(SR // 2 + 1)
    for bins, gain in zip(bank.index.numpy(), bank.gain.numpy()):
        np.add.at(total, bins, gain.astype(np.float64) ** 2)
    centres = band_centres(bank, SR)
    inside = slice(int(np.ceil(centres[0])) + 1, int(centres[-1]))
    np.testing.assert_allclose(total[inside], 1.0, atol=1e-5)


def test_tone_at_a_band_centre_gives_that_band_its_amplitude():
    n = 2 * SR
    bank = SubbandEnvelopes(n, SR)
    k = 20
    f = round(band_centres(bank, SR)[k] * n / SR) * SR / n  # a whole number of cycles
    t = np.arange(n) / SR
    env = bank(torch.from_numpy(0.5 * np.cos(2 * np.pi * f * t)))
    level = env.mean(1).numpy() ** (1 / COMPRESSION)
    assert level.argmax() == k
    assert level[k] == pytest.approx(0.5, rel=0.01)
    # Neighbours meet this band at zero gain where it peaks.
    assert level[k - 1] < 0.05 and level[k + 1] < 0.05
    assert env.shape[1] == pytest.approx(2 * ENVELOPE_RATE - 2 * bank.trim, abs=1)


def test_amplitude_modulation_is_followed_within_a_frame():
    """A 40 Hz tremolo (25 ms period, shorter than a long STFT frame) shows in the envelope,
    its depth scaled by the band's gain at the sidebands, as a cochlear filter's would be."""
    n = 2 * SR
    bank = SubbandEnvelopes(n, SR)
    k = 24
    centre = round(band_centres(bank, SR)[k] * n / SR)  # a whole number of cycles
    t = np.arange(n) / SR
    am = 1 + 0.5 * np.cos(2 * np.pi * 40 * t)
    env = bank(torch.from_numpy(am * np.cos(2 * np.pi * centre * SR / n * t)))[k].numpy() ** (1 / COMPRESSION)
    bins, gain = bank.index[k].numpy(), bank.gain[k].numpy()
    side = 40 * n // SR
    depth = 0.5 * (gain[bins == centre - side][0] + gain[bins == centre + side][0]) / 2
    assert 0.2 < depth < 0.5
    assert env.max() == pytest.approx(1 + depth, rel=0.02)
    assert env.min() == pytest.approx(1 - depth, rel=0.05)


def test_envelopes_carry_gradient_to_the_samples():
    y = torch.randn(4000, dtype=torch.float64, requires_grad=True)
    bank = SubbandEnvelopes(4000, SR, n_bands=12)
    env = bank(y)
    (env.std(1) / env.mean(1)).sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0

"""Loss functions against plain references, their invariances, and gradient flow."""

import numpy as np
import pytest
import scipy.stats
import torch

from texsynth import losses


def smooth_noise(channels, frames, seed):
    """A stationary random texture: independent noise smoothed along time."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(channels, frames + 8, generator=g, dtype=torch.float64)
    kernel = torch.ones(1, 1, 9, dtype=torch.float64) / 9
    return torch.nn.functional.conv1d(x[:, None], kernel)[:, 0]


def test_gram_is_time_shift_invariant():
    phi = torch.relu(smooth_noise(6, 200, 0))
    for shift in (1, 17, 150):
        torch.testing.assert_close(losses.gram(phi), losses.gram(torch.roll(phi, shift, 1)))


def test_gram_matches_definition():
    phi = smooth_noise(4, 50, 1)
    expected = np.einsum("ct,dt->cd", phi.numpy(), phi.numpy()) / 50
    np.testing.assert_allclose(losses.gram(phi).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("centre", [False, True])
def test_autocorrelation_matches_numpy(centre):
    phi = smooth_noise(3, 120, 2)
    max_lag = 40
    got = losses.autocorrelation(phi, max_lag, centre=centre).numpy()
    x = phi.numpy()
    if centre:
        x = x - x.mean(1, keepdims=True)
    T = x.shape[1]
    for c in range(3):
        full = np.correlate(x[c], x[c], mode="full")[T - 1 : T + max_lag]
        np.testing.assert_allclose(got[c], full / (T - np.arange(max_lag + 1)), rtol=1e-9, atol=1e-12)


def test_autocorrelation_caps_lag_at_length():
    assert losses.autocorrelation(smooth_noise(2, 10, 3), 100).shape == (2, 10)


def test_shift_similarity_finds_copies_at_every_shift():
    """A shifted copy of the original is more similar than an independent stretch of it."""
    original = smooth_noise(16, 300, 4)
    independent = smooth_noise(16, 300, 5)
    baseline = losses.shift_similarity(independent, original, min_overlap=50).max()
    assert baseline < 0.5
    for shift in (1, 37, 120, 249):
        circular = torch.roll(original, shift, 1)
        linear = torch.cat([smooth_noise(16, shift, 6), original[:, : 300 - shift]], 1)
        for candidate in (circular, linear):
            best = losses.shift_similarity(candidate, original, min_overlap=50).max()
            assert best > 0.6 > baseline + 0.1, (shift, float(best), float(baseline))


def test_shift_similarity_of_exact_copy_is_one():
    x = smooth_noise(8, 100, 7)
    sim = losses.shift_similarity(x, x, min_overlap=20)
    assert float(sim.max()) == pytest.approx(1.0, abs=1e-9)
    assert int(sim.argmax()) == 100 - 20  # the zero-lag entry


def test_shift_similarity_handles_different_lengths():
    long = smooth_noise(4, 400, 8)
    short = long[:, 100:180]
    assert float(losses.shift_similarity(long, short, min_overlap=40).max()) == pytest.approx(1.0, abs=1e-9)


def test_window_similarity_finds_a_patchwork_of_copied_pieces():
    """Pieces copied from anywhere in the original score 1 at their source; new pieces do not."""
    original = smooth_noise(8, 400, 10)
    patchwork = torch.cat([original[:, 300:360], smooth_noise(8, 60, 11), original[:, 20:80]], 1)
    sim = losses.window_similarity(patchwork, original, window=30, hop=30)
    assert sim.shape == (6, 400 - 30 + 1)
    best = sim.max(1)
    np.testing.assert_allclose(best.values[[0, 1, 4, 5]], 1.0, atol=1e-9)
    assert best.indices.tolist()[:2] == [300, 330] and best.indices.tolist()[4:] == [20, 50]
    assert float(best.values[2:4].max()) < 0.8


def test_window_similarity_matches_a_direct_computation():
    x, y = smooth_noise(3, 50, 12), smooth_noise(3, 70, 13)
    sim = losses.window_similarity(x, y, window=20, hop=15)
    for p, start in enumerate(range(0, 50 - 20 + 1, 15)):
        piece = x[:, start:start + 20].flatten()
        for k in (0, 17, 50):
            other = y[:, k:k + 20].flatten()
            expected = float(piece @ other / (piece.norm() * other.norm()))
            assert float(sim[p, k]) == pytest.approx(expected, abs=1e-9)


def test_envelope_moments_match_scipy():
    env = torch.rand(5, 400, generator=torch.Generator().manual_seed(9), dtype=torch.float64) ** 3 + 0.1
    stats = losses.envelope_moments(env)
    x = env.numpy()
    np.testing.assert_allclose(stats["mean"], x.mean(1), rtol=1e-12)
    np.testing.assert_allclose(stats["cv"], x.std(1) / x.mean(1), rtol=1e-9)
    np.testing.assert_allclose(stats["skew"], scipy.stats.skew(x, axis=1), rtol=1e-9)
    np.testing.assert_allclose(stats["kurt"], np.log(scipy.stats.kurtosis(x, axis=1, fisher=False)), rtol=1e-9)
    np.testing.assert_allclose(stats["corr"], np.corrcoef(x)[np.triu_indices(5, 1)], rtol=1e-9, atol=1e-12)


def test_relative_error_is_scale_free():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0])
    assert float(losses.relative_error(a, b)) == pytest.approx(0.5)
    assert float(losses.relative_error(10 * a, 10 * b)) == pytest.approx(0.5)


def test_soft_max_bounds_the_max():
    v = torch.tensor([0.1, 0.5, 0.49])
    assert 0.5 <= float(losses.soft_max(v)) <= 0.5 + np.log(3) / 50


def test_every_loss_passes_gradient():
    target = smooth_noise(6, 80, 10)
    x = smooth_noise(6, 90, 11).requires_grad_(True)
    terms = {
        "gram": losses.relative_error(losses.gram(torch.relu(x)), losses.gram(torch.relu(target))),
        "autocorr": losses.relative_error(losses.autocorrelation(x, 20), losses.autocorrelation(target, 20)),
        "diversity": losses.soft_max(losses.shift_similarity(x, target, min_overlap=30)),
        "moments": losses.relative_error(losses.envelope_moments(x.exp())["kurt"],
                                         losses.envelope_moments(target.exp())["kurt"]),
    }
    for name, value in terms.items():
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(grad).all(), name
        assert grad.abs().max() > 0, name


def test_marginal_error_is_zero_at_the_target_and_sees_a_wobbling_steady_bin():
    g = torch.Generator().manual_seed(0)
    spread = torch.tensor([0.1, 2.0, 2.0], dtype=torch.float64)
    Z = torch.randn(3, 4000, generator=g, dtype=torch.float64) * spread[:, None]
    Z = Z - Z.mean(1, keepdim=True)
    Z = Z / Z.std(1, keepdim=True) * spread[:, None]  # exactly the target's marginals
    assert losses.marginal_error(Z, spread) < 1e-12
    # The steady bin wobbling 3x as much costs as much as a noisy bin doing the same.
    steady, noisy = Z.clone(), Z.clone()
    steady[0] *= 3
    noisy[1] *= 3
    torch.testing.assert_close(losses.marginal_error(steady, spread), losses.marginal_error(noisy, spread),
                               rtol=1e-9, atol=0)
    assert losses.marginal_error(steady, spread) > 0.3
    # Less spread than the target is left to the other statistics; a mean offset is not.
    assert losses.marginal_error(Z * 0.5, spread) < 1e-12
    assert losses.marginal_error(Z + spread[:, None], spread) > 0.9
    x = steady.clone().requires_grad_(True)
    losses.marginal_error(x, spread).backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0

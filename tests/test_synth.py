"""The synthesis on synthetic input with tiny settings: shape, level, determinism, progress."""

import numpy as np
import pytest
import torch

from texsynth import synthesize
from texsynth.features import RandomNets
from texsynth.settings import Settings
from texsynth.synth import TextureModel, optimise

from conftest import crackle

SR = 8000


def test_output_length_level_and_range(tiny_settings):
    y = crackle(1.5, SR)
    for duration in (0.7, 1.5, 3.3):
        out = synthesize(y, SR, duration=duration, seed=0, settings=tiny_settings, device="cpu")
        assert out.dtype == np.float32
        assert out.shape == (round(duration * SR),)
        assert np.all(np.isfinite(out))
        assert np.abs(out).max() < 1.0
        level_db = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(y**2)))
        assert abs(level_db) < 1.0


def test_same_seed_same_output_other_seed_differs(tiny_settings):
    y = crackle(1.5, SR)
    a = synthesize(y, SR, duration=1.0, seed=3, settings=tiny_settings, device="cpu")
    b = synthesize(y, SR, duration=1.0, seed=3, settings=tiny_settings, device="cpu")
    c = synthesize(y, SR, duration=1.0, seed=4, settings=tiny_settings, device="cpu")
    assert a.tobytes() == b.tobytes()
    assert not np.allclose(a, c)


def test_optimiser_lowers_every_part_of_the_loss(tiny_settings):
    settings = tiny_settings.replace(steps=25, diversity_weight=0.0, marginal_weight=1.0)
    model = TextureModel(settings, seed=0, device=torch.device("cpu"))
    target = model.measure(torch.from_numpy(crackle(1.5, SR) * 5))
    history = []
    optimise(model, target, 150, seed=0, progress=lambda step, loss, parts: history.append(parts))
    assert len(history) == 25
    for name in ("gram", "autocorr", "moments"):
        assert history[-1][name] < 0.5 * history[0][name], name


def test_rejects_mismatched_rate(tiny_settings):
    with pytest.raises(ValueError, match="sample_rate"):
        synthesize(crackle(1.0, 16000), 16000, settings=tiny_settings)


def test_wide_nets_pool_time_and_skip_when_input_is_short():
    nets = RandomNets(10, (2, 8, 64), 4, seed=0, max_taps=8)
    assert nets.pools == [1, 1, 8]
    assert [w.shape[-1] for w in nets.weights] == [2, 8, 8]
    assert nets.usable(40) == [True, True, False]
    features = nets(torch.randn(10, 100))
    assert [f.shape for f in features] == [(4, 99), (4, 93), (4, 5)]
    assert all((f >= 0).all() for f in features)


def test_random_nets_depend_on_seed_only():
    a, b, c = (RandomNets(6, (3,), 2, seed=s).weights[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_match_level_keeps_rms_and_never_clips():
    from texsynth.audio import match_level

    rng = np.random.default_rng(0)
    y = rng.standard_normal(16000)
    y[100:110] = 200.0  # a runaway burst that plain RMS scaling would turn into clipping
    out = match_level(y, 0.2)
    assert np.abs(out).max() <= 0.98
    assert abs(20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)) / 0.2)) < 0.5


def test_at_rate_scales_stft_for_native_rate():
    from texsynth.settings import at_rate, native_rate

    s = Settings(sample_rate=0, n_fft=512, hop_length=128)
    assert at_rate(s, 48000).n_fft == 1536 and at_rate(s, 48000).hop_length == 384
    assert at_rate(s, 44100).n_fft == 1412 and at_rate(s, 44100).hop_length == 353
    assert at_rate(s, 16000) == s.replace(sample_rate=16000)
    assert [native_rate(r) for r in (4000, 22050, 48000, 96000)] == [8000, 22050, 48000, 48000]
    with pytest.raises(ValueError, match="sample_rate"):
        at_rate(Settings(), 22050)


def test_waveform_refinement_lowers_the_loss_of_the_rebuilt_audio(tiny_settings):
    from texsynth import spectral
    from texsynth.synth import refine_waveform, spectral_synthesis

    settings = tiny_settings.replace(steps=20, griffin_lim_iters=16)
    model = TextureModel(settings, seed=0, device=torch.device("cpu"))
    target = model.measure(torch.from_numpy(crackle(1.5, SR) * 5))
    length = SR
    n_frames = spectral.n_frames(length, settings.hop_length)
    S = spectral_synthesis(model, target, n_frames, length, seed=0)
    y = spectral.griffin_lim(S, n_fft=settings.n_fft, hop_length=settings.hop_length, length=length,
                             n_iter=16)

    def audio_loss(w):
        return float(model.loss(model.log_spectrogram(w) - target.mean[:, None], target)[0])

    steps = []
    refined = refine_waveform(model, target, y, steps=15, progress=lambda step, *_: steps.append(step),
                              first_step=20)
    assert refined.shape == y.shape and torch.isfinite(refined).all()
    assert steps and steps[0] == 21 and steps[-1] <= 35
    before, after = audio_loss(y), audio_loss(refined)
    assert after < 0.8 * before, (before, after)


def test_refine_steps_reach_the_output(tiny_settings):
    y = crackle(1.5, SR)
    plain = synthesize(y, SR, duration=1.0, seed=0, settings=tiny_settings.replace(refine_steps=0), device="cpu")
    calls = []
    refined = synthesize(y, SR, duration=1.0, seed=0, settings=tiny_settings.replace(refine_steps=5),
                         device="cpu", progress=lambda step, *_: calls.append(step))
    assert refined.shape == plain.shape and np.all(np.isfinite(refined))
    assert not np.allclose(refined, plain)
    assert max(calls) > tiny_settings.steps


def test_local_copying_penalises_patchwork_not_new_texture(tiny_settings):
    """A patchwork of the recording's own pieces pays the copying penalty; another stretch of
    the same texture stays at the recording's own self-similarity and pays nothing extra."""
    settings = tiny_settings.replace(diversity_weight=1.0)
    model = TextureModel(settings, seed=0, device=torch.device("cpu"))
    x = torch.from_numpy(crackle(6.0, SR) * 5)
    target = model.measure(x)
    assert target.self_copy is not None and float(target.self_copy) < 0.8

    def diversity(Z):
        return float(model.loss(Z, target)[1]["diversity"])

    third = target.Z.shape[1] // 3
    patchwork = torch.cat([target.Z[:, 2 * third:], target.Z[:, :third], target.Z[:, third:2 * third]], 1)
    other = model.measure(torch.from_numpy(crackle(6.0, SR, seed=1) * 5)).Z
    fresh = model.local_copying(model.copy_view(model.magnitude(other + target.mean[:, None])), target.mel)
    assert float(fresh) < float(target.self_copy) + 0.05
    assert diversity(patchwork) > diversity(other) + 1.0


def test_local_copying_needs_two_windows_of_input(tiny_settings):
    model = TextureModel(tiny_settings, seed=0, device=torch.device("cpu"))
    assert model.measure(torch.from_numpy(crackle(1.5, SR))).self_copy is None


def test_loss_stays_finite_for_a_wild_step(tiny_settings):
    """A line search may try a huge step; the loss must stay finite so that it can back off."""
    model = TextureModel(tiny_settings.replace(diversity_weight=1.0), seed=0, device=torch.device("cpu"))
    target = model.measure(torch.from_numpy(crackle(6.0, SR) * 5))
    Z = (target.Z * 1.0).clone()
    Z[:, 100:110] = 1e3
    Z.requires_grad_(True)
    loss, parts = model.loss(Z, target)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
    assert torch.isfinite(Z.grad).all()
    assert float(loss.detach()) > float(model.loss(target.Z, target)[0]) + 1.0


def test_synthesis_runs_over_a_margin_that_is_cut_away(tiny_settings, monkeypatch):
    """The drifting first and last frames are synthesised beyond both ends and discarded."""
    import texsynth.synth as synth

    seen = {}
    real = synth.spectral_synthesis

    def spy(model, target, n_frames, length, **kwargs):
        seen["length"] = length
        return real(model, target, n_frames, length, **kwargs)

    monkeypatch.setattr(synth, "spectral_synthesis", spy)
    out = synthesize(crackle(1.5, SR), SR, duration=2.0, seed=0, settings=tiny_settings, device="cpu")
    margin = -(-round(synth.EDGE_SECONDS * SR) // tiny_settings.hop_length) * tiny_settings.hop_length
    assert seen["length"] == 2 * SR + 2 * margin
    assert out.shape == (2 * SR,) and np.all(np.isfinite(out))
    short = synthesize(crackle(1.5, SR), SR, duration=0.2, seed=0, settings=tiny_settings, device="cpu")
    assert short.shape == (round(0.2 * SR),)
    assert seen["length"] < 0.2 * SR * 2 + 2 * tiny_settings.hop_length  # margin at most half the output


def test_waveform_loss_adds_subband_moments_only_for_the_waveform_stage(tiny_settings):
    x = torch.from_numpy(crackle(1.5, SR) * 5)
    other = torch.from_numpy(crackle(1.5, SR, seed=1) * 5).requires_grad_(True)
    model = TextureModel(tiny_settings, seed=0, device=torch.device("cpu"))
    target = model.measure(x)
    assert target.subbands is not None
    _, own = model.waveform_loss(x, target)
    assert float(own["subbands"]) < 1e-10
    loss, parts = model.waveform_loss(other, target)
    assert float(parts["subbands"].detach()) > 1e-4
    loss.backward()
    assert torch.isfinite(other.grad).all() and other.grad.abs().sum() > 0
    for off in (dict(subband_weight=0.0), dict(refine_steps=0)):
        plain = TextureModel(tiny_settings.replace(**off), seed=0, device=torch.device("cpu"))
        target = plain.measure(x)
        assert target.subbands is None and "subbands" not in plain.waveform_loss(other, target)[1]

"""Texture statistics and the losses that compare them.

All functions take feature maps ``phi`` of shape (channels, frames) and are differentiable.
"""

from __future__ import annotations

import torch


def gram(phi: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlation averaged over time: (C, T) -> (C, C)."""
    return phi @ phi.T / phi.shape[1]


def _fft_size(n: int) -> int:
    return 1 << (n - 1).bit_length()


def autocorrelation(phi: torch.Tensor, max_lag: int, *, centre: bool = True) -> torch.Tensor:
    """Per-channel autocorrelation for lags ``0..max_lag``, normalised by the overlap count.

    ``r[c, k] = sum_t phi[c, t] phi[c, t + k] / (T - k)``, computed with an FFT padded so
    that no lag wraps around. With ``centre`` each channel's mean is removed first, so the
    result describes how activity varies over time rather than its (Gram-matched) level.
    Returns (C, max_lag + 1).
    """
    if centre:
        phi = phi - phi.mean(1, keepdim=True)
    T = phi.shape[1]
    max_lag = min(max_lag, T - 1)
    n = _fft_size(2 * T)
    spectrum = torch.fft.rfft(phi, n)
    r = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, n)[:, : max_lag + 1]
    overlap = torch.arange(T, T - max_lag - 1, -1, device=phi.device, dtype=phi.dtype)
    return r / overlap


def shift_similarity(x: torch.Tensor, y: torch.Tensor, *, min_overlap: int) -> torch.Tensor:
    """Normalised cross-correlation of ``x`` (C, Tx) and ``y`` (C, Ty) at every time shift.

    For each lag with at least ``min_overlap`` overlapping frames, the cosine similarity of the
    overlapping parts (both flattened over channels). Returns a 1-D tensor over lags; its
    maximum is how much ``x`` copies ``y`` at the best alignment. A circularly or linearly
    shifted copy scores near 1 at its shift; an independent stretch of the same texture does
    not.
    """
    tx, ty = x.shape[1], y.shape[1]
    min_overlap = max(1, min(min_overlap, tx, ty))
    n = _fft_size(tx + ty)
    # xc[lag] = sum_c sum_t x[c, t + lag] y[c, t], lag in (-(ty-1), tx-1), negative lags wrap.
    xc = torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(y, n).conj(), n).sum(0)
    ex = torch.cat([x.new_zeros(1), torch.cumsum((x**2).sum(0), 0)])
    ey = torch.cat([y.new_zeros(1), torch.cumsum((y**2).sum(0), 0)])

    lags = torch.arange(-(ty - min_overlap), tx - min_overlap + 1, device=x.device)
    x0 = lags.clamp_min(0)
    x1 = torch.minimum(lags + ty, torch.tensor(tx, device=x.device))
    y0, y1 = x0 - lags, x1 - lags
    norm = torch.sqrt((ex[x1] - ex[x0]) * (ey[y1] - ey[y0])).clamp_min(1e-12)
    return xc[lags % n] / norm


def window_similarity(x: torch.Tensor, y: torch.Tensor, *, window: int, hop: int) -> torch.Tensor:
    """Normalised cross-correlation of each ``window``-frame piece of ``x`` (C, Tx), taken
    every ``hop`` frames, with every equally long piece of ``y`` (C, Ty).

    Returns (pieces, positions). A row's maximum is how closely that piece of ``x`` copies
    some piece of ``y``: a patchwork of copied pieces scores near 1 in every row even when no
    long stretch is copied, which `shift_similarity` would miss.
    """
    window = max(1, min(window, x.shape[1], y.shape[1]))
    pieces = x.unfold(1, window, max(1, hop)).transpose(0, 1)  # (P, C, W)
    xc = torch.nn.functional.conv1d(y[None], pieces)[0]  # (P, Ty - W + 1)
    energy = torch.cat([y.new_zeros(1), torch.cumsum((y**2).sum(0), 0)])
    segment = (energy[window:] - energy[:-window]).clamp_min(0)
    norm = torch.sqrt(segment[None] * (pieces**2).sum((1, 2))[:, None]).clamp_min(1e-12)
    return xc / norm


def relative_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a - b||^2 / ||b||^2``: a scale-free distance, 0 when equal."""
    return ((a - b) ** 2).sum() / (b**2).sum().clamp_min(1e-12)


def soft_max(values: torch.Tensor, sharpness: float = 50.0) -> torch.Tensor:
    """A smooth maximum (log-sum-exp) so the gradient reaches several near-best shifts."""
    return torch.logsumexp(sharpness * values, 0) / sharpness


def envelope_moments(env: torch.Tensor) -> dict[str, torch.Tensor]:
    """Marginal and joint statistics of band envelopes ``env`` (bands, frames).

    Mean, coefficient of variation, skewness and kurtosis per band, and the correlation
    between every pair of bands: the statistics that make crackle sound like crackle and not
    like noise of the same spectrum (McDermott & Simoncelli, "Sound texture perception via
    statistics of the auditory periphery", 2011).
    """
    mean = env.mean(1)
    centred = env - mean[:, None]
    var = (centred**2).mean(1).clamp_min(1e-12)
    std = var.sqrt()
    z = centred / std[:, None]
    corr = z @ z.T / env.shape[1]
    upper = torch.triu_indices(env.shape[0], env.shape[0], 1, device=env.device)
    return {
        "mean": mean,
        "cv": std / mean.clamp_min(1e-12),
        "skew": (z**3).mean(1),
        "kurt": torch.log((z**4).mean(1).clamp_min(1e-6)),
        "corr": corr[upper[0], upper[1]],
    }


def moments_error(got: dict, target: dict) -> torch.Tensor:
    """Mean over the statistics of `envelope_moments` of their `relative_error`."""
    return sum(relative_error(got[k], v) for k, v in target.items()) / len(target)


def marginal_error(Z: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """How far each row of ``Z`` (bins, frames), a log spectrogram less the target's per-bin
    mean, strays from the target's per-bin marginals: mean 0, standard deviation at most
    ``spread``.

    Every bin counts alike, however loud or steady: a partial that should hold still (spread
    under 1 dB) and wobbles by 3 dB costs as much as a noisy bin off by the same ratio. The
    Gram of random filters mixes all bins and barely sees such a bin. Only a spread above the
    target's is penalised: the other statistics decide how a bin fluctuates, this only stops
    steady bins from wobbling.
    """
    spread = spread.clamp_min(1e-3)
    offset = Z.mean(1) / spread
    excess = torch.relu(torch.log(Z.std(1).clamp_min(1e-3) / spread))
    return (offset**2).mean() + (excess**2).mean()

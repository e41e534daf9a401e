"""Short-time Fourier transforms, log compression and phase reconstruction (Griffin-Lim)."""

from __future__ import annotations

import math

import torch


def stft(y: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT ``D`` of shape (n_fft // 2 + 1, frames), Hann window, centred frames."""
    window = torch.hann_window(n_fft, device=y.device, dtype=y.dtype)
    return torch.stft(y, n_fft, hop_length, window=window, center=True, return_complex=True)


def istft(D: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of `stft`, trimmed or padded to exactly ``length`` samples."""
    window = torch.hann_window(n_fft, device=D.device, dtype=D.real.dtype)
    return torch.istft(D, n_fft, hop_length, window=window, center=True, length=length)


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames `stft` makes from ``n_samples`` (centred framing)."""
    return n_samples // hop_length + 1


def log_magnitude(S: torch.Tensor, floor: float) -> torch.Tensor:
    """``log(S + floor)``: the floor keeps near-silent bins from dominating the statistics."""
    return torch.log(S + floor)


def from_log_magnitude(L: torch.Tensor, floor: float) -> torch.Tensor:
    """Inverse of `log_magnitude`, clamped to non-negative magnitudes."""
    return (torch.exp(L) - floor).clamp_min(0.0)


def spectral_convergence(S: torch.Tensor, y: torch.Tensor, n_fft: int, hop_length: int) -> float:
    """``||S - |STFT(y)||| / ||S||``: 0 when ``y`` realises the magnitude ``S`` exactly."""
    rebuilt = stft(y, n_fft, hop_length).abs()
    return float(torch.linalg.norm(S - rebuilt) / torch.linalg.norm(S).clamp_min(1e-12))


def pghi_phase(S: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Initial phase from the magnitude alone, by phase-gradient integration along time.

    For a Gaussian-like window the instantaneous frequency of a bin is its centre frequency
    plus a term proportional to the frequency derivative of the log-magnitude (Prusa, Balazs &
    Sondergaard, "A noniterative method for reconstruction of phase from STFT magnitude",
    2017). Integrating that frequency over frames gives a phase that is coherent along each
    partial, a far better start for Griffin-Lim than random phase. This is the time-direction
    half of the method, without the heap-ordered integration across frequency.
    """
    bins, frames = S.shape
    logS = torch.log(S.clamp_min(1e-10 * S.max().clamp_min(1e-20)))
    # Gaussian equivalent of a Hann window of length n_fft: lambda = 0.25645 * n_fft^2.
    gamma = 0.25645 * n_fft**2
    dlog_df = torch.zeros_like(logS)
    dlog_df[1:-1] = (logS[2:] - logS[:-2]) / 2
    centre = torch.arange(bins, device=S.device, dtype=S.dtype)[:, None]
    # Instantaneous frequency in bins, then phase advance per hop in radians.
    inst_bin = centre - gamma / (2 * math.pi * n_fft) * dlog_df * (2 * math.pi / n_fft) * n_fft / (2 * math.pi)
    advance = 2 * math.pi * hop_length / n_fft * inst_bin
    phase = torch.cumsum(advance, dim=1)
    return phase


def griffin_lim(
    S: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    length: int,
    n_iter: int = 100,
    momentum: float = 0.99,
    init: str = "pghi",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Audio whose STFT magnitude approximates ``S`` (bins, frames).

    Fast Griffin-Lim: each iteration projects onto consistent spectrograms (iSTFT then STFT)
    and extrapolates with ``momentum`` (Perraudin, Balazs & Sondergaard, "A fast Griffin-Lim
    algorithm", 2013; Griffin & Lim 1984 when ``momentum=0``). ``init`` is ``"pghi"``
    (phase-gradient integration), ``"random"`` or ``"zero"``. Runs wherever ``S`` lives.
    """
    if init == "pghi":
        phase = pghi_phase(S, n_fft, hop_length)
    elif init == "random":
        phase = 2 * math.pi * torch.rand(S.shape, generator=generator, dtype=S.dtype).to(S.device)
    elif init == "zero":
        phase = torch.zeros_like(S)
    else:
        raise ValueError(f"init={init!r} must be one of 'pghi', 'random', 'zero'")
    D = torch.polar(S, phase)
    previous = torch.zeros_like(D)
    for _ in range(n_iter):
        projected = stft(istft(D, n_fft, hop_length, length), n_fft, hop_length)
        accelerated = projected + momentum * (projected - previous) if momentum else projected
        previous = projected
        D = S * accelerated / accelerated.abs().clamp_min(1e-12)
    return istft(D, n_fft, hop_length, length)

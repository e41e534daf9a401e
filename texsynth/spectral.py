"""Short-time Fourier transforms, log compression and phase reconstruction.

The STFT here is torch's convention (Hann window, centred frames with reflect padding, phase
referenced to the frame start). Griffin-Lim's inner loop works frame-major, on contiguous
(frames, bins) tensors, and reuses its window, overlap envelope and buffers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

# Hann window of n samples as a Gaussian exp(-pi t^2 / lambda): lambda = HANN_LAMBDA * n^2.
HANN_LAMBDA = 0.25645
PGHI_TOL = 1e-5  # coefficients below this fraction of the peak get random phase (-100 dB)


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames `stft` makes from ``n_samples`` (centred framing)."""
    return n_samples // hop_length + 1


def stft(y: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT ``D`` of shape (n_fft // 2 + 1, frames), Hann window, centred frames.

    Equal to ``torch.stft(y, n_fft, hop_length, window=hann, center=True)``; differentiable.
    """
    window = torch.hann_window(n_fft, device=y.device, dtype=y.dtype)
    pad = n_fft // 2
    frames = F.pad(y[None], (pad, pad), mode="reflect")[0].unfold(0, n_fft, hop_length)
    return torch.fft.rfft(frames * window, dim=-1).T  # (frames, bins) -> (bins, frames)


def istft(D: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of `stft` (least squares), trimmed or padded to exactly ``length`` samples."""
    window = torch.hann_window(n_fft, device=D.device, dtype=D.real.dtype)
    frames = torch.fft.irfft(D.T, n=n_fft, dim=-1)  # (frames, n_fft)
    y = _trim(_overlap_add(frames, window, hop_length), n_fft, length)
    return y * _inverse_envelope(n_fft, hop_length, D.shape[1], length, D.device, window.dtype)


def _overlap_add(frames: torch.Tensor, window: torch.Tensor, hop_length: int,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """Windowed overlap-add of (frames, n) rows, each ``hop_length`` later than the last.

    Returns (frames - 1) * hop_length + n samples. Summed one hop-wide block at a time, a few
    whole-tensor multiply-adds, since `F.fold` (what `torch.istft` uses) scatters sample by
    sample and is several times slower on CPU. ``out``, if given, is the accumulator, of
    shape (frames - 1 + ceil(n / hop_length), hop_length).
    """
    count, n = frames.shape
    blocks = -(-n // hop_length)
    if out is None:
        out = frames.new_zeros(count + blocks - 1, hop_length)
    else:
        out.zero_()
    for k in range(blocks):
        part = slice(k * hop_length, min((k + 1) * hop_length, n))
        width = part.stop - part.start
        out[k:k + count, :width].addcmul_(frames[:, part], window[part])
    return out.view(-1)[:(count - 1) * hop_length + n]


def _trim(y: torch.Tensor, n_fft: int, length: int) -> torch.Tensor:
    """Drop the centring pad of an overlap-added signal; cut or zero-pad to ``length``."""
    y = y[n_fft // 2:n_fft // 2 + length]
    return F.pad(y, (0, length - y.shape[0])) if y.shape[0] < length else y


@functools.lru_cache(maxsize=8)
def _inverse_envelope(n_fft: int, hop_length: int, count: int, length: int, device, dtype):
    """1 / the overlap-added squared Hann window over the ``length`` output samples, or 0
    where no frame reaches (those samples are 0 anyway). Cached: read it, never write it."""
    # A plain tensor even when first asked for under inference mode, so autograd can use it.
    with torch.inference_mode(False), torch.no_grad():
        window = torch.hann_window(n_fft, device=device, dtype=dtype)
        ones = window.new_ones(1, 1).expand(count, n_fft)
        envelope = _trim(_overlap_add(ones, window.square(), hop_length), n_fft, length)
        return torch.where(envelope > 1e-11, 1 / envelope.clamp_min(1e-11), 0.0)


class _Projection:
    """``stft(istft(D))`` frame-major, (frames, bins) to (frames, bins), in reused buffers.

    Griffin-Lim's loop repeats this with tensors of the same shapes; fresh multi-megabyte
    tensors each time cost page faults that took as long as the FFTs themselves on CPU.
    """

    def __init__(self, n_fft: int, hop_length: int, length: int, count: int, *, device, dtype):
        self.n_fft, self.hop_length, self.length = n_fft, hop_length, length
        self.window = torch.hann_window(n_fft, device=device, dtype=dtype)
        self.inv_envelope = _inverse_envelope(n_fft, hop_length, count, length, device, dtype)
        pad = n_fft // 2
        self.padded = torch.empty(length + 2 * pad, device=device, dtype=dtype)
        self.y = self.padded[pad:pad + length]  # the signal, inside its reflect padding
        self.frames = torch.empty(count, n_fft, device=device, dtype=dtype)
        self.sums = torch.empty(count - 1 + -(-n_fft // hop_length), hop_length, device=device,
                                dtype=dtype)

    def __call__(self, D: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write the projection of ``D`` into ``out`` (same shape) and return it."""
        self.inverse(D)
        return self.forward(out)

    def inverse(self, D: torch.Tensor) -> torch.Tensor:
        """(frames, bins) -> ``self.y``, ``length`` samples."""
        torch.fft.irfft(D, n=self.n_fft, dim=-1, out=self.frames)
        y = _overlap_add(self.frames, self.window, self.hop_length, out=self.sums)
        y = _trim(y, self.n_fft, self.length)
        return torch.mul(y, self.inv_envelope, out=self.y)

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        """``self.y`` -> (frames, bins) in ``out``, with torch.stft's reflect padding."""
        pad, length = self.n_fft // 2, self.length
        self.padded[:pad] = self.padded[pad + 1:2 * pad + 1].flip(0)
        self.padded[pad + length:] = self.padded[length - 1:pad + length - 1].flip(0)
        torch.mul(self.padded.unfold(0, self.n_fft, self.hop_length), self.window, out=self.frames)
        return torch.fft.rfft(self.frames, dim=-1, out=out)


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


def phase_gradients(S: np.ndarray, n_fft: int, hop_length: int, *, tol: float = PGHI_TOL):
    """Phase derivatives implied by a magnitude ``S`` (bins, frames) for a Hann window.

    For a Gaussian window exp(-pi t^2 / lambda) the STFT phase and log-magnitude are tied
    (Portnoff 1979; Prusa, Balazs & Sondergaard 2017):

        d phase / d time = 2 pi f + (1 / lambda) d log S / d f
        d phase / d freq = -lambda d log S / d time  (+ pi per bin: frames start, not centre)

    Returns ``(advance, ramp)``: the phase advance per hop and the phase step per bin, in
    radians, both (bins, frames).
    """
    lam = HANN_LAMBDA * n_fft**2
    logs = np.log(np.maximum(S, tol * S.max() + np.finfo(S.dtype).tiny))
    # Along frequency the magnitude is even about 0 and Nyquist, so the edge slopes are 0.
    dlog_dbin = np.zeros_like(logs)
    dlog_dbin[1:-1] = (logs[2:] - logs[:-2]) / 2
    dlog_dframe = np.gradient(logs, axis=1) if logs.shape[1] > 1 else np.zeros_like(logs)
    bins = np.arange(S.shape[0])[:, None]
    advance = 2 * np.pi * hop_length * bins / n_fft + hop_length * n_fft / lam * dlog_dbin
    ramp = np.pi - lam / (hop_length * n_fft) * dlog_dframe
    return advance, ramp


def pghi_phase(S: torch.Tensor, n_fft: int, hop_length: int, *, tol: float = PGHI_TOL,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Phase for the magnitude ``S`` (bins, frames) by phase-gradient heap integration.

    Prusa, Balazs & Sondergaard, "A noniterative method for reconstruction of phase from STFT
    magnitude", IEEE/ACM TASLP 25(5), 2017, integrated frame by frame as in Prusa & Holighaus,
    "Phase vocoder done right", EUSIPCO 2017. The phase gradients come from `phase_gradients`;
    each coefficient takes its phase from the neighbour the max-heap would reach it from
    first (the previous frame, or the next bin up or down), by the trapezoidal rule, so the
    phase flows outward from the strongest coefficients. Coefficients below ``tol`` times
    the peak get uniform random phase from ``generator``.

    Which neighbour the heap uses depends on the magnitudes alone, so it is found for all
    frames at once (`_heap_sources`); only the phase itself is carried frame to frame.
    """
    S_np = np.ascontiguousarray(S.detach().cpu().double().numpy())
    if S_np.size == 0 or not S_np.any():
        return torch.zeros_like(S)
    advance, ramp = phase_gradients(S_np, n_fft, hop_length, tol=tol)
    significant = S_np > tol * S_np.max()
    source = _heap_sources(S_np, significant, tol)

    # Phase of each bin relative to its source bin: the ramp integrated along frequency.
    ramp_steps = np.concatenate([np.zeros_like(ramp[:1]), (ramp[1:] + ramp[:-1]) / 2])
    ramp_sum = np.cumsum(ramp_steps, axis=0)
    relative = ramp_sum - np.take_along_axis(ramp_sum, source, axis=0)
    # Phase advance from frame n - 1 to frame n at each bin; none into the first frame.
    time_steps = (advance[:, 1:] + advance[:, :-1]) / 2
    time_steps = np.concatenate([np.zeros_like(advance[:, :1]), time_steps], axis=1)
    noise = 2 * np.pi * torch.rand(S.shape[::-1], generator=generator, dtype=torch.float64)
    phase = _integrate_frames(time_steps.T, relative.T, source.T, significant.T, noise.numpy())
    return torch.from_numpy(phase).T.to(device=S.device, dtype=S.dtype)


def _integrate_frames(steps, relative, source, significant, noise) -> np.ndarray:
    """Carry the phase frame by frame: each source bin advances in time, the other bins of
    its frame follow it along frequency. All arguments and the result are (frames, bins)."""
    steps, relative, source = (np.ascontiguousarray(a) for a in (steps, relative, source))
    phase = np.ascontiguousarray(noise)
    previous = np.zeros(phase.shape[1])
    for n, keep in enumerate(np.ascontiguousarray(significant)):
        at_source = (previous + steps[n])[source[n]]
        phase[n, keep] = at_source[keep] + relative[n, keep]
        previous = phase[n]
    return phase


def _heap_sources(S: np.ndarray, significant: np.ndarray, tol: float) -> np.ndarray:
    """For each coefficient, the bin of its frame whose phase came from the previous frame.

    Frame-wise heap integration pops coefficients strongest first: the previous frame's
    (all known) and the current frame's once reached. A bin is reached from whichever route
    pops first, and a route along frequency is as strong as its weakest bin, so the source of
    a bin is the widest path from a previous-frame coefficient: one scan up, one down.
    Insignificant bins block paths. A stretch with no significant previous-frame coefficient
    (and the first frame) starts from its own strongest bin, as the heap restarts there.
    """
    n_bins, count = S.shape
    floor = np.where(significant, S, 0.0)
    # How strongly each bin's time neighbour pops; tiny restart levels lose to any real one.
    restart = 1e-3 * tol * S
    from_time = np.concatenate([restart[:, :1], np.where(significant[:, :-1], S[:, :-1], 0)], 1)
    from_time = np.maximum(from_time, restart)
    up_level, up_source = _widest_scan(floor, from_time, range(n_bins))
    down_level, down_source = _widest_scan(floor, from_time, range(n_bins - 1, -1, -1))

    source = np.broadcast_to(np.arange(n_bins)[:, None], S.shape).copy()
    best = from_time.copy()
    for level, origin, shift in ((up_level, up_source, 1), (down_level, down_source, -1)):
        # The route arriving from the neighbour below (shift 1) or above (shift -1).
        arriving = np.roll(level, shift, axis=0)
        arriving[0 if shift == 1 else -1] = -1.0
        better = arriving > best
        best = np.where(better, arriving, best)
        source = np.where(better, np.roll(origin, shift, axis=0), source)
    return source


def _widest_scan(floor: np.ndarray, from_time: np.ndarray, order) -> tuple[np.ndarray, np.ndarray]:
    """Strength and source of the widest path reaching each bin along ``order``, all frames."""
    level = np.empty_like(floor)
    source = np.empty(floor.shape, dtype=np.int64)
    carried, carried_from = np.full(floor.shape[1], -1.0), np.zeros(floor.shape[1], np.int64)
    for m in order:
        own = from_time[m] >= carried
        carried_from = np.where(own, m, carried_from)
        carried = np.minimum(floor[m], np.maximum(from_time[m], carried))
        level[m], source[m] = carried, carried_from
    return level, source


def random_phase(S: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform phase in [0, 2 pi), drawn on the CPU so a seed gives the same phase anywhere."""
    return (2 * math.pi * torch.rand(S.shape, generator=generator, dtype=S.dtype)).to(S.device)


def initial_phase(S: torch.Tensor, init: str, n_fft: int, hop_length: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Phase to start Griffin-Lim from: ``"pghi"``, ``"random"`` or ``"zero"``."""
    if init == "pghi":
        return pghi_phase(S, n_fft, hop_length, generator=generator)
    if init == "random":
        return random_phase(S, generator)
    if init == "zero":
        return torch.zeros_like(S)
    raise ValueError(f"init={init!r} must be one of 'pghi', 'random', 'zero'")


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
    """Audio of exactly ``length`` samples whose STFT magnitude approximates ``S``.

    Fast Griffin-Lim: each iteration projects onto consistent spectrograms (iSTFT then STFT)
    and extrapolates with ``momentum`` (Perraudin, Balazs & Sondergaard, "A fast Griffin-Lim
    algorithm", WASPAA 2013; Griffin & Lim, "Signal estimation from modified short-time
    Fourier transform", 1984, when ``momentum=0``).

    Parameters
    ----------
    S : torch.Tensor, shape (n_fft // 2 + 1, frames)
        Target magnitude, on the device to compute on.
    n_fft, hop_length : int
        The STFT that ``S`` came from (Hann window, centred frames).
    length : int
        Output length in samples.
    n_iter : int
        Iterations; each costs one STFT and one inverse STFT.
    momentum : float
        0 for classic Griffin-Lim; 0.99 converges much faster; above 1 it degrades fast.
    init : {"pghi", "random", "zero"}
        Initial phase: phase-gradient heap integration (`pghi_phase`), random, or zero.
    generator : torch.Generator, optional
        Seeds random phase (for ``"random"``, and for near-silent bins with ``"pghi"``).
    """
    _check_shapes(S, n_fft, hop_length, length)
    phase = initial_phase(S, init, n_fft, hop_length, generator)
    # Frame-major from here on, (frames, bins): contiguous rows for the FFTs.
    S = S.T.contiguous()
    project = _Projection(n_fft, hop_length, length, S.shape[0], device=S.device, dtype=S.dtype)
    D = torch.polar(S, phase.T.contiguous())
    rebuilt, previous = torch.empty_like(D), torch.empty_like(D)
    scale = torch.empty_like(S)
    for i in range(n_iter):
        project(D, out=rebuilt)
        if momentum and i > 0:
            # D = rebuilt + momentum * (rebuilt - previous), on real views: complex lerp is slower.
            torch.lerp(torch.view_as_real(previous), torch.view_as_real(rebuilt), 1 + momentum,
                       out=torch.view_as_real(D))
        else:
            D.copy_(rebuilt)
        _set_magnitude(D, S, scale)
        rebuilt, previous = previous, rebuilt
    return project.inverse(D).clone()


def _check_shapes(S: torch.Tensor, n_fft: int, hop_length: int, length: int) -> None:
    """Raise `ValueError` unless ``S`` is what `stft` makes of ``length`` samples."""
    bins, count = S.shape
    if bins != n_fft // 2 + 1:
        raise ValueError(f"n_fft={n_fft} must match S's {bins} bins (n_fft // 2 + 1)")
    if count != n_frames(length, hop_length):
        raise ValueError(f"length={length} must give S's {count} frames at hop_length={hop_length}"
                         f" (it gives {n_frames(length, hop_length)})")
    if length <= n_fft // 2:
        raise ValueError(f"length={length} must be more than n_fft // 2 = {n_fft // 2} samples")


def _set_magnitude(D: torch.Tensor, S: torch.Tensor, scale: torch.Tensor) -> None:
    """Rescale ``D`` in place to magnitude ``S``, keeping its phase; ``scale`` is scratch."""
    # One real buffer, in place: abs() of a complex tensor is several times slower.
    torch.mul(D.real, D.real, out=scale).addcmul_(D.imag, D.imag)
    scale.clamp_min_(torch.finfo(scale.dtype).tiny).rsqrt_().mul_(S)
    D.mul_(scale)

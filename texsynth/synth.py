"""The synthesis: target statistics, spectrogram optimisation, phase reconstruction."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import losses, spectral
from .features import RandomNets
from .resolution import resolve
from .settings import Settings, validate
from .subbands import SubbandEnvelopes

log = logging.getLogger(__name__)

ANALYSIS_RMS = 0.1  # inputs are scaled to this RMS before analysis; log_floor is relative to it
N_BANDS = 32  # mel bands for the envelope-moment loss
COPY_RATE = 50  # frames per second at which copying is judged
COPY_WINDOW = 1.0  # seconds: the length of the pieces compared for copying
MAX_PIECES = 64  # pieces of the output checked for copying, at most
# Weight of local copying in excess of the recording's own self-similarity, beside the global
# similarity term (both scaled by diversity_weight). 20 makes it a near-constraint: ship
# creaks' local copying 0.72 -> 0.63 (its halves: 0.62), slow wind 0.80 -> 0.47 (0.43), fire
# 0.36 -> 0.34 (0.31); drums, whose loop repeats itself, are untouched. Allowing 0.02 of
# excess instead of none left ship creaks at 0.68 / 0.68 over two seeds (none: 0.66 / 0.65),
# with fire's fidelity the same (1.12).
LOCAL_COPY_WEIGHT = 20.0
LOG_CEILING = math.log(1e4)  # far above any bin of the RMS-0.1 analysis signal (a few hundred at most)
EDGE_SECONDS = 0.5  # synthesised beyond each end of the output and cut away
HEADROOM = math.log(10.0)  # synthesis may exceed each bin's loudest frame by at most 20 dB


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from .errors import TexsynthError

        raise TexsynthError("device=cuda must be a machine with a CUDA GPU (none found); use --device cpu")
    return torch.device(device)


@dataclass
class Texture:
    """The statistics of one recording that a synthesis must reproduce."""

    mean: torch.Tensor  # (bins,) mean log magnitude per frequency bin
    high: torch.Tensor  # (bins,) highest log magnitude per bin, less the mean
    Z: torch.Tensor  # (bins, frames) log magnitude less its per-bin mean
    grams: list  # per net, (filters, filters)
    autocorrs: list  # per net, (filters, lags) or None
    moments: dict | None  # band-envelope statistics
    envelope_ac: torch.Tensor | None  # (bands, lags) band-envelope autocorrelation
    usable: list  # per net, whether the input is long enough for it
    mel: torch.Tensor | None = None  # (bands, frames) the recording's `copy_view`
    self_copy: torch.Tensor | None = None  # `local_copying` of its second half in its first
    subbands: dict | None = None  # moments of the waveform's sub-band envelopes


class TextureModel:
    """Nets, filterbank and loss weights: measures a texture and scores a candidate against it."""

    def __init__(self, settings: Settings, *, seed: int, device: torch.device):
        self.s = settings
        self.device = device
        n_bins = settings.n_fft // 2 + 1
        self.nets = RandomNets(n_bins, settings.widths, settings.n_filters, seed=seed,
                               max_taps=settings.max_taps, device=device)
        import librosa

        bank = librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=N_BANDS,
                                   norm=None, dtype=np.float32)
        self.bands = torch.from_numpy(bank).to(device)  # (bands, bins)
        self.frame_rate = settings.sample_rate / settings.hop_length
        self.copy_pool = max(1, round(self.frame_rate / COPY_RATE))
        self.copy_window = max(1, round(COPY_WINDOW * self.frame_rate / self.copy_pool))
        self._subbands = {}  # one filterbank per signal length

    def subband_envelopes(self, y: torch.Tensor) -> torch.Tensor:
        """`SubbandEnvelopes` of a waveform (bands, steps)."""
        n = y.shape[-1]
        if n not in self._subbands:
            self._subbands[n] = SubbandEnvelopes(n, self.s.sample_rate, device=self.device)
        return self._subbands[n](y)

    def waveform_loss(self, y: torch.Tensor, target: Texture) -> tuple[torch.Tensor, dict]:
        """`loss` of a waveform's log spectrogram, plus the moments of its sub-band envelopes,
        which see what happens inside a frame."""
        total, parts = self.loss(self.log_spectrogram(y) - target.mean[:, None], target)
        if target.subbands is not None:
            got = losses.envelope_moments(self.subband_envelopes(y))
            parts["subbands"] = self.s.subband_weight * losses.moments_error(got, target.subbands)
            total = total + parts["subbands"]
        return total, parts

    def log_spectrogram(self, y: torch.Tensor) -> torch.Tensor:
        D = spectral.stft(y, self.s.n_fft, self.s.hop_length)
        # |D| with a gradient that stays finite where D is exactly 0.
        S = torch.sqrt(D.real**2 + D.imag**2 + 1e-20)
        return spectral.log_magnitude(S, self.s.log_floor)

    def magnitude(self, L: torch.Tensor) -> torch.Tensor:
        """Linear magnitude from a log magnitude, bounded so that a wild line-search step
        gives a large but finite loss (which the line search backs off from), never inf."""
        return spectral.from_log_magnitude(L.clamp(max=LOG_CEILING), self.s.log_floor)

    def envelopes(self, S: torch.Tensor) -> torch.Tensor:
        """Compressed mel-band envelopes from a `magnitude` (bins, frames) -> (bands, frames)."""
        return (self.bands @ S + 1e-6) ** 0.3

    def copy_view(self, S: torch.Tensor) -> torch.Tensor:
        """What copying is judged on: log mel power (bands, frames) of a `magnitude`, at about
        `COPY_RATE` frames per second, less each band's mean."""
        M = torch.log(self.bands @ S**2 + 1e-6)
        if self.copy_pool > 1 and M.shape[1] >= self.copy_pool:
            M = torch.nn.functional.avg_pool1d(M[None], self.copy_pool)[0]
        return M - M.mean(1, keepdim=True)

    def local_copying(self, M: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """How closely pieces of ``M`` (a `copy_view`) copy some piece of ``reference``: the
        mean over `COPY_WINDOW` pieces of their soft-max similarity over positions."""
        window = self.copy_window
        hop = max(window // 2, -(-(M.shape[1] - window) // (MAX_PIECES - 1)))
        sim = losses.window_similarity(M, reference, window=window, hop=hop)
        return losses.soft_max(sim.T).mean()

    def _max_lag(self, pool: int, n_frames: int) -> int:
        # Lags past a quarter of the input are estimated from too little overlap, and matching
        # them pins the synthesis to a shifted copy of the input.
        return max(1, min(int(self.s.max_lag_seconds * self.frame_rate / pool), n_frames // 4))

    def measure(self, y: torch.Tensor, n_frames: int | None = None) -> Texture:
        """Target statistics of ``y`` for an output of ``n_frames`` frames (default: as long).

        Nets wider than the input or the output are left out.
        """
        L = self.log_spectrogram(y)
        mean = L.mean(1)
        Z = L - mean[:, None]
        usable = self.nets.usable(min(Z.shape[1], n_frames or Z.shape[1]))
        if not any(usable):
            raise ValueError(f"input of {Z.shape[1]} frames or output of {n_frames} frames is "
                             f"shorter than the narrowest net, widths={self.s.widths}")
        grams, autocorrs = [], []
        with torch.no_grad():
            for phi, pool in zip(self.nets(Z, usable), self.nets.pools):
                grams.append(None if phi is None else losses.gram(phi))
                ac = self.s.autocorr_weight > 0 and phi is not None
                autocorrs.append(losses.autocorrelation(phi, self._max_lag(pool, phi.shape[1])) if ac else None)
            S = self.magnitude(L)
            env = self.envelopes(S)
            moments = losses.envelope_moments(env) if self.s.moments_weight > 0 else None
            envelope_ac = None
            if self.s.autocorr_weight > 0:
                envelope_ac = losses.autocorrelation(env, self._max_lag(1, env.shape[1]))
            mel = self.copy_view(S)
            # The recording's own level of self-similarity: its second half's pieces found in
            # its first half. The synthesis may copy no more than that.
            half = mel.shape[1] // 2
            self_copy = None
            if self.s.diversity_weight > 0 and half >= 2 * self.copy_window:
                first, second = mel[:, :half], mel[:, half:]
                self_copy = self.local_copying(second - second.mean(1, keepdim=True),
                                               first - first.mean(1, keepdim=True))
            subbands = None
            if self.s.subband_weight > 0 and self.s.refine_steps > 0:
                subbands = losses.envelope_moments(self.subband_envelopes(y))
        return Texture(mean, Z.amax(1), Z, grams, autocorrs, moments, envelope_ac, usable, mel, self_copy,
                       subbands)

    def loss(self, Z: torch.Tensor, target: Texture) -> tuple[torch.Tensor, dict]:
        """Weighted loss of a candidate ``Z`` (bins, frames) and its parts, for reporting."""
        s = self.s
        parts = {}
        n_nets = sum(target.usable)
        phis = self.nets(Z, target.usable)
        L = Z + target.mean[:, None]
        S = self.magnitude(L)  # computed once: the envelopes and the copying check share it
        env = self.envelopes(S) if s.moments_weight > 0 or s.autocorr_weight > 0 else None
        if s.gram_weight > 0:
            parts["gram"] = s.gram_weight * sum(
                losses.relative_error(losses.gram(phi), g) for phi, g in zip(phis, target.grams) if g is not None
            ) / n_nets
        if s.autocorr_weight > 0:
            terms = []
            for phi, ac in zip(phis, target.autocorrs):
                if ac is not None:
                    lags = min(ac.shape[1], phi.shape[1] // 2)
                    terms.append(losses.relative_error(losses.autocorrelation(phi, lags - 1), ac[:, :lags]))
            # The band envelopes count as one more net: they carry onsets most directly.
            lags = min(target.envelope_ac.shape[1], env.shape[1] // 2)
            ac = losses.autocorrelation(env, lags - 1)
            terms.append(losses.relative_error(ac, target.envelope_ac[:, :lags]))
            parts["autocorr"] = s.autocorr_weight * sum(terms) / (n_nets + 1)
        if s.moments_weight > 0:
            parts["moments"] = s.moments_weight * losses.moments_error(losses.envelope_moments(env), target.moments)
        if s.marginal_weight > 0:
            parts["marginal"] = s.marginal_weight * losses.marginal_error(Z, target.Z.std(1))
        if s.diversity_weight > 0:
            min_overlap = min(int(self.frame_rate), Z.shape[1], target.Z.shape[1]) // 2
            sim = losses.shift_similarity(Z, target.Z, min_overlap=max(min_overlap, 1))
            d = losses.soft_max(sim)
            if target.self_copy is not None:
                # A one-sided penalty: pieces may resemble the recording as much as its own
                # halves resemble each other, and no more; below that it costs no fidelity.
                excess = self.local_copying(self.copy_view(S), target.mel) - target.self_copy
                d = d + LOCAL_COPY_WEIGHT * torch.relu(excess)
            parts["diversity"] = s.diversity_weight * d
        return sum(parts.values()), parts


class Tracked:
    """An optimiser's closure: evaluates ``loss_fn(param)``, back-propagates, reports
    progress, and keeps the best value of ``param`` seen. A non-finite loss raises
    `FloatingPointError` naming ``what``."""

    def __init__(self, param: torch.Tensor, loss_fn, *, what: str, progress=None, first_step: int = 0):
        self.param, self.loss_fn, self.what = param, loss_fn, what
        self.progress, self.first_step = progress, first_step
        self.best_loss, self.best = math.inf, param.detach().clone()
        self.evaluations = 0

    def __call__(self):
        self.param.grad = None
        loss, parts = self.loss_fn(self.param)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.what} is not finite at step {self.evaluations + 1}")
        loss.backward()
        value = float(loss.detach())
        if value < self.best_loss:
            self.best_loss, self.best = value, self.param.detach().clone()
        self.evaluations += 1
        if self.progress is not None:
            self.progress(self.first_step + self.evaluations, value,
                          {k: float(v.detach()) for k, v in parts.items()})
        return loss


def optimise(model: TextureModel, target: Texture, n_frames: int, *, seed: int, progress=None,
             start: torch.Tensor | None = None, steps: int | None = None, first_step: int = 0):
    """Find a log spectrogram (bins, frames) whose statistics match ``target``.

    From ``start`` (a log spectrogram less the target's mean) or from seeded noise, for
    ``steps`` loss evaluations (default ``settings.steps``); ``progress`` counts from
    ``first_step``.
    """
    s = model.s
    n_steps = s.steps if steps is None else steps
    if start is None:
        # Noise with the target's per-bin spread: a tiny start leaves the ReLU features near
        # zero and the Gram gradient vanishing.
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(target.Z.shape[0], n_frames, generator=generator).to(model.device)
        start = noise * target.Z.std(1, keepdim=True)
    Z = start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    closure = Tracked(Z, lambda Z: model.loss(Z, target), what="loss", progress=progress,
                      first_step=first_step)

    if s.optimizer == "lbfgs":
        optimiser = torch.optim.LBFGS([Z], lr=s.learning_rate, max_iter=n_steps, max_eval=n_steps,
                                      history_size=50, tolerance_grad=1e-9, tolerance_change=1e-12,
                                      line_search_fn="strong_wolfe")
        rounds = [0] if n_steps > 0 else []
    else:
        optimiser = torch.optim.Adam([Z], lr=s.learning_rate * 0.05)
        rounds = range(n_steps)
    try:
        for _ in rounds:
            optimiser.step(closure)
    except FloatingPointError:
        if closure.evaluations == 0:
            raise
        log.warning("optimisation diverged after %d steps; keeping the best state", closure.evaluations)
    # A few runaway frames far louder than anything in the recording would otherwise set the
    # loudness of the result. The cap is loose: clamping to the recording's own maximum
    # measurably blunts crackle (fidelity 0.88 -> 0.48 on a campfire).
    Z = torch.minimum(closure.best, target.high[:, None] + HEADROOM)
    return Z + target.mean[:, None], closure.best_loss


def refine_waveform(model: TextureModel, target: Texture, y: torch.Tensor, *, steps: int,
                    progress=None, first_step: int = 0) -> torch.Tensor:
    """Polish audio ``y`` by L-BFGS on its samples, with the same loss as the spectrogram.

    The optimised spectrogram is not one that any signal has, and Griffin-Lim's nearest
    signal loses part of what was matched (the loss measured on the rebuilt audio is often
    ten times that of the spectrogram). Every waveform is consistent by construction, so
    optimising it directly from Griffin-Lim's result wins that part back. Returns the best
    waveform seen; ``y`` itself when the first step is not finite.
    """
    w = y.detach().clone().requires_grad_(True)
    closure = Tracked(w, lambda w: model.waveform_loss(w, target), what="waveform loss",
                      progress=progress, first_step=first_step)
    optimiser = torch.optim.LBFGS([w], lr=1.0, max_iter=steps, max_eval=steps, history_size=50,
                                  tolerance_grad=1e-12, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")
    try:
        optimiser.step(closure)
    except FloatingPointError:
        log.warning("waveform refinement stopped after %d steps; keeping the best state", closure.evaluations)
    return closure.best


def spectral_synthesis(model: TextureModel, target: Texture, n_frames: int, length: int, *,
                       seed: int, progress=None) -> torch.Tensor:
    """The optimised magnitude spectrogram (bins, frames).

    With ``projections`` > 0 the optimisation is split into rounds; between rounds the
    spectrogram is replaced by the magnitude of real audio near it (a few Griffin-Lim
    iterations), so the optimiser ends close to a spectrogram that some signal actually has.
    """
    s = model.s
    rounds = max(1, min(s.projections + 1, s.steps))
    start, done = None, 0
    for r in range(rounds):
        steps = s.steps * (r + 1) // rounds - done
        try:
            L, _ = optimise(model, target, n_frames, seed=seed, progress=progress, start=start,
                            steps=steps, first_step=done)
        except FloatingPointError:
            if done == 0:
                raise
            log.warning("optimisation diverged after %d steps; keeping the best state", done)
            break
        done += steps
        if r < rounds - 1:
            S = spectral.from_log_magnitude(L.detach(), s.log_floor)
            y = spectral.griffin_lim(S, n_fft=s.n_fft, hop_length=s.hop_length, length=length,
                                     n_iter=s.projection_iters, momentum=s.momentum, init=s.phase_init)
            start = model.log_spectrogram(y) - target.mean[:, None]
    return spectral.from_log_magnitude(L.detach(), s.log_floor)


def synthesize(y: np.ndarray, sr: int, *, duration: float | None = None, seed: int = 0,
               settings: Settings | None = None, device: str = "auto", progress=None) -> np.ndarray:
    """Synthesise new audio with the texture of ``y``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono input at ``sr`` Hz.
    sr : int
        Its sample rate; must equal ``settings.sample_rate`` unless that is 0 (see
        `texsynth.settings.at_rate` and `texsynth.audio.load_audio`). STFT sizes of 0 are
        chosen for ``y`` (`texsynth.resolution.resolve`).
    duration : float, optional
        Output length in seconds; the input's length by default.
    seed : int
        Seeds the random nets, the initial spectrogram and the initial phase.
    settings : Settings, optional
        Everything else; `Settings()` by default.
    device : {"auto", "cpu", "cuda"}
    progress : callable(step, loss, parts), optional
        Called after each loss evaluation.

    Returns
    -------
    np.ndarray, shape (round(duration * sr),)
        Float32 audio at the input's RMS level, peaks softly limited below full scale.
    """
    from .audio import match_level, seconds_to_samples

    s = resolve(validate(settings or Settings()), y, sr)
    dev = pick_device(device)
    torch.manual_seed(seed)
    length = seconds_to_samples(duration if duration is not None else y.size / sr, sr)
    if length < 1:
        raise ValueError(f"duration={duration} must be positive")
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))

    model = TextureModel(s, seed=seed, device=dev)
    x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32) * (ANALYSIS_RMS / rms)).to(dev)
    # The first and last frames are seen by fewer filter positions and overlap-added windows
    # than the rest, and drift: the first and last half second came out about 2 dB louder and
    # brighter than the middle, the same in every seed, so two outputs resembled each other
    # at their ends. The synthesis runs over a margin on each side that is then cut away.
    margin = min(round(EDGE_SECONDS * sr), length // 2)
    margin = -(-margin // s.hop_length) * s.hop_length
    padded = length + 2 * margin
    n_frames = spectral.n_frames(padded, s.hop_length)
    target = model.measure(x, n_frames)
    S = spectral_synthesis(model, target, n_frames, padded, seed=seed, progress=progress)

    generator = torch.Generator().manual_seed(seed)
    out = spectral.griffin_lim(S, n_fft=s.n_fft, hop_length=s.hop_length, length=padded,
                               n_iter=s.griffin_lim_iters, momentum=s.momentum, init=s.phase_init,
                               generator=generator)
    if s.refine_steps > 0:
        out = refine_waveform(model, target, out, steps=s.refine_steps, progress=progress,
                              first_step=s.steps)
    out = out[margin:margin + length].cpu().numpy().astype(np.float64)
    if not np.all(np.isfinite(out)) or not np.any(out):
        raise FloatingPointError("synthesis produced silent or non-finite audio")
    return match_level(out, rms)

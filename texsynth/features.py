"""Random-filter features: separate single-layer 1-D conv nets over time, one per width."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def layout(width: int, max_taps: int) -> tuple[int, int]:
    """``(pool, taps)`` of a net: frames averaged per step, and filter taps over that view."""
    pool = max(1, width // max_taps) if max_taps else 1
    return pool, max(1, width // pool)


def fits(width: int, max_taps: int, n_frames: int) -> bool:
    """Whether a net of ``width`` frames has at least two outputs over ``n_frames`` frames."""
    pool, taps = layout(width, max_taps)
    return n_frames // pool - taps + 1 >= 2


class RandomNets:
    """Several one-layer conv nets with fixed random weights, frequency bins as channels.

    Net ``k`` has ``n_filters`` filters spanning ``widths[k]`` frames, followed by a ReLU. A
    small width sees timbre (a few frames of spectrum); a wide one sees longer events and
    rhythm. The weights come from ``seed`` alone, so the target and the synthesis are always
    measured by the same nets.

    Wide nets look at a time-pooled view of the spectrogram: a width-``w`` net with ``w >
    max_taps`` averages ``w // max_taps`` frames first and uses ``max_taps`` taps, so every net
    costs about the same however wide its receptive field.
    """

    def __init__(self, n_bins: int, widths, n_filters: int, *, seed: int, max_taps: int = 0,
                 device="cpu", dtype=torch.float32):
        generator = torch.Generator().manual_seed(seed)
        self.widths = tuple(int(w) for w in widths)
        self.max_taps = max_taps
        self.pools = []
        self.weights = []
        for width in self.widths:
            pool, taps = layout(width, max_taps)
            # He-style scaling: unit-variance input gives unit-variance pre-activations.
            w = torch.randn(n_filters, n_bins, taps, generator=generator) / math.sqrt(n_bins * taps)
            self.weights.append(w.to(device=device, dtype=dtype))
            self.pools.append(pool)

    def __call__(self, X: torch.Tensor, only: list[bool] | None = None) -> list[torch.Tensor | None]:
        """Features of a log spectrogram ``X`` (bins, frames): one (filters, frames') per net.

        Nets switched off in ``only`` are not run and give ``None``.
        """
        x = X[None]  # (1, bins, frames)
        out = []
        for k, (weight, pool) in enumerate(zip(self.weights, self.pools)):
            if only is not None and not only[k]:
                out.append(None)
                continue
            view = F.avg_pool1d(x, pool, pool) if pool > 1 else x
            out.append(F.relu(F.conv1d(view, weight))[0])
        return out

    def usable(self, n_frames: int) -> list[bool]:
        """Which nets fit at least two outputs into ``n_frames`` frames."""
        return [fits(width, self.max_taps, n_frames) for width in self.widths]

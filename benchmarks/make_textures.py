"""Synthetic test textures with known structure, free of any license: generated here.

    python benchmarks/make_textures.py OUTDIR [--seconds 10]

Writes rain (random droplets), tapping (a jittered 2.5 Hz tap), bell (an additive-synthesis
bell struck every 1.6 s), hum (a 50 Hz machine hum with harmonics and noise), wind (noise
through a slowly wandering band-pass), crickets (irregular chirps of 4-5 kHz pulses over a
faint night hiss), drone (a sustained five-partial chord with slow beating over soft noise)
and stream (dense rising bubbles over low rumble), at 16 kHz mono.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

SR = 16000


def _decay(n, seconds, sr=SR):
    return np.exp(-np.arange(n) / (seconds * sr))


def rain(seconds, rng):
    n = int(seconds * SR)
    y = 0.01 * scipy.signal.lfilter([1], [1, -0.6], rng.standard_normal(n))
    for start in rng.integers(0, n - 800, int(seconds * 120)):
        length = int(rng.integers(100, 800))
        f = rng.uniform(1500, 6000)
        t = np.arange(length) / SR
        drop = np.sin(2 * np.pi * f * (1 + 2 * t) * t) * _decay(length, length / SR / 4)
        y[start:start + length] += rng.uniform(0.02, 0.3) * drop
    return y


def tapping(seconds, rng):
    n = int(seconds * SR)
    y = 0.002 * rng.standard_normal(n)
    tap = scipy.signal.lfilter([1], [1, -1.6, 0.8], rng.standard_normal(600)) * _decay(600, 0.01)
    for k, t in enumerate(np.arange(0.1, seconds - 0.1, 0.4)):
        start = int((t + rng.normal(0, 0.005)) * SR)
        accent = 1.0 if k % 4 == 0 else 0.5
        y[start:start + 600] += accent * 0.3 * tap / np.abs(tap).max()
    return y


def bell(seconds, rng):
    n = int(seconds * SR)
    y = 0.0005 * rng.standard_normal(n)
    partials = [(523.0, 1.0, 2.5), (1046.5 * 1.003, 0.6, 1.8), (1317.0, 0.4, 1.2),
                (1567.0, 0.3, 1.0), (2093.0 * 0.998, 0.25, 0.7), (2637.0, 0.15, 0.5)]
    t = np.arange(n) / SR
    for strike in np.arange(0.05, seconds, 1.6):
        start = int(strike * SR)
        tt = t[: n - start]
        tone = sum(a * np.sin(2 * np.pi * f * tt) * np.exp(-tt / d) for f, a, d in partials)
        y[start:] += 0.15 * rng.uniform(0.8, 1.0) * tone
    return y


def hum(seconds, rng):
    t = np.arange(int(seconds * SR)) / SR
    y = sum(a * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi))
            for k, a in zip(range(1, 9), (0.3, 0.2, 0.15, 0.1, 0.06, 0.05, 0.03, 0.02)))
    y *= 1 + 0.1 * np.sin(2 * np.pi * 0.7 * t)
    b, a = scipy.signal.butter(2, [200, 3000], btype="band", fs=SR)
    return y + 0.03 * scipy.signal.lfilter(b, a, rng.standard_normal(t.size))


def wind(seconds, rng):
    n = int(seconds * SR)
    noise = rng.standard_normal(n)
    frames = np.array_split(np.arange(n), int(seconds * 20))
    centre = 400 * np.exp(np.cumsum(rng.normal(0, 0.08, len(frames))))
    y = np.zeros(n)
    zi = None
    for idx, fc in zip(frames, np.clip(centre, 150, 2500)):
        b, a = scipy.signal.butter(2, [fc / 1.5, fc * 1.5], btype="band", fs=SR)
        seg, zi = scipy.signal.lfilter(b, a, noise[idx], zi=np.zeros(4) if zi is None else zi)
        y[idx] = seg
    gust = 0.6 + 0.4 * np.sin(2 * np.pi * 0.15 * np.arange(n) / SR + 1.0)
    return 0.3 * y * gust


def crickets(seconds, rng):
    n = int(seconds * SR)
    y = 0.003 * rng.standard_normal(n)
    for chirp in np.sort(rng.uniform(0, seconds - 0.3, int(seconds * 3))):
        f = rng.uniform(4200, 4800)
        for k in range(int(rng.integers(3, 6))):
            start, length = int((chirp + k * 0.033) * SR), int(0.018 * SR)
            t = np.arange(length) / SR
            y[start:start + length] += rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * f * t) * np.hanning(length)
    return y


def drone(seconds, rng):
    t = np.arange(int(seconds * SR)) / SR
    partials = [(110.0, 0.3), (165.2, 0.2), (220.6, 0.15), (277.0, 0.1), (330.4, 0.08)]
    y = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
            * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6)))
            for f, a in partials)
    return y + 0.01 * scipy.signal.lfilter([1], [1, -0.95], rng.standard_normal(t.size))


def stream(seconds, rng):
    n = int(seconds * SR)
    b, a = scipy.signal.butter(2, 300, fs=SR)
    y = 0.1 * scipy.signal.lfilter(b, a, rng.standard_normal(n))
    for start in rng.integers(0, n - 1200, int(seconds * 300)):
        length = int(rng.integers(200, 1200))
        f0 = rng.uniform(300, 1500)
        t = np.arange(length) / SR
        bubble = np.sin(2 * np.pi * f0 * (t + 2.0 * t**2 * SR / length)) * _decay(length, length / SR / 3)
        y[start:start + length] += rng.uniform(0.01, 0.08) * bubble
    return y


TEXTURES = {"rain": rain, "tapping": tapping, "bell": bell, "hum": hum, "wind": wind,
            "crickets": crickets, "drone": drone, "stream": stream}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, make in TEXTURES.items():
        y = make(args.seconds, np.random.default_rng(len(name)))
        y = 0.5 * y / np.abs(y).max()
        sf.write(args.outdir / f"{name}.wav", y.astype(np.float32), SR, subtype="PCM_16")
        print(args.outdir / f"{name}.wav")


if __name__ == "__main__":
    main()

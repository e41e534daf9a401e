"""One input file to one output file, with the checks that keep user data safe."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch

from . import __version__
from .audio import (check_writable, load_audio, output_subtype, seconds_to_samples,
                    write_atomically, write_audio)
from . import spectral
from .errors import TexsynthError
from .features import fits
from .resolution import TONAL_SECONDS, is_periodic, resolve
from .settings import N_FFT_CHOICES, REFERENCE_RATE, Settings, validate
from .synth import pick_device, synthesize

MAX_DURATION = 3600.0  # seconds of output in one file

log = logging.getLogger(__name__)


def sidecar_path(output) -> Path:
    """Where the JSON record of an output goes: ``out.wav`` -> ``out.wav.json``."""
    return Path(f"{output}.json")


def check_paths(input_path, output_path, *, overwrite: bool = False) -> None:
    """Refuse an output that is the input (or whose sidecar would be), exists without
    ``overwrite``, or cannot be written. Symbolic and hard links count as the same file."""
    src, dst = Path(input_path), Path(output_path)
    if _same_file(src, dst):
        raise TexsynthError(f"{dst}: output would overwrite the input {src}; choose another output")
    if _same_file(src, sidecar_path(dst)):
        raise TexsynthError(f"{dst}: its sidecar {sidecar_path(dst)} would overwrite the input; "
                            "choose another output")
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise TexsynthError(f"{dst}: output exists (use --overwrite to replace it)")
    check_writable(dst)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing or a dangling link
        return False


def check_duration(duration: float | None, settings: Settings) -> None:
    """Refuse an output shorter than one STFT frame or longer than `MAX_DURATION`."""
    frame = (settings.n_fft or min(N_FFT_CHOICES)) / (settings.sample_rate or REFERENCE_RATE)
    if duration is not None and not frame <= duration <= MAX_DURATION:
        raise TexsynthError(f"duration={duration} must be between one STFT frame, "
                            f"n_fft/sample_rate = {frame:.3g} s, and {MAX_DURATION:g} s")


def fit_to_length(name: str, n_input: int, n_output: int, settings: Settings) -> Settings:
    """``settings`` without the nets that span more frames than the input or output has.

    Refuses an input shorter than one STFT frame, or lengths that no net fits in.
    """
    s = settings
    if n_input < s.n_fft:
        raise TexsynthError(f"{name}: length {n_input / s.sample_rate:.3f} s must be at least one "
                            f"STFT frame, n_fft/sample_rate = {s.n_fft / s.sample_rate:.3g} s")
    n = min(n_input, n_output)
    frames = spectral.n_frames(n, s.hop_length)
    fit = tuple(w for w in s.widths if fits(w, s.max_taps, frames))
    if not fit:
        narrowest = min(s.widths) * s.hop_length / s.sample_rate
        raise TexsynthError(f"{name}: input or output of {n / s.sample_rate:.3f} s must be at "
                            f"least the narrowest filter, {narrowest:.3g} s")
    if fit != s.widths:
        left_out = ", ".join(str(w) for w in s.widths if w not in fit)
        log.warning("%s: widths %s left out: they span more than the %.2f s of input or output",
                    name, left_out, n / s.sample_rate)
    return s.replace(widths=fit)


def input_kind(y, sr: int, settings: Settings) -> tuple[str, Settings]:
    """``"repeats"`` for a loop or a beat (`texsynth.resolution.is_periodic`), ``"tonal"`` when
    the STFT size chosen for ``y`` is at least `TONAL_SECONDS` long (only partials need such a
    window; with a set ``n_fft`` nothing counts as tonal), else ``"other"``; and ``settings``,
    resolved for ``y`` where telling needed it."""
    if is_periodic(y, sr):
        return "repeats", settings
    if settings.n_fft:
        return "other", settings
    s = resolve(settings, y, sr, periodic=False)
    return ("tonal" if s.n_fft >= TONAL_SECONDS * sr else "other"), s


def _synthesize_finite(name: str, y, sr: int, seconds: float, s: Settings, *, seed: int,
                       device: str, progress=None):
    """`synthesize`, with a diverged optimisation refused in one line naming ``name``."""
    try:
        out = synthesize(y, sr, duration=seconds, seed=seed, settings=s, device=device,
                         progress=progress)
    except FloatingPointError as exc:
        raise TexsynthError(f"{name}: synthesis failed ({exc}); nothing written. "
                            "Try another --seed or fewer --steps") from None
    return out


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def synthesize_file(input_path, output_path, *, settings: Settings | None = None,
                    duration: float | None = None, seed: int = 0, device: str = "auto",
                    overwrite: bool = False, preset: str | None = None, progress=None,
                    kind_presets: dict | None = None, on_settings=None) -> dict:
    """Synthesise ``output_path`` from ``input_path`` and write its JSON sidecar beside it.

    ``kind_presets`` maps a kind of input, ``"repeats"`` (a loop or a beat) or ``"tonal"``
    (sustained partials), to a (name, settings) pair used instead of ``preset`` and
    ``settings`` for inputs of that kind (see `input_kind`); those settings must read the
    input at the same rate and length. ``on_settings(preset, settings, kind)``, if given, is
    told what was chosen before the synthesis starts.

    Returns the sidecar's record: version, input path and SHA-256, effective settings, seed,
    device, durations and wall time. Raises `TexsynthError` for bad input or paths; the input
    is only ever opened for reading, and the output appears whole or not at all.
    """
    start = time.perf_counter()
    s = validate(settings or Settings())
    check_duration(duration, s)
    check_paths(input_path, output_path, overwrite=overwrite)
    written_as = output_subtype(output_path, s.subtype)
    dev = pick_device(device)

    rec = load_audio(input_path, s.sample_rate, max_seconds=s.max_input_seconds)
    kind = None
    if kind_presets:
        for _, other in kind_presets.values():
            if (other.sample_rate, other.max_input_seconds) != (s.sample_rate, s.max_input_seconds):
                raise ValueError("kind_presets must share sample_rate and max_input_seconds with settings")
        kind, s = input_kind(rec.y, rec.sr, s)
        if kind in kind_presets:
            preset, s = kind_presets[kind][0], validate(kind_presets[kind][1])
            check_duration(duration, s)
            written_as = output_subtype(output_path, s.subtype)
    if on_settings is not None:
        on_settings(preset, s, kind)
    s = resolve(s, rec.y, rec.sr, periodic=kind == "repeats" if kind else None)
    seconds = duration if duration is not None else rec.seconds
    s = fit_to_length(str(input_path), rec.y.size, seconds_to_samples(seconds, rec.sr), s)
    y = _synthesize_finite(str(input_path), rec.y, rec.sr, seconds, s, seed=seed, device=str(dev),
                           progress=progress)
    write_audio(output_path, y, rec.sr, subtype=s.subtype)

    record = {
        "texsynth": __version__,
        "input": str(input_path),
        "input_sha256": file_digest(input_path),
        "input_seconds_analysed": round(rec.seconds, 3),
        "input_truncated": rec.truncated,
        "output": str(output_path),
        "output_subtype": written_as,
        "output_seconds": round(y.size / rec.sr, 3),
        "sample_rate": rec.sr,
        "seed": seed,
        "preset": preset,
        "input_kind": kind,
        "settings": s.to_dict(),
        "device": str(dev),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    write_json(sidecar_path(output_path), record)
    return record


def write_json(path, record: dict) -> None:
    """Write JSON atomically (temporary file in the same folder, then a rename)."""
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(path, lambda handle: handle.write(text), mode="w")

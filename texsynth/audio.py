"""Audio file input and output: decode, mix to mono, resample, write atomically."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import TexsynthError

log = logging.getLogger(__name__)

MIN_SOURCE_RATE = 2000  # Hz; lower rates are header corruption, not audio
MIN_SECONDS = 0.25  # shortest input with any texture statistics to speak of
SILENCE_RMS = 1e-5  # about -100 dBFS: quieter input is treated as silence

# Output formats by file extension, with the subtypes each accepts.
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}


@dataclass(frozen=True)
class Recording:
    """A decoded input, mono at the working rate."""

    y: np.ndarray  # (n,) float32
    sr: int  # working sample rate, Hz
    source_sr: int  # the file's own sample rate, Hz
    channels: int  # channel count in the file
    seconds: float  # length of y, seconds
    truncated: bool  # True when only the first max_seconds were read


def load_audio(path, sr: int, *, max_seconds: float | None = None) -> Recording:
    """Read an audio file as mono float32 at ``sr`` Hz.

    Channels are averaged. Non-finite samples are zeroed (the whole file being non-finite is an
    error). At most ``max_seconds`` are read, so an hour-long input costs no more memory than
    an excerpt. Raises `TexsynthError` naming the file for anything that is not usable audio.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise TexsynthError(f"{name}: no such file")
    if path.is_dir():
        raise TexsynthError(f"{name}: is a directory, not an audio file")

    try:
        with sf.SoundFile(str(path)) as f:
            source_sr, channels, n_frames = f.samplerate, f.channels, f.frames
            _check_header(name, source_sr, channels)
            limit = n_frames if max_seconds is None else min(n_frames, int(max_seconds * source_sr))
            data = f.read(frames=limit, dtype="float32", always_2d=True)
    except TexsynthError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError, EOFError) as exc:
        raise TexsynthError(f"{name}: cannot decode audio ({_reason(exc)})") from None

    truncated = data.shape[0] < n_frames
    y = _to_mono(name, data)
    if y.size < MIN_SECONDS * source_sr:
        raise TexsynthError(
            f"{name}: length {y.size / source_sr:.3f} s must be at least {MIN_SECONDS} s"
        )
    if float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise TexsynthError(f"{name}: input is silent (RMS below -100 dBFS)")
    y = resample(y, source_sr, sr)
    return Recording(y, sr, source_sr, channels, y.size / sr, truncated)


def _check_header(name: str, source_sr: int, channels: int) -> None:
    if channels < 1:
        raise TexsynthError(f"{name}: channel count {channels} must be at least 1")
    if source_sr < MIN_SOURCE_RATE:
        raise TexsynthError(f"{name}: sample rate {source_sr} Hz must be at least {MIN_SOURCE_RATE} Hz")


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes its messages with the path; the caller names the file already.
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def _to_mono(name: str, data: np.ndarray) -> np.ndarray:
    """Average channels, zeroing non-finite samples first (and refusing all-garbage input)."""
    finite = np.isfinite(data)
    if not finite.any():
        raise TexsynthError(f"{name}: no finite samples (all NaN or Inf)")
    if not finite.all():
        log.warning("%s: %d non-finite samples set to zero", name, int((~finite).sum()))
        data = np.where(finite, data, 0.0).astype(np.float32)
    y = data.mean(axis=1)
    # Remove any DC offset: it carries no texture and wastes headroom.
    return (y - y.mean()).astype(np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr (through librosa); a no-op at equal rates."""
    if orig_sr == target_sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def output_format(path) -> str:
    """The soundfile format for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise TexsynthError(f"{path}: output extension '{ext}' must be one of {allowed}")
    return FORMATS[ext]


def check_writable(path) -> None:
    """Fail early, before any long computation, if ``path`` cannot be written."""
    path = Path(path)
    output_format(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise TexsynthError(f"{path}: output path is a directory")
    if not folder.is_dir():
        raise TexsynthError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TexsynthError(f"{path}: output folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise TexsynthError(f"{path}: output file is not writable")


def write_audio(path, y: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> None:
    """Write ``y`` to ``path`` through a temporary file in the same folder and a rename.

    An interrupted write leaves neither a partial output nor the temporary file behind.
    """
    path = Path(path)
    fmt = output_format(path)
    if not sf.check_format(fmt, subtype):
        raise TexsynthError(f"{path}: subtype={subtype} is not available for {fmt} files")
    if not np.all(np.isfinite(y)):
        raise TexsynthError(f"{path}: refusing to write non-finite audio")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            sf.write(handle, y, sr, subtype=subtype, format=fmt)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def match_level(y: np.ndarray, reference_rms: float, *, peak: float = 0.98) -> np.ndarray:
    """Scale ``y`` to ``reference_rms``; if that would clip, limit the peaks softly.

    Samples above ``peak`` are compressed with a tanh knee rather than clipped, so a rare
    outlier costs a little level instead of a click.
    """
    y = y * (reference_rms / max(float(np.sqrt(np.mean(y**2))), 1e-12))
    knee = 0.8 * peak
    over = np.abs(y) > knee
    if over.any():
        mag = np.abs(y[over])
        y[over] = np.sign(y[over]) * (knee + (peak - knee) * np.tanh((mag - knee) / (peak - knee)))
    return y.astype(np.float32)


def seconds_to_samples(seconds: float, sr: int) -> int:
    return int(math.floor(seconds * sr + 0.5))

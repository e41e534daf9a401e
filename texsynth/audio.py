"""Audio file input and output: decode, mix to mono, resample, write atomically."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import TexsynthError
from .settings import native_rate

log = logging.getLogger(__name__)

MIN_SOURCE_RATE = 2000  # Hz; lower rates are header corruption, not audio
MAX_SOURCE_RATE = 768000  # Hz; so are higher ones
MIN_SECONDS = 0.25  # shortest input with any texture statistics to speak of
SILENCE_RMS = 1e-5  # about -100 dBFS: quieter input is treated as silence
OVERSHOOT = 1.12  # peaks up to +1 dB over full scale are ordinary lossy-codec overshoot
CANCEL_RATIO = 0.1  # a channel average this far below an uncorrelated mix is cancellation
BLOCK_SAMPLES = 1 << 20  # samples per read, so memory follows the data, not the header
HEADER_BYTES = 4096  # bytes inspected to explain a file that cannot be decoded

# Output formats by file extension.
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}

# What soundfile raises for files it cannot read, lying headers included.
DECODE_ERRORS = (RuntimeError, ValueError, TypeError, OSError, EOFError, MemoryError, OverflowError)


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
    """Read an audio file as mono float32 at ``sr`` Hz (0: at its own rate, see `native_rate`).

    Non-finite samples are zeroed, a DC offset removed, peaks beyond full scale scaled down,
    and channels averaged (or, when they cancel in the average, the loudest one taken). At
    most ``max_seconds`` are read, block by block, so an hour-long input or a header that
    claims one costs no more memory than the excerpt. Raises `TexsynthError`, naming the file,
    for anything that is not usable audio (docs/robustness.md lists each case).
    """
    path = Path(path)
    name = str(path)
    _check_input_path(path)
    data, source_sr, truncated = _decode(path, max_seconds)
    if truncated:
        log.warning("%s: longer than max_input_seconds=%g; analysing the first %g s",
                    name, max_seconds, max_seconds)
    n = data.shape[0]
    if n < math.ceil(MIN_SECONDS * source_sr):
        samples = f"{n} sample{'s' * (n != 1)}"
        raise TexsynthError(f"{name}: length {n / source_sr:.3f} s must be at least "
                            f"{MIN_SECONDS} s (it has {samples} at {source_sr} Hz)")
    sr = sr or native_rate(source_sr)
    y = resample(_to_mono(name, data), source_sr, sr)
    return Recording(y, sr, source_sr, data.shape[1], y.size / sr, truncated)


def _check_input_path(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise TexsynthError(f"{path}: dangling symbolic link (to {os.readlink(path)})")
    if not path.exists():
        raise TexsynthError(f"{path}: no such file")
    if path.is_dir():
        raise TexsynthError(f"{path}: is a directory, not an audio file")
    if not path.is_file():
        raise TexsynthError(f"{path}: not a regular file")


def _decode(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int, bool]:
    """Samples (frames, channels) float32, the file's rate, and whether more was left unread."""
    name = str(path)
    try:
        with _native_stderr_silenced(), sf.SoundFile(name) as f:
            problem = _header_problem(f.samplerate, f.channels)
            if problem:
                raise TexsynthError(f"{name}: {problem}")
            limit = math.inf if max_seconds is None else int(max_seconds * f.samplerate)
            data = _read_blocks(f, limit)
            truncated = data.shape[0] >= limit and f.read(1, dtype="float32").size > 0
            claimed, source_sr = f.frames, f.samplerate
    except TexsynthError:
        raise
    except DECODE_ERRORS as exc:
        raise TexsynthError(f"{name}: {_explain(path, exc)}") from None
    if data.shape[0] == 0:
        raise TexsynthError(f"{name}: no audio data (0 frames)")
    if data.shape[0] < min(claimed, limit):
        log.warning("%s: header promises %d frames but the data ends after %d; file truncated?",
                    name, claimed, data.shape[0])
    return data, source_sr, truncated


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: libmpg123 prints parse warnings there when it
    probes a corrupt file, and texsynth reports decode problems in its own one line."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to redirect
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_blocks(f: sf.SoundFile, limit: float) -> np.ndarray:
    """Up to ``limit`` frames, read in blocks: a lying header cannot force a huge allocation."""
    step = max(1, BLOCK_SAMPLES // f.channels)
    blocks, n = [], 0
    while n < limit:
        block = f.read(int(min(step, limit - n)), dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        blocks.append(block)
        n += block.shape[0]
    return np.concatenate(blocks) if blocks else np.zeros((0, f.channels), np.float32)


def _header_problem(source_sr: int, channels: int) -> str | None:
    if channels < 1:
        return f"channel count {channels} must be at least 1"
    if not MIN_SOURCE_RATE <= source_sr <= MAX_SOURCE_RATE:
        return (f"sample rate {source_sr} Hz must be between {MIN_SOURCE_RATE} and "
                f"{MAX_SOURCE_RATE} Hz")
    return None


def _explain(path: Path, exc: Exception) -> str:
    """Why ``path`` failed to decode, in words: the file itself is inspected for a better reason."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError as err:
        return f"cannot read ({err.strerror})"
    if not head:
        return "file is empty (0 bytes)"
    fmt = _wav_fmt(head)
    if fmt and _header_problem(*fmt):
        return _header_problem(*fmt)
    if _is_text(head):
        kind = "HTML" if head.lstrip()[:1] == b"<" else "text"
        return f"not an audio file (it holds {kind})"
    reason = getattr(exc, "error_string", None) or str(exc).strip() or type(exc).__name__
    return f"cannot decode audio ({reason.splitlines()[0].rstrip('.')})"


def _wav_fmt(head: bytes) -> tuple[int, int] | None:
    """(sample rate, channels) from a RIFF/WAVE header's fmt chunk, or None if there is none."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 16 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt ":
            channels, source_sr = struct.unpack_from("<HI", head, pos + 10)
            return source_sr, channels
        pos += 8 + size + (size & 1)
    return None


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the block
            return False
        text = head[:exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _to_mono(name: str, data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): clean each channel, then mix without cancellation."""
    data = _clean(name, data)

    # Leave silent channels out: a dead channel would only halve the level.
    energy = np.mean(np.square(data, dtype=np.float64), axis=0)
    live = energy >= SILENCE_RMS**2
    if not live.any():
        if not energy.any():
            raise TexsynthError(f"{name}: input is silent (all samples are zero)")
        level = 10 * math.log10(float(energy.max()))
        raise TexsynthError(f"{name}: input is silent (RMS {level:.0f} dBFS, below -100 dBFS)")
    data, energy = data[:, live], energy[live]

    # Channels in opposite phase cancel in the average (L = -R gives silence): take the
    # loudest alone instead. An uncorrelated mix keeps 1/channels of the mean energy.
    y = data.mean(axis=1, dtype=np.float64)
    if np.mean(y**2) < CANCEL_RATIO * energy.mean() / data.shape[1]:
        loudest = int(np.argmax(energy))
        log.warning("%s: channels cancel when averaged (opposite phase); using channel %d alone",
                    name, int(np.flatnonzero(live)[loudest]) + 1)
        y = data[:, loudest]
    return y.astype(np.float32)


def _clean(name: str, data: np.ndarray) -> np.ndarray:
    """Zero non-finite samples, scale peaks beyond full scale down, remove DC per channel.

    Works in place (an excerpt can be hundreds of megabytes) and returns ``data``.
    """
    broken = ~np.isfinite(data)
    if broken.any():
        if broken.all():
            raise TexsynthError(f"{name}: no finite samples (all NaN or Inf)")
        log.warning("%s: %d non-finite samples (NaN or Inf) set to zero", name, int(broken.sum()))
        data[broken] = 0
    del broken

    # Scale before anything else: float files may hold values near 3e38, which overflow sums.
    peak = float(np.abs(data).max())
    if peak > 1:
        (log.warning if peak > OVERSHOOT else log.debug)(
            "%s: samples reach %.3g, beyond full scale; scaled down to peak 1.0", name, peak)
        data /= np.float32(peak)

    # A DC offset carries no texture and wastes headroom.
    nonzero = bool(data.any())
    data -= data.mean(axis=0, dtype=np.float64).astype(np.float32)
    if nonzero and not data.any():
        raise TexsynthError(f"{name}: input is constant (a DC offset and no sound)")
    return data


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr (through librosa); a no-op at equal rates."""
    if orig_sr == target_sr:
        return y
    import librosa

    y = librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")
    return y.astype(np.float32)


def output_format(path) -> str:
    """The soundfile format for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise TexsynthError(f"{path}: output extension '{ext}' must be one of {allowed}")
    return FORMATS[ext]


def check_writable(path) -> None:
    """Fail early, before any long computation, if ``path`` cannot be written.

    The folder is probed by creating (and removing) a temporary file in it, which also catches
    read-only file systems and access rules that permission bits do not show.
    """
    path = Path(path)
    output_format(path)
    folder = path.parent
    if path.is_dir():
        raise TexsynthError(f"{path}: output path is a directory")
    if not folder.exists():
        raise TexsynthError(f"{path}: output folder {folder} does not exist")
    if not folder.is_dir():
        raise TexsynthError(f"{path}: output folder {folder} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise TexsynthError(f"{path}: output file is not writable")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TexsynthError(f"{path}: output folder {folder} is not writable "
                            f"({exc.strerror})") from None


def write_atomically(path, write, *, mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, then rename it to ``path``.

    The file appears whole or not at all: an error or Ctrl-C leaves neither a partial output nor
    the temporary file behind.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, RuntimeError)):
            reason = getattr(exc, "strerror", None) or str(exc)
            raise TexsynthError(f"{path}: cannot write ({reason})") from None
        raise


def output_subtype(path, subtype: str) -> str:
    """The sample format to write ``path`` in: ``subtype``, except Ogg, which is always Vorbis.

    Raises `TexsynthError` when the container cannot hold ``subtype`` (e.g. FLAC and FLOAT).
    """
    fmt = output_format(path)
    if fmt == "OGG":
        return "VORBIS"
    if not sf.check_format(fmt, subtype):
        allowed = ", ".join(s for s in ("PCM_16", "PCM_24", "PCM_32", "FLOAT") if sf.check_format(fmt, s))
        raise TexsynthError(f"{path}: subtype={subtype} must be one of {allowed} for {fmt} files")
    return subtype


def write_audio(path, y: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> None:
    """Write ``y`` to ``path`` atomically (see `write_atomically`); never NaN or silence."""
    path = Path(path)
    fmt = output_format(path)
    subtype = output_subtype(path, subtype)
    if not np.all(np.isfinite(y)):
        raise TexsynthError(f"{path}: refusing to write non-finite audio")
    if not np.any(y):
        raise TexsynthError(f"{path}: refusing to write silent audio")
    write_atomically(path, lambda handle: sf.write(handle, y, sr, subtype=subtype, format=fmt))


def match_level(y: np.ndarray, reference_rms: float, *, peak: float = 0.98) -> np.ndarray:
    """Scale ``y`` to ``reference_rms``, limiting peaks softly so nothing clips.

    Samples above a knee are compressed with tanh towards ``peak`` instead of being clipped;
    scaling and limiting alternate a few times so the limited result still has the reference
    RMS (within a fraction of a dB unless the reference itself is near full scale).
    """
    y = np.asarray(y, dtype=np.float64)
    knee = 0.8 * peak
    for _ in range(6):
        y = y * (reference_rms / max(float(np.sqrt(np.mean(y**2))), 1e-12))
        over = np.abs(y) > knee
        if not over.any():
            break
        mag = np.abs(y[over])
        y[over] = np.sign(y[over]) * (knee + (peak - knee) * np.tanh((mag - knee) / (peak - knee)))
    return y.astype(np.float32)


def seconds_to_samples(seconds: float, sr: int) -> int:
    return int(math.floor(seconds * sr + 0.5))

"""One input file to one output file, with the checks that keep user data safe."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from . import __version__
from .audio import check_writable, load_audio, write_audio
from .errors import TexsynthError
from .settings import Settings, validate
from .synth import pick_device, synthesize

MAX_DURATION = 3600.0  # seconds of output in one file


def sidecar_path(output) -> Path:
    """Where the JSON record of an output goes: ``out.wav`` -> ``out.wav.json``."""
    return Path(f"{output}.json")


def check_paths(input_path, output_path, *, overwrite: bool = False) -> None:
    """Refuse an output that is the input, exists without ``overwrite``, or cannot be written."""
    src, dst = Path(input_path), Path(output_path)
    if dst.exists() or dst.is_symlink():
        if src.exists() and os.path.realpath(dst) == os.path.realpath(src):
            raise TexsynthError(f"{dst}: output path is the input file; choose another output")
        if not overwrite:
            raise TexsynthError(f"{dst}: output exists (use --overwrite to replace it)")
    check_writable(dst)


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def synthesize_file(input_path, output_path, *, settings: Settings | None = None,
                    duration: float | None = None, seed: int = 0, device: str = "auto",
                    overwrite: bool = False, preset: str | None = None, progress=None) -> dict:
    """Synthesise ``output_path`` from ``input_path`` and write its JSON sidecar beside it.

    Returns the sidecar's record: version, input path and SHA-256, effective settings, seed,
    device, durations and wall time. Raises `TexsynthError` for bad input or paths; the input
    is only ever opened for reading, and the output appears whole or not at all.
    """
    start = time.perf_counter()
    s = validate(settings or Settings())
    if duration is not None and not 0 < duration <= MAX_DURATION:
        raise TexsynthError(f"duration={duration} must be between 0 and {MAX_DURATION:g} seconds")
    check_paths(input_path, output_path, overwrite=overwrite)
    dev = pick_device(device)

    rec = load_audio(input_path, s.sample_rate, max_seconds=s.max_input_seconds)
    y = synthesize(rec.y, rec.sr, duration=duration if duration is not None else rec.seconds,
                   seed=seed, settings=s, device=str(dev), progress=progress)
    write_audio(output_path, y, rec.sr, subtype=s.subtype)

    record = {
        "texsynth": __version__,
        "input": str(input_path),
        "input_sha256": file_digest(input_path),
        "input_seconds_analysed": round(rec.seconds, 3),
        "input_truncated": rec.truncated,
        "output": str(output_path),
        "output_seconds": round(y.size / rec.sr, 3),
        "sample_rate": rec.sr,
        "seed": seed,
        "preset": preset,
        "settings": s.to_dict(),
        "device": str(dev),
        "torch": _torch_version(),
        "python": platform.python_version(),
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    write_json(sidecar_path(output_path), record)
    return record


def _torch_version() -> str:
    import torch

    return torch.__version__


def write_json(path, record: dict) -> None:
    """Write JSON atomically (temporary file in the same folder, then a rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

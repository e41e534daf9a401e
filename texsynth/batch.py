"""Many inputs to a mirrored tree of outputs; one failure never stops the rest."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .api import synthesize_file
from .errors import TexsynthError

log = logging.getLogger(__name__)

# Extensions read as audio in a folder; anything else there is skipped quietly.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".caf", ".w64", ".rf64", ".opus"}


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list = field(default_factory=list)  # (input, reason)

    def line(self) -> str:
        return (f"{self.done} done, {self.skipped} skipped, {self.failed} failed; "
                f"{self.audio_seconds:.1f} s of audio in {self.wall_seconds:.1f} s")


def plan(inputs, out_dir, *, suffix: str = ".wav") -> list[Job]:
    """Jobs for every audio file under ``inputs`` (files or folders), sorted, tree mirrored.

    A file named directly is taken whatever its extension; inside folders only known audio
    extensions are. ``inputs/a/b.flac`` becomes ``out_dir/a/b.wav`` for the folder ``inputs``.
    An output folder inside an input folder is not searched, so a second run does not take
    the first run's outputs for inputs.
    """
    out_dir = Path(out_dir)
    out_real = out_dir.resolve()
    jobs = []
    for root in map(Path, inputs):
        if root.is_dir():
            root_real = root.resolve()
            inside = out_real != root_real and out_real.is_relative_to(root_real)
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
                           and (p.is_file() or p.is_symlink())
                           and not (inside and p.parent.resolve().is_relative_to(out_real)))
            jobs += [Job(p, out_dir / p.relative_to(root).with_suffix(suffix)) for p in files]
        else:
            jobs.append(Job(root, out_dir / (root.stem + suffix)))
    return jobs


def _run_one(job: Job, kwargs: dict, threads: int) -> float:
    """Worker body: returns the output's length in seconds."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    record = synthesize_file(job.input, job.output, **kwargs)
    return record["output_seconds"]


def run(jobs: list[Job], *, overwrite: bool = False, jobs_parallel: int = 1, report=print,
        file_progress=None, threads: int | None = None, **kwargs) -> Summary:
    """Synthesise every job; report one line per skipped or failed file and return a summary.

    ``kwargs`` go to `texsynth.api.synthesize_file`. With ``jobs_parallel > 1`` files run in
    worker processes that split the CPU cores between them.
    """
    start = time.perf_counter()
    summary = Summary()
    todo, seen = [], set()
    for job in jobs:
        key = os.path.realpath(job.output)
        if key in seen:
            summary.failed += 1
            summary.failures.append((job.input, "another input maps to the same output"))
            report(f"failed: {job.input}: another input maps to the same output {job.output}")
        elif (job.output.exists() or job.output.is_symlink()) and not overwrite:
            seen.add(key)  # a later input with the same output still fails, on every run
            summary.skipped += 1
            report(f"skipped: {job.output} exists (use --overwrite to replace it)")
        else:
            seen.add(key)
            todo.append(job)

    def finished(job, result):
        """Count one job; ``result`` is its output seconds, or a zero-argument callable that
        re-raises what went wrong."""
        try:
            seconds = result()
        except Exception as exc:  # noqa: BLE001 - report and go on
            log.debug("failure on %s", job.input, exc_info=True)
            error = str(exc) if isinstance(exc, TexsynthError) else f"{job.input}: {type(exc).__name__}: {exc}"
            summary.failed += 1
            summary.failures.append((job.input, error))
            report(f"failed: {error}")
            return
        summary.done += 1
        summary.audio_seconds += seconds

    kwargs = dict(kwargs, overwrite=overwrite)
    if jobs_parallel <= 1:
        for index, job in enumerate(todo):
            progress = file_progress(index, len(todo), job) if file_progress else None
            finished(job, lambda: _run_one(job, dict(kwargs, progress=progress), 0))
            if file_progress:
                file_progress(index + 1, len(todo), job, done=True)
    else:
        threads = threads or max(1, (os.cpu_count() or 1) // jobs_parallel)
        with ProcessPoolExecutor(max_workers=jobs_parallel) as pool:
            futures = {pool.submit(_run_one, job, kwargs, threads): job for job in todo}
            for index, future in enumerate(as_completed(futures)):
                job = futures[future]
                finished(job, future.result)
                if file_progress:
                    file_progress(index + 1, len(todo), job, done=True)
    summary.wall_seconds = time.perf_counter() - start
    return summary

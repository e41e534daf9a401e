"""Command line: ``texsynth INPUT -o OUTPUT`` and ``texsynth DIR ... -o OUTDIR``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click

from . import __version__, presets
from .errors import TexsynthError
from .settings import SUBTYPES, Settings, parse_assignment

log = logging.getLogger("texsynth")


class Progress:
    """Progress for one run: tqdm bars on a terminal, a compact line per file elsewhere."""

    def __init__(self, quiet: bool, steps: int, polish_steps: int = 0):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.batch = None
        self.parallel = False
        self.bar = None
        self.note = ""
        self._plan(steps, polish_steps)

    def _plan(self, steps: int, polish_steps: int):
        self.steps = steps + polish_steps
        self.plan = f"{steps} steps" + (f" + {polish_steps} waveform polish" if polish_steps else "")

    def chosen(self, preset: str | None, settings: Settings, *, kind: str | None = None):
        """The settings a file is synthesised with, once known; ``kind`` says why ``preset``
        was chosen for this input, None when it is the one asked for."""
        self._plan(settings.steps, settings.refine_steps)
        why = {"repeats": "the input repeats", "tonal": "the input is tonal"}.get(kind, kind)
        self.note = f"{why}: {preset} preset, " if kind else ""
        if self.bar is not None:
            self.bar.total = self.steps
            if kind:
                self.bar.set_description_str(f"{self.bar.desc} ({preset})", refresh=False)

    def start_batch(self, total: int, *, parallel: bool = False):
        self.parallel = parallel
        if not self.quiet and self.tty:
            from tqdm import tqdm

            self.batch = tqdm(total=total, unit="file", desc="batch", position=0, dynamic_ncols=True)

    def file(self, index: int, total: int, job, done: bool = False):
        """A callback for one file's loss evaluations (``None`` when quiet)."""
        if self.batch is not None and done:
            self.batch.update(1)
        if done and self.parallel and not (self.quiet or self.tty):
            # Files in parallel finish in any order: a line as each one ends.
            click.echo(f"[{index}/{total}] finished {job.input}", err=True)
        if self.quiet or done:
            return None
        if not self.tty:
            click.echo(f"[{index + 1}/{total}] {job.input} -> {job.output}", err=True)
            return None
        return self._bar(f"{Path(job.input).name}", position=1 if self.batch is not None else 0)

    def single(self, name: str):
        if self.quiet:
            return None
        if not self.tty:
            def announce(step: int, loss: float, parts: dict):
                if step == 1:  # only once the input has been read and measured
                    click.echo(f"{name}: synthesising ({self.note}{self.plan})", err=True)
            return announce
        return self._bar(name, position=0)

    def _bar(self, name: str, position: int):
        from tqdm import tqdm

        bar = tqdm(total=self.steps, unit="step", desc=name, position=position, leave=position == 0,
                   dynamic_ncols=True)
        self.bar = bar

        def update(step: int, loss: float, parts: dict):
            bar.update(step - bar.n)
            bar.set_postfix_str(f"loss {loss:.3g}", refresh=False)
            if step >= self.steps:
                bar.close()
        return update

    def close(self):
        if self.batch is not None:
            self.batch.close()


def _list_presets(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    for name, description in presets.available().items():
        click.echo(f"{name:12s} {description}")
    ctx.exit(0)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=str),
              help="Output file (one input) or folder (several inputs or a folder).")
@click.option("--duration", type=float, default=None,
              help="Output length in seconds  [default: the input's length]")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, help="Random seed: same seed and input, same output.")
@click.option("--preset", default=presets.DEFAULT, show_default=False,
              help="Preset name (see --list-presets) or a .toml file. Without --preset, an input that "
                   "repeats (a loop, a beat) gets rhythmic and a tonal one (hum, drone) pitched.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override one setting, e.g. --set steps=200 (repeatable).")
@click.option("--steps", type=click.IntRange(0, 100000), default=None, help="Optimiser steps  [default: from the preset]")
@click.option("--subtype", type=click.Choice(SUBTYPES), default=None,
              help="Output sample format  [default: PCM_16]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where to compute; auto picks CUDA when available.")
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (never an input).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1,
              help="Files synthesised in parallel in a batch.")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="CPU threads for one file  [default: all cores, split between --jobs]")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--show-settings", is_flag=True,
              help="Print the settings of the preset (the default when none is named) with --set applied, "
                   "as TOML, and exit. The sidecar records those an input actually got.")
@click.option("--debug", is_flag=True, help="Show tracebacks and diagnostics.")
@click.option("--list-presets", is_flag=True, expose_value=False, is_eager=True, callback=_list_presets,
              help="List the presets with what each is for, and exit.")
@click.version_option(__version__, prog_name="texsynth")
def cli(inputs, output, duration, seed, preset, assignments, steps, subtype, device, overwrite,
        jobs, threads, quiet, show_settings, debug):
    """Synthesise new audio with the texture of INPUTS (audio files or folders).

    One input file: OUTPUT is the file to write (.wav, .flac, .ogg or .aiff). Folders or
    several inputs: OUTPUT is a folder; every audio file found is synthesised into it, the
    sub-folder tree mirrored, as .wav. Each output gets a JSON sidecar (OUTPUT.json) recording
    the settings that reproduce it.

    Output is written at the working sample rate: 16000 Hz unless a preset sets sample_rate
    (the hq preset works at the input's own rate, up to 48000 Hz).
    """
    logging.basicConfig(format="texsynth: %(levelname)s: %(message)s", level=logging.WARNING)
    if debug:  # texsynth's own diagnostics only, not those of every library it imports
        log.setLevel(logging.DEBUG)
    overrides = dict(parse_assignment(a) for a in assignments)
    if steps is not None:
        overrides["steps"] = steps
    if subtype is not None:
        overrides["subtype"] = subtype
    settings = presets.load(preset, overrides)
    if show_settings:
        click.echo(presets.to_toml(settings), nl=False)
        return 0
    if not inputs:
        raise click.UsageError("no INPUTS given")
    if output is None:
        raise click.UsageError("-o/--output is required")
    if not output.strip():
        raise click.UsageError("-o/--output must not be empty")
    names_folder = output.endswith(("/", "\\"))
    output = Path(output)

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    batch = len(inputs) > 1 or inputs[0].is_dir() or output.is_dir() or names_folder
    kwargs = dict(settings=settings, duration=duration, seed=seed, device=device,
                  preset=preset)
    if click.get_current_context().get_parameter_source("preset") == click.core.ParameterSource.DEFAULT:
        kwargs["kind_presets"] = presets.by_kind(overrides)
    progress = Progress(quiet, settings.steps, settings.refine_steps)

    def chosen(name, used, kind):
        progress.chosen(name, used, kind=kind if name != preset else None)

    if not batch:
        from .api import synthesize_file

        record = synthesize_file(inputs[0], output, overwrite=overwrite, on_settings=chosen,
                                 progress=progress.single(inputs[0].name), **kwargs)
        if not quiet:
            click.echo(f"wrote {output} ({record['output_seconds']:.4g} s at {record['sample_rate']} Hz) "
                       f"in {record['wall_seconds']:.1f} s", err=True)
        return 0
    if jobs == 1:  # workers in other processes cannot report back
        kwargs["on_settings"] = chosen
    return _batch(inputs, output, overwrite, jobs, quiet, progress, dict(kwargs, threads=threads))


def _batch(inputs, output: Path, overwrite, jobs, quiet, progress, kwargs) -> int:
    from . import batch

    for path in inputs:
        if not path.exists():
            raise TexsynthError(f"{path}: no such file or folder")
    if (output.exists() and not output.is_dir()) or (
            not output.exists() and output.suffix.lower() in batch.AUDIO_EXTENSIONS):
        folders = [str(p) for p in inputs if p.is_dir()]
        why = f"{folders[0]} is a folder" if folders else "there are several inputs"
        raise TexsynthError(f"{output}: output must be a folder when {why}")
    jobs_list = batch.plan(inputs, output)
    if not jobs_list:
        raise TexsynthError(f"{', '.join(map(str, inputs))}: no audio files found")
    output.mkdir(parents=True, exist_ok=True)
    progress.start_batch(len(jobs_list), parallel=jobs > 1)
    report = (lambda line: click.echo(line, err=True))
    try:
        summary = batch.run(jobs_list, overwrite=overwrite, jobs_parallel=jobs, report=report,
                            file_progress=progress.file, **kwargs)
    finally:
        progress.close()
    click.echo(f"texsynth: {summary.line()}", err=True)
    return 1 if summary.failed else 0


def main(argv=None) -> int:
    """Entry point: one-line errors, exit 1 for bad input, 2 for bad usage, 130 on Ctrl-C."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    # After "--" every word is an input, so "texsynth -- -x.wav -o out.wav" names no output.
    if "--" in args:
        split = args.index("--")
        named = any(a.startswith(("-o", "--output")) for a in args[:split])
        if not named and {"-o", "--output"} & set(args[split:]):
            click.echo("texsynth: error: -o after '--' is read as an input file; put options "
                       "first: texsynth -o OUTPUT -- INPUT", err=True)
            return 2
    try:
        code = cli.main(args=args, prog_name="texsynth", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("texsynth: interrupted", err=True)
        return 130
    except TexsynthError as exc:
        if debug:
            raise
        click.echo(f"texsynth: error: {exc}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        click.echo(f"texsynth: internal error: {type(exc).__name__}: {first_line} (rerun with --debug)",
                   err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())

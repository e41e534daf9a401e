"""Quality table: run texsynth over recordings and score each output independently.

    python benchmarks/quality.py FILE_OR_DIR ... [--preset default] [--set key=value]
                                 [--duration 10] [--seed 0] [--pair] [--out DIR] [--json FILE]

For every input: fidelity, copying and local copying (each beside the input's own excerpt
figure), rhythm and level from the texture-statistics instrument ``texstats.py`` (found at
``../shared/eval/texstats.py`` beside the repository, or ``--texstats PATH``), the fraction
of the input's spectral peaks the output keeps, and the wall time. With ``--pair`` a second
output from the next seed is made and ``seeds`` is how alike the two are (the instrument's
copying measure between them), to read beside the input's own excerpt figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.signal

from texsynth import presets
from texsynth.api import synthesize_file
from texsynth.audio import load_audio
from texsynth.batch import plan
from texsynth.settings import parse_assignment

DEFAULT_TEXSTATS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "texstats.py"
PEAK_SR = 16000
PEAK_NFFT = 8192  # ~2 Hz bins: resolves individual partials


def load_texstats(path: Path):
    spec = importlib.util.spec_from_file_location("texstats", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def long_term_db(y: np.ndarray) -> np.ndarray:
    _, spectrum = scipy.signal.welch(y, PEAK_SR, nperseg=PEAK_NFFT)
    return 10 * np.log10(spectrum + 1e-20)


def peaks_kept(input_path, output_path, *, prominence_db: float = 15.0, tolerance: int = 3) -> float | None:
    """Fraction of the input's prominent long-term spectral peaks that the output keeps.

    A peak is kept when the output's long-term spectrum has a peak within ``tolerance`` bins
    (about 6 Hz) whose prominence is at least half the input's. None when the input has no
    prominent peak (a noise-like texture).
    """
    ref = long_term_db(load_audio(input_path, PEAK_SR).y)
    out = long_term_db(load_audio(output_path, PEAK_SR).y)
    ref_peaks, ref_props = scipy.signal.find_peaks(ref, prominence=prominence_db)
    if len(ref_peaks) == 0:
        return None
    out_peaks, out_props = scipy.signal.find_peaks(out, prominence=prominence_db / 2)
    kept = 0
    for peak, prom in zip(ref_peaks, ref_props["prominences"]):
        near = np.abs(out_peaks - peak) <= tolerance
        kept += bool(near.any() and out_props["prominences"][near].max() >= prom / 2)
    return kept / len(ref_peaks)


def score(texstats, input_path, output_path) -> dict:
    report = texstats.evaluate(str(input_path), str(output_path))
    keys = ("fidelity", "copying", "copying_excerpt", "local_copying", "local_copying_excerpt",
            "rhythm", "level_db")
    row = {k: report.get(k) for k in keys}
    row["peaks_kept"] = peaks_kept(input_path, output_path)
    row["per_class_db"] = report.get("per_class_db")  # statistics SNR by class, for the JSON
    return row


def seed_similarity(texstats, a, b) -> float:
    """The instrument's copying measure between two outputs: near 1 when one repeats the other."""
    return round(texstats.max_xcorr(texstats.logmel(texstats.load(str(a))),
                                    texstats.logmel(texstats.load(str(b)))), 3)


def fmt(value, width=7):
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.3f}" if isinstance(value, float) else f"{value!s:>{width}}"


def run_one(job, settings, kinds, args) -> dict:
    """Synthesise one input (and, with ``--pair``, a second seed) and score it."""
    texstats = load_texstats(args.texstats)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    common = dict(settings=settings, duration=args.duration, device="cpu", overwrite=True,
                  preset=args.preset or presets.DEFAULT, kind_presets=kinds)
    record = synthesize_file(job.input, job.output, seed=args.seed, **common)
    row = {"file": job.input.name, "preset": record["preset"],
           "seconds": round(time.perf_counter() - start, 1), **score(texstats, job.input, job.output)}
    if args.pair:
        other = job.output.with_name(job.output.stem + f"-seed{args.seed + 1}.wav")
        synthesize_file(job.input, other, seed=args.seed + 1, **common)
        row["seeds"] = seed_similarity(texstats, job.output, other)
    return row


def _one_thread():
    import torch

    torch.set_num_threads(1)


def format_row(row, pair: bool) -> str:
    return (f"{row['file'][:15]:<16}{fmt(row['fidelity'], 9)}{fmt(row['copying'], 9)}"
            f"{fmt(row['copying_excerpt'], 9)}{fmt(row['local_copying'])}{fmt(row['local_copying_excerpt'], 9)}"
            f"{fmt(row['rhythm'], 8)}{fmt(row['peaks_kept'])}{fmt(row['level_db'])}{row['seconds']:>8.1f}"
            + (fmt(row.get("seeds")) if pair else "") + f"  {row['preset']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--preset", default=None,
                        help="as texsynth --preset; none: by kind of input, as on the command line")
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pair", action="store_true", help="also score two seeds against each other")
    parser.add_argument("--jobs", type=int, default=1, help="files at a time, one torch thread each when > 1")
    parser.add_argument("--out", type=Path, default=Path("quality-out"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--texstats", type=Path, default=DEFAULT_TEXSTATS)
    args = parser.parse_args(argv)

    overrides = dict(map(parse_assignment, args.assignments))
    settings = presets.load(args.preset or presets.DEFAULT, overrides)
    # As on the command line: with no preset named, loops and tonal inputs get their own.
    kinds = presets.by_kind(overrides) if args.preset is None else None
    header = (f"{'file':<16}{'fidelity':>9}{'copying':>9}{'(excpt)':>9}{'local':>7}{'(excpt)':>9}"
              f"{'rhythm':>8}{'peaks':>7}{'level':>7}{'time s':>8}" + (f"{'seeds':>7}" if args.pair else "")
              + "  preset")
    named = args.preset or f"{presets.DEFAULT} (or by kind of input: {presets.BY_KIND})"
    print(f"preset={named} {' '.join(args.assignments)} duration={args.duration} seed={args.seed}")
    print(header, flush=True)
    jobs = [job for root in args.inputs for job in plan([root], args.out / (args.preset or "auto") / root.name)]
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, initializer=_one_thread) as pool:
            futures = [pool.submit(run_one, job, settings, kinds, args) for job in jobs]
            rows = []
            for future in futures:
                rows.append(future.result())
                print(format_row(rows[-1], args.pair), flush=True)
    else:
        rows = []
        for job in jobs:
            rows.append(run_one(job, settings, kinds, args))
            print(format_row(rows[-1], args.pair), flush=True)
    fidelities = [r["fidelity"] for r in rows if r["fidelity"] is not None]
    if fidelities:
        print(f"mean fidelity {np.mean(fidelities):.3f} over {len(fidelities)} files; "
              f"mean local copying over excerpt {np.mean([r['local_copying'] - r['local_copying_excerpt'] for r in rows]):+.3f}")
    if args.json:
        args.json.write_text(json.dumps({"preset": named, "set": args.assignments, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

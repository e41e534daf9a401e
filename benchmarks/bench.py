"""Speed, memory and quality of texsynth's presets, and a Griffin-Lim micro-benchmark.

    python benchmarks/bench.py [--input FILE] [--duration 10] [--presets default fast]
                               [--no-baseline] [--no-griffin-lim] [--threads 1]
                               [--device cpu] [--json out.json]

Everything runs in one process on one input. For each preset: wall time per stage (load and
resample, target statistics, optimisation with the mean time per loss evaluation,
Griffin-Lim, write), peak resident memory, and fidelity / local copying from the independent
instrument ``texstats.py`` (``../shared/eval/texstats.py`` beside the repository; "n/a"
without it). Beside them a baseline, the default preset with ``max_taps=0`` (direct
convolution at every width, no time pooling), and the speed-up over it.

The Griffin-Lim section times one iteration of `texsynth.spectral.griffin_lim`, of
``librosa.griffinlim`` and of one STFT + inverse STFT pair (texsynth's and torch's), and
reports the spectral convergence after 32 / 100 / 300 iterations, on a synthetic mix of
chirps, clicks, tones and noise at 22.05 kHz (n_fft 1024, hop 256, one thread) as long as
the output (10 s by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from texsynth import presets, spectral
from texsynth.audio import load_audio, match_level, seconds_to_samples, write_audio
from texsynth.resolution import resolve
from texsynth.synth import ANALYSIS_RMS, TextureModel, pick_device, refine_waveform, spectral_synthesis

ROOT = Path(__file__).resolve().parents[1]
SHARED_INPUT = ROOT.parent / "shared" / "real" / "campfire.ogg"
DEFAULT_INPUT = SHARED_INPUT if SHARED_INPUT.exists() else ROOT / "samples" / "campfire.ogg"
TEXSTATS = ROOT.parent / "shared" / "eval" / "texstats.py"
STAGES = ("load", "measure", "optimise", "griffin_lim", "refine", "write")

GL_SR = 22050  # Hz
GL_N_FFT = 1024
GL_HOP = 256
GL_ITERS = (32, 100, 300)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def stage(laps: dict, name: str):
    """Time the body into ``laps[name]``, seconds."""
    start = time.perf_counter()
    yield
    laps[name] = time.perf_counter() - start


def run_preset(settings, input_path: Path, duration: float, out_path: Path, *, seed: int,
               device: torch.device) -> dict:
    """One synthesis, stage by stage, as `texsynth.synth.synthesize` runs it."""
    laps, evaluations = {}, []
    with stage(laps, "load"):
        rec = load_audio(input_path, settings.sample_rate, max_seconds=settings.max_input_seconds)
        settings = resolve(settings, rec.y, rec.sr)
    with stage(laps, "measure"):
        rms = float(np.sqrt(np.mean(rec.y.astype(np.float64) ** 2)))
        model = TextureModel(settings, seed=seed, device=device)
        target = model.measure(torch.from_numpy(rec.y * np.float32(ANALYSIS_RMS / rms)).to(device))
    length = seconds_to_samples(duration, rec.sr)
    with stage(laps, "optimise"):
        S = spectral_synthesis(model, target, spectral.n_frames(length, settings.hop_length), length,
                               seed=seed, progress=lambda step, value, parts: evaluations.append(value))
    loss = evaluations[-1] if evaluations else float("nan")
    with stage(laps, "griffin_lim"):
        y = spectral.griffin_lim(S, n_fft=settings.n_fft, hop_length=settings.hop_length,
                                 length=length, n_iter=settings.griffin_lim_iters,
                                 momentum=settings.momentum, init=settings.phase_init,
                                 generator=torch.Generator().manual_seed(seed))
    sc = spectral.spectral_convergence(S, y, settings.n_fft, settings.hop_length)
    with stage(laps, "refine"):
        if settings.refine_steps:
            y = refine_waveform(model, target, y, steps=settings.refine_steps)
    y = y.cpu()
    with stage(laps, "write"):
        write_audio(out_path, match_level(y.numpy().astype(np.float64), rms), rec.sr,
                    subtype=settings.subtype)
    return {
        "seconds": laps,
        "total_s": sum(laps.values()),
        "output_s": length / rec.sr,
        "evaluations": len(evaluations),
        "ms_per_evaluation": 1e3 * laps["optimise"] / max(len(evaluations), 1),
        "final_loss": loss,
        "griffin_lim_sc": sc,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
    }


def warm_up(settings, input_path: Path, device: torch.device) -> None:
    """Pay one-time costs (lazy imports, resampler and FFT set-up) outside the timed stages,
    so that the first preset is not charged for them."""
    rec = load_audio(input_path, settings.sample_rate, max_seconds=settings.max_input_seconds)
    settings = resolve(settings, rec.y, rec.sr)
    y = torch.from_numpy(rec.y[:2 * rec.sr]).to(device)
    TextureModel(settings, seed=0, device=device).measure(y)


def load_texstats():
    """The outside quality instrument as a module, or None when it is not installed here."""
    if not TEXSTATS.exists():
        return None
    spec = importlib.util.spec_from_file_location("texstats", TEXSTATS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quality(texstats, input_path: Path, out_path: Path) -> dict:
    if texstats is None:
        return {"fidelity": None, "local_copying": None}
    report = texstats.evaluate(str(input_path), str(out_path))
    return {key: report.get(key) for key in ("fidelity", "local_copying", "local_copying_excerpt")}


def synthetic_mix(seconds: float, sr: int = GL_SR, seed: int = 0) -> np.ndarray:
    """Crossing linear chirps, three steady tones, sparse clicks and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 * t + 0.5 * 3800 / seconds * t**2))
    y += 0.2 * np.sin(2 * np.pi * (3000 * t - 0.5 * 2500 / seconds * t**2))
    for freq, amp in ((440, 0.2), (1320, 0.1), (2750, 0.05)):
        y += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    clicks = rng.choice(t.size, int(4 * seconds), replace=False)
    y[clicks] += rng.choice([-1, 1], clicks.size) * rng.uniform(0.5, 1.0, clicks.size)
    y += 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def per_iteration_ms(run, pair, rounds: int = 5, k: int = 10) -> tuple[float, float]:
    """ms per iteration of ``run(n_iter)`` and per call of ``pair()``, measured in alternation.

    Each round times ``k`` pairs, ``run(k)`` and ``run(1)``; the difference of the last two
    leaves out set-up and the final inverse. The fastest round of each counts: it is the one
    least disturbed by other work on the machine.
    """
    run(1), pair()
    iteration, pairs = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(k):
            pair()
        pairs.append((time.perf_counter() - start) / k)
        start = time.perf_counter()
        run(k + 1)
        middle = time.perf_counter()
        run(1)
        iteration.append(((middle - start) - (time.perf_counter() - middle)) / k)
    return 1e3 * min(iteration), 1e3 * min(pairs)


def griffin_lim_bench(seconds: float) -> dict:
    """ms per iteration and spectral convergence: ours (PGHI and random start) and librosa's."""
    import librosa

    y = torch.from_numpy(synthetic_mix(seconds))
    n = y.numel()
    D = spectral.stft(y, GL_N_FFT, GL_HOP)
    S = D.abs()
    window = torch.hann_window(GL_N_FFT)

    def ours(init):
        return lambda k: spectral.griffin_lim(
            S, n_fft=GL_N_FFT, hop_length=GL_HOP, length=n, n_iter=k, momentum=0.99, init=init,
            generator=torch.Generator().manual_seed(0))

    def theirs(k):
        return torch.from_numpy(librosa.griffinlim(
            S.numpy(), n_iter=k, hop_length=GL_HOP, n_fft=GL_N_FFT, momentum=0.99, length=n,
            pad_mode="reflect", random_state=0))

    def our_pair():
        spectral.stft(spectral.istft(D, GL_N_FFT, GL_HOP, n), GL_N_FFT, GL_HOP)

    def torch_pair():
        x = torch.istft(D, GL_N_FFT, GL_HOP, window=window, center=True, length=n)
        torch.stft(x, GL_N_FFT, GL_HOP, window=window, center=True, return_complex=True)

    # Ours against its own STFT pair, and librosa against torch's, each pair in alternation.
    timing = {"texsynth": per_iteration_ms(ours("random"), our_pair),
              "librosa": per_iteration_ms(theirs, torch_pair)}
    runs = {"texsynth, pghi": ours("pghi"), "texsynth, random": ours("random"),
            "librosa, random": theirs}
    sc = {name: {k: spectral.spectral_convergence(S, run(k), GL_N_FFT, GL_HOP) for k in GL_ITERS}
          for name, run in runs.items()}
    start = time.perf_counter()
    spectral.pghi_phase(S, GL_N_FFT, GL_HOP)
    return {
        "ms_per_iteration": {"texsynth": timing["texsynth"][0], "librosa": timing["librosa"][0]},
        "pair_ms": {"texsynth stft+istft": timing["texsynth"][1],
                    "torch stft+istft": timing["librosa"][1]},
        "sc": sc,
        "pghi_s": time.perf_counter() - start,
        "signal": {"seconds": seconds, "sr": GL_SR, "n_fft": GL_N_FFT, "hop_length": GL_HOP},
    }


def format_runs(runs: dict) -> str:
    names = list(runs)
    width = max(12, *(len(name) for name in names))
    rows = [("stage (s)", *names)]
    for stage in STAGES:
        rows.append((stage, *(f"{runs[n]['seconds'][stage]:.2f}" for n in names)))
    rows += [
        ("total (s)", *(f"{runs[n]['total_s']:.2f}" for n in names)),
        ("output (s)", *(f"{runs[n]['output_s']:.2f}" for n in names)),
        ("loss evaluations", *(str(runs[n]["evaluations"]) for n in names)),
        ("ms / evaluation", *(f"{runs[n]['ms_per_evaluation']:.1f}" for n in names)),
        ("final loss", *(f"{runs[n]['final_loss']:.4g}" for n in names)),
        ("Griffin-Lim SC", *(f"{runs[n]['griffin_lim_sc']:.3f}" for n in names)),
        ("peak RSS so far (MB)", *(f"{runs[n]['peak_rss_mb']:.0f}" for n in names)),
        ("fidelity", *(fmt(runs[n]["quality"].get("fidelity")) for n in names)),
        ("local copying", *(fmt(runs[n]["quality"].get("local_copying")) for n in names)),
    ]
    first = max(len(row[0]) for row in rows)
    return "\n".join(f"{row[0]:<{first}}  " + "  ".join(f"{c:>{width}}" for c in row[1:])
                     for row in rows)


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_speedups(runs: dict, baseline: str) -> str:
    lines = []
    for name, run in runs.items():
        if name != baseline:
            total = runs[baseline]["total_s"] / run["total_s"]
            per_eval = runs[baseline]["ms_per_evaluation"] / run["ms_per_evaluation"]
            lines.append(f"{name}: {total:.2f}x faster in total than the baseline, "
                         f"{per_eval:.2f}x per loss evaluation")
    return "\n".join(lines)


def format_griffin_lim(result: dict) -> str:
    ms, pair = result["ms_per_iteration"], result["pair_ms"]
    lines = [
        f"ms per iteration: texsynth {ms['texsynth']:.2f}, librosa {ms['librosa']:.2f}",
        "one STFT + inverse STFT: " + ", ".join(f"{k} {v:.2f} ms" for k, v in pair.items()),
        f"texsynth iteration / its STFT pair: {ms['texsynth'] / pair['texsynth stft+istft']:.2f}",
        f"PGHI initial phase: {result['pghi_s']:.3f} s",
        f"{'SC, momentum 0.99':<20}" + "".join(f"{'@' + str(k):>9}" for k in GL_ITERS),
    ]
    for name, sc in result["sc"].items():
        lines.append(f"{name:<20}" + "".join(f"{sc[k]:>9.4f}" for k in GL_ITERS))
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of output, and of the Griffin-Lim test signal")
    parser.add_argument("--presets", nargs="*", default=["default", "fast"],
                        help="preset names or files; none (with --no-baseline): Griffin-Lim only")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the default preset with max_taps=0")
    parser.add_argument("--no-griffin-lim", action="store_true",
                        help="skip the Griffin-Lim micro-benchmark")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: steady timings on a shared machine)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                        help="where the presets run (the Griffin-Lim section is CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every number here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    configs = {name: presets.load(name) for name in args.presets}
    if not args.no_baseline:
        configs["baseline"] = presets.load("default", {"max_taps": 0})
    texstats = load_texstats()
    print(f"input {args.input}, output {args.duration:g} s, {device}, {args.threads} thread(s), "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")

    runs = {}
    if configs:
        warm_up(next(iter(configs.values())), args.input, device)
    with tempfile.TemporaryDirectory() as folder:
        for name, settings in configs.items():
            out_path = Path(folder) / f"{name}.wav"
            runs[name] = run_preset(settings, args.input, args.duration, out_path,
                                    seed=args.seed, device=device)
            runs[name]["quality"] = quality(texstats, args.input, out_path)
            runs[name]["settings"] = settings.to_dict()
    if runs:
        print("\n" + format_runs(runs))
    if "baseline" in runs and len(runs) > 1:
        print("\n" + format_speedups(runs, "baseline"))

    report = {"input": str(args.input), "duration": args.duration, "device": str(device),
              "threads": args.threads,
              "torch": torch.__version__, "runs": runs}
    if not args.no_griffin_lim:
        torch.set_num_threads(1)
        report["griffin_lim"] = griffin_lim_bench(args.duration)
        print(f"\nGriffin-Lim: {args.duration:g} s synthetic mix at {GL_SR} Hz, n_fft {GL_N_FFT}, "
              f"hop {GL_HOP}, one thread\n"
              + format_griffin_lim(report["griffin_lim"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

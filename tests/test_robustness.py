"""The real CLI on bad inputs, paths and runs: one-line refusals, and nothing ever lost.

Every run either writes finite, non-silent, unclipped audio of exactly the asked length, or
exits non-zero with one line on stderr naming the file and the problem.
"""

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from texsynth import api, spectral, synth
from texsynth.cli import main

TINY_PRESET = Path(__file__).parent / "tiny.toml"
SR = 8000  # the tiny preset's working rate, Hz
COMMON = ["-q", "--preset", str(TINY_PRESET), "--steps", "2"]


def noise(seconds: float, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (int(seconds * sr),) if channels == 1 else (int(seconds * sr), channels)
    return np.clip(0.2 * rng.standard_normal(shape), -0.99, 0.99).astype(np.float32)


def cli(capsys, *args) -> tuple[int, str]:
    code = main([*COMMON, *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def refused(capsys, *args, words=(), code=1) -> str:
    """Run the CLI, expect one ``texsynth: error:`` line containing ``words``; return it."""
    rc, err = cli(capsys, *args)
    lines = err.splitlines()
    assert rc == code and len(lines) == 1, err
    assert lines[0].startswith("texsynth: error: ")
    for word in words:
        assert str(word) in lines[0]
    return lines[0]


def synthesised(capsys, *args, output: Path, seconds: float) -> np.ndarray:
    """Run the CLI, expect success and a sane ``output`` of exactly ``seconds``."""
    rc, err = cli(capsys, *args)
    assert rc == 0, err
    y, sr = sf.read(output, dtype="float32")
    assert sr == SR and y.shape == (round(seconds * SR),)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert np.sqrt(np.mean(y**2)) > 1e-3
    assert json.loads(Path(f"{output}.json").read_text())["output_seconds"] == round(seconds, 3)
    assert not [p for p in output.parent.iterdir() if p.name.endswith(".part")]
    return y


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture
def wav(tmp_path) -> Path:
    path = tmp_path / "in.wav"
    sf.write(path, noise(1.0), SR, subtype="PCM_16")
    return path


# Inputs that synthesise.

@pytest.mark.parametrize("name, write", [
    ("flac.wav", lambda p: sf.write(p, noise(1.0), SR, format="FLAC")),
    ("x.mp3", lambda p: sf.write(p, noise(1.0), SR, format="MP3")),
    ("no_extension", lambda p: sf.write(p, noise(1.0), SR, format="WAV")),
    ("six.WAV", lambda p: sf.write(p, noise(1.0, 44056, channels=6), 44056, subtype="PCM_24")),
    ("adpcm.wav", lambda p: sf.write(p, noise(1.0), SR, subtype="IMA_ADPCM")),
    ("inverted.wav", lambda p: sf.write(p, np.stack([noise(1.0), -noise(1.0)], 1), SR)),
    ("square.wav", lambda p: sf.write(p, np.sign(np.sin(np.arange(SR) * 0.3)), SR)),
    ("hot.wav", lambda p: sf.write(p, 5 * noise(1.0) + 0.5, SR, subtype="DOUBLE")),
])
def test_inputs_that_synthesise(tmp_path, capsys, name, write):
    write(tmp_path / name)
    synthesised(capsys, tmp_path / name, "-o", tmp_path / "out.wav", "--duration", 0.7,
                output=tmp_path / "out.wav", seconds=0.7)


def test_phase_inverted_stereo_warns(tmp_path, capsys, caplog):
    sf.write(tmp_path / "in.wav", np.stack([noise(1.0), -noise(1.0)], 1), SR)
    synthesised(capsys, tmp_path / "in.wav", "-o", tmp_path / "out.wav",
                output=tmp_path / "out.wav", seconds=1.0)
    assert "channels cancel when averaged (opposite phase); using channel 1 alone" in caplog.text


def test_input_shorter_than_the_widest_filter(tmp_path, capsys, caplog):
    sf.write(tmp_path / "in.wav", noise(0.3), SR)
    synthesised(capsys, tmp_path / "in.wav", "-o", tmp_path / "out.wav",
                "--set", "widths=[2,4,8,64]", output=tmp_path / "out.wav", seconds=0.3)
    assert "widths 64 left out: they span more than the 0.30 s of input or output" in caplog.text


def test_long_input_is_cut_to_max_input_seconds(tmp_path, capsys, caplog):
    sf.write(tmp_path / "long.wav", noise(3.0), SR)
    out = tmp_path / "out.wav"
    synthesised(capsys, tmp_path / "long.wav", "-o", out, "--set", "max_input_seconds=1",
                output=out, seconds=1.0)
    record = json.loads(Path(f"{out}.json").read_text())
    assert record["input_truncated"] and record["input_seconds_analysed"] == 1.0
    assert "longer than max_input_seconds=1; analysing the first 1 s" in caplog.text


# Inputs that are refused, in one line naming the file.

@pytest.mark.parametrize("name, content, words", [
    ("empty.wav", b"", ["file is empty (0 bytes)"]),
    ("page.wav", b"<html><body>Not Found</body></html>\n", ["not an audio file (it holds HTML)"]),
    ("noise.wav", bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)),
     ["cannot decode audio"]),
    ("rate1.wav", b"RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00"
     b"\x02\x00\x00\x00\x02\x00\x10\x00data\x08\x00\x00\x00" + bytes(8),
     ["sample rate 1 Hz must be between 2000 and 768000 Hz"]),
])
def test_broken_files(tmp_path, capfd, name, content, words):
    """Checked at the file-descriptor level: decoders' own messages must not leak either."""
    (tmp_path / name).write_bytes(content)
    code = main([*COMMON, str(tmp_path / name), "-o", str(tmp_path / "out.wav")])
    err = capfd.readouterr().err
    assert code == 1 and err.count("\n") == 1 and str(tmp_path / name) in err, err
    assert all(word in err for word in words)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("samples, words", [
    (np.zeros(SR), ["input is silent (all samples are zero)"]),
    (np.full(SR, np.nan), ["no finite samples (all NaN or Inf)"]),
    (noise(1.0)[:100], ["length 0.013 s must be at least 0.25 s (it has 100 samples at 8000 Hz)"]),
])
def test_unusable_content(tmp_path, capsys, samples, words):
    sf.write(tmp_path / "in.wav", samples, SR, subtype="FLOAT")
    refused(capsys, tmp_path / "in.wav", "-o", tmp_path / "out.wav",
            words=[tmp_path / "in.wav", *words])


@pytest.mark.parametrize("duration", ["0.01", "nan", "inf", "-1", "4000"])
def test_bad_durations(wav, capsys, duration):
    refused(capsys, wav, "-o", wav.parent / "out.wav", "--duration", duration,
            words=[f"duration={float(duration)} must be between one STFT frame"])


def test_exact_odd_duration(wav, capsys):
    synthesised(capsys, wav, "-o", wav.parent / "out.wav", "--duration", 0.7371,
                output=wav.parent / "out.wav", seconds=0.7371)


# Paths.

def test_awkward_file_names(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = tmp_path / "rain ünïcødé $(touch pwned); `id` & 'q' |.wav"
    sf.write(name, noise(1.0), SR)
    out = tmp_path / "out $HOME ü.flac"
    synthesised(capsys, name, "-o", out, output=out, seconds=1.0)
    assert not (tmp_path / "pwned").exists()


def test_leading_dash(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "-x.wav", noise(1.0), SR)
    synthesised(capsys, "-o", "out.wav", "--", "-x.wav", output=tmp_path / "out.wav", seconds=1.0)
    refused(capsys, "--", "-x.wav", "-o", "other.wav", code=2,
            words=["-o after '--' is read as an input file; put options first"])
    assert not (tmp_path / "other.wav").exists()


def test_input_that_is_not_a_file(tmp_path, capsys):
    (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
    refused(capsys, tmp_path / "link.wav", "-o", tmp_path / "out.wav",
            words=[f"{tmp_path / 'link.wav'}: dangling symbolic link"])
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(api.TexsynthError, match="x.wav: is a directory, not an audio file"):
        api.synthesize_file(tmp_path / "x.wav", tmp_path / "out.wav")


def test_folder_named_like_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "x.wav").mkdir()
    refused(capsys, tmp_path / "x.wav", "-o", tmp_path / "out.wav", words=["x.wav"])


@pytest.fixture
def never_synthesise(monkeypatch):
    """Fail if a run gets as far as reading the input: bad outputs must be refused first."""
    def boom(*args, **kwargs):
        raise AssertionError("reached the synthesis")

    monkeypatch.setattr(api, "load_audio", boom)
    monkeypatch.setattr(api, "synthesize", boom)


@pytest.mark.parametrize("output, words", [
    ("missing/out.wav", "output folder {tmp}/missing does not exist"),
    ("notes.txt/out.wav", "output folder {tmp}/notes.txt is not a folder"),
    ("out.mp4", "output extension '.mp4' must be one of"),
    ("exists.wav", "{tmp}/exists.wav: output exists (use --overwrite to replace it)"),
])
def test_bad_outputs_fail_before_synthesis(wav, capsys, never_synthesise, output, words):
    tmp = wav.parent
    (tmp / "notes.txt").write_text("a file, not a folder")
    (tmp / "exists.wav").write_bytes(b"keep me")
    start = time.perf_counter()
    refused(capsys, wav, "-o", tmp / output, words=[words.format(tmp=tmp)])
    assert time.perf_counter() - start < 1.0
    assert (tmp / "exists.wav").read_bytes() == b"keep me"


def test_unwritable_output_folder(wav, capsys, never_synthesise):
    if os.geteuid() == 0:  # root writes anywhere that permission bits allow nobody to
        folder = Path("/sys")
        if not folder.is_dir() or os.access(folder, os.W_OK) and _can_create(folder):
            pytest.skip("no folder that root cannot write to")
    else:
        folder = wav.parent / "locked"
        folder.mkdir(mode=0o500)
    refused(capsys, wav, "-o", folder / "out.wav",
            words=[f"output folder {folder} is not writable"])


def _can_create(folder: Path) -> bool:
    try:
        (folder / ".texsynth-probe").touch()
    except OSError:
        return False
    (folder / ".texsynth-probe").unlink()
    return True


def link(kind: str, target: Path, path: Path) -> Path:
    os.symlink(target, path) if kind == "symlink" else os.link(target, path)
    return path


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_is_the_input(wav, capsys, kind, overwrite):
    before = fingerprint(wav)
    output = wav if kind == "same" else link(kind, wav, wav.parent / "alias.wav")
    refused(capsys, wav, "-o", output, *overwrite,
            words=[f"output would overwrite the input {wav}"])
    assert fingerprint(wav) == before


def test_sidecar_would_overwrite_the_input(tmp_path, capsys):
    src = tmp_path / "out.wav.json"
    sf.write(src, noise(1.0), SR, format="WAV")
    before = fingerprint(src)
    refused(capsys, src, "-o", tmp_path / "out.wav",
            words=["its sidecar", "would overwrite the input"])
    assert fingerprint(src) == before


def test_input_untouched_and_no_stray_files(wav, capsys):
    before = fingerprint(wav)
    out = wav.parent / "out.wav"
    synthesised(capsys, wav, "-o", out, output=out, seconds=1.0)
    synthesised(capsys, wav, "-o", out, "--overwrite", "--seed", 1, output=out, seconds=1.0)
    assert fingerprint(wav) == before
    assert sorted(p.name for p in wav.parent.iterdir()) == ["in.wav", "out.wav", "out.wav.json"]


# Runs that go wrong.

# The real entry point, announcing on stderr when the optimisation starts.
ANNOUNCING_MAIN = """
import sys
from texsynth import cli, synth
optimise = synth.optimise
def announced(*args, **kwargs):
    print("optimising", file=sys.stderr, flush=True)
    return optimise(*args, **kwargs)
synth.optimise = announced
sys.exit(cli.main())
"""


def test_ctrl_c_leaves_nothing_behind(wav):
    out = wav.parent / "out.wav"
    args = ["-q", "--preset", str(TINY_PRESET), "--steps", "100000", str(wav), "-o", str(out)]
    proc = subprocess.Popen([sys.executable, "-c", ANNOUNCING_MAIN, *args],
                            stderr=subprocess.PIPE, text=True, cwd=wav.parent)
    try:
        assert proc.stderr.readline() == "optimising\n"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    # click ends the line the terminal's ^C was echoed on with a newline of its own.
    assert proc.returncode == 130 and err.lstrip("\n") == "texsynth: interrupted\n", err
    assert sorted(p.name for p in wav.parent.iterdir()) == ["in.wav"]


def test_entry_point_refuses_in_one_line(tmp_path):
    (tmp_path / "bad.wav").write_text("not audio")
    proc = subprocess.run([sys.executable, "-m", "texsynth", "-q", "bad.wav", "-o", "out.wav"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == "texsynth: error: bad.wav: not an audio file (it holds text)\n"


def nan_loss_after(monkeypatch, good: int):
    """Make the loss NaN after ``good`` finite evaluations."""
    real, calls = synth.TextureModel.loss, []

    def loss(self, Z, target):
        value, parts = real(self, Z, target)
        calls.append(1)
        return (value * float("nan"), parts) if len(calls) > good else (value, parts)

    monkeypatch.setattr(synth.TextureModel, "loss", loss)


def test_divergence_keeps_the_last_good_state(wav, capsys, caplog, monkeypatch):
    nan_loss_after(monkeypatch, good=3)
    synthesised(capsys, wav, "-o", wav.parent / "out.wav", "--steps", 6,
                output=wav.parent / "out.wav", seconds=1.0)
    assert "diverged" in caplog.text


def test_divergence_from_the_start_writes_nothing(wav, capsys, monkeypatch):
    nan_loss_after(monkeypatch, good=0)
    refused(capsys, wav, "-o", wav.parent / "out.wav",
            words=[f"{wav}: synthesis failed", "nothing written"])
    assert sorted(p.name for p in wav.parent.iterdir()) == ["in.wav"]


def test_non_finite_audio_is_never_written(wav, capsys, monkeypatch):
    real = spectral.griffin_lim
    monkeypatch.setattr(spectral, "griffin_lim", lambda *a, **k: real(*a, **k) * float("nan"))
    refused(capsys, wav, "-o", wav.parent / "out.wav", words=[f"{wav}: synthesis failed"])
    assert sorted(p.name for p in wav.parent.iterdir()) == ["in.wav"]


# Presets are data.

def test_preset_cannot_run_code(wav, capsys, monkeypatch):
    monkeypatch.chdir(wav.parent)
    preset = wav.parent / "evil.toml"
    preset.write_text("steps = \"__import__('os').system('touch pwned')\"\n")
    line = refused(capsys, wav, "-o", "out.wav", "--preset", preset,
                   words=[preset, "steps=", "must be an integer"])
    assert "pwned" in line and not (wav.parent / "pwned").exists()


def test_preset_that_is_not_toml(wav, capsys):
    preset = wav.parent / "bad.toml"
    preset.write_bytes(struct.pack("<4f", 1, 2, 3, 4))
    refused(capsys, wav, "-o", wav.parent / "out.wav", "--preset", preset,
            words=[preset, "not valid TOML"])

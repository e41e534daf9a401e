"""The real command line end to end on tiny inputs: presets, settings, sidecars, batch."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from texsynth import presets
from texsynth.cli import main
from texsynth.errors import TexsynthError

from conftest import crackle, drone, loop


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_single_file_end_to_end(tmp_path, crackle_wav, tiny_preset, capsys):
    out = tmp_path / "out.wav"
    code, _, err = run(capsys, crackle_wav, "-o", out, "--preset", tiny_preset, "--duration", 2.5, "-q")
    assert code == 0, err
    y, sr = sf.read(out)
    assert sr == 8000 and y.shape == (20000,)
    assert sf.info(out).subtype == "PCM_16"
    assert np.all(np.isfinite(y)) and 0 < np.abs(y).max() < 1.0
    record = json.loads((tmp_path / "out.wav.json").read_text())
    assert record["seed"] == 0 and record["input_sha256"] == digest(crackle_wav)
    assert record["settings"]["n_filters"] == 8 and record["device"] == "cpu"
    assert record["threads"] >= 1


def test_sidecar_reproduces_output(tmp_path, crackle_wav, tiny_preset, capsys):
    first = tmp_path / "first.flac"
    assert run(capsys, crackle_wav, "-o", first, "--preset", tiny_preset, "--seed", 5, "-q")[0] == 0
    record = json.loads((tmp_path / "first.flac.json").read_text())
    preset = tmp_path / "from_sidecar.toml"
    preset.write_text(presets.to_toml(presets.from_mapping(record["settings"])))
    second = tmp_path / "second.flac"
    code, _, err = run(capsys, record["input"], "-o", second, "--preset", preset,
                       "--seed", record["seed"], "--duration", record["output_seconds"], "-q")
    assert code == 0, err
    assert np.array_equal(sf.read(first)[0], sf.read(second)[0])


def test_subtype_and_set_options(tmp_path, crackle_wav, tiny_preset, capsys):
    out = tmp_path / "o.wav"
    code, _, err = run(capsys, crackle_wav, "-o", out, "--preset", tiny_preset, "--subtype", "FLOAT",
                       "--set", "steps=2", "--set", "optimizer=adam", "-q")
    assert code == 0, err
    assert sf.info(out).subtype == "FLOAT"
    settings = json.loads((tmp_path / "o.wav.json").read_text())["settings"]
    assert settings["steps"] == 2 and settings["optimizer"] == "adam"


def test_existing_output_needs_overwrite(tmp_path, crackle_wav, tiny_preset, capsys):
    out = tmp_path / "o.wav"
    out.write_bytes(b"keep me")
    code, _, err = run(capsys, crackle_wav, "-o", out, "--preset", tiny_preset, "-q")
    assert code == 1 and "exists" in err and out.read_bytes() == b"keep me"
    assert run(capsys, crackle_wav, "-o", out, "--preset", tiny_preset, "-q", "--overwrite")[0] == 0
    assert sf.info(out).frames > 0


def test_list_presets_and_every_preset_loads(capsys):
    code, out, _ = run(capsys, "--list-presets")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"default", "fast", "hq", "rhythmic", "pitched", "stationary"} <= set(names)
    for line in out.splitlines():
        assert len(line.split(None, 1)) == 2, f"preset without a description: {line}"
    for name in names:
        presets.load(name)


def test_show_settings_round_trips(tmp_path, capsys):
    code, out, _ = run(capsys, "--preset", "hq", "--set", "seed_free=1")
    assert code == 1  # unknown key
    code, out, _ = run(capsys, "--preset", "hq", "--set", "steps=7", "--show-settings")
    assert code == 0
    path = tmp_path / "p.toml"
    path.write_text(out)
    assert presets.load(str(path)) == presets.load("hq").replace(steps=7)


def test_user_preset_keeps_unset_defaults(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "mine"\nsteps = 12\n')
    settings = presets.load(str(path))
    assert settings.steps == 12
    assert settings == presets.Settings().replace(steps=12)


@pytest.mark.parametrize("text, message", [
    ("stepz = 3", "unknown setting 'stepz' (did you mean 'steps'?)"),
    ('steps = "many"', "steps='many' must be an integer"),
    ("steps = 2.5", "steps=2.5 must be an integer"),
    ("steps = -1", "steps=-1 must be between 0 and 100000"),
    ("momentum = true", "momentum=True must be a number"),
    ('optimizer = "sgd"', "optimizer='sgd' must be one of lbfgs, adam"),
    ("widths = [2, 0]", "widths=(2, 0) must be a non-empty list"),
    ("widths = 3", "widths=3 must be a list of integers"),
    ("hop_length = 4096", "hop_length=4096 must be 0 (n_fft/4) or, with n_fft = 0, between 1 and 128"),
    ("n_fft = 512\nhop_length = 400", "hop_length=400 must be 0 (n_fft/4) or between 1 and n_fft/2 = 256"),
    ("n_fft = 32", "n_fft=32 must be 0 (chosen for each input) or between 64 and 16384"),
    ('subtype = "MP3"', "subtype='MP3' must be one of"),
    ("sample_rate = 100", "sample_rate=100 must be 0 (the input's own rate) or between 4000 and 192000"),
    ("steps = [", "not valid TOML"),
])
def test_preset_validation_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(TexsynthError) as info:
        presets.load(str(path))
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_preset_name_lists_choices(capsys):
    code, _, err = run(capsys, "x.wav", "-o", "y.wav", "--preset", "loud")
    assert code == 1
    assert "preset='loud' must be one of" in err and "stationary" in err
    assert len(err.strip().splitlines()) == 1


def test_set_needs_key_value(capsys):
    code, _, err = run(capsys, "--set", "steps", "--show-settings")
    assert code == 1 and "key=value" in err


def make_tree(root):
    """inputs/ with nested audio, a non-audio file and an undecodable .wav."""
    (root / "a" / "b").mkdir(parents=True)
    for rel, seed in (("one.wav", 1), ("a/two.flac", 2), ("a/b/three.ogg", 3)):
        sf.write(root / rel, crackle(1.0, 8000, seed), 8000)
    (root / "notes.txt").write_text("not audio")
    (root / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return {p: digest(p) for p in root.rglob("*") if p.is_file()}


def test_batch_mirrors_tree_skips_and_reports(tmp_path, tiny_preset, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    before = make_tree(src)
    (dst / "a").mkdir(parents=True)
    (dst / "a" / "two.wav").write_bytes(b"existing")

    code, _, err = run(capsys, src, "-o", dst, "--preset", tiny_preset, "-q")

    assert code == 1
    assert (dst / "one.wav").is_file() and (dst / "a" / "b" / "three.wav").is_file()
    assert (dst / "one.wav.json").is_file()
    assert (dst / "a" / "two.wav").read_bytes() == b"existing"
    assert not (dst / "notes.wav").exists() and not (dst / "a" / "broken.wav").exists()
    assert "skipped:" in err and "two.wav" in err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "broken.wav" in failed[0]
    assert "2 done, 1 skipped, 1 failed; 2.0 s of audio" in err
    assert before == {p: digest(p) for p in src.rglob("*") if p.is_file()}
    leftovers = [p for p in dst.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_batch_into_input_folder_never_overwrites_inputs(tmp_path, tiny_preset, capsys):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "x.wav", crackle(1.0, 8000), 8000)
    before = digest(src / "x.wav")
    code, _, err = run(capsys, src, "-o", src, "--preset", tiny_preset, "-q", "--overwrite")
    assert code == 1 and "input" in err
    assert digest(src / "x.wav") == before


def test_batch_parallel_jobs(tmp_path, tiny_preset, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    make_tree(src)
    code, _, err = run(capsys, src, "-o", dst, "--preset", tiny_preset, "-q", "--jobs", 2)
    assert code == 1
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.wav")) == [
        "a/b/three.wav", "a/two.wav", "one.wav"]
    assert "3 done, 0 skipped, 1 failed" in err


def test_batch_parallel_prints_a_line_per_finished_file(tmp_path, tiny_preset, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    make_tree(src)
    code, _, err = run(capsys, src, "-o", dst, "--preset", tiny_preset, "--jobs", 2)
    finished = [line for line in err.splitlines() if " finished " in line]
    assert code == 1 and len(finished) == 4
    assert sorted(line.split("]")[0] for line in finished) == ["[1/4", "[2/4", "[3/4", "[4/4"]


def test_batch_same_output_fails_on_every_run(tmp_path, tiny_preset, capsys):
    """Two inputs that map to one output: the second fails, also once the first's output exists."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    sf.write(src / "a.wav", crackle(1.0, 8000, 1), 8000)
    sf.write(src / "a.flac", crackle(1.0, 8000, 2), 8000)
    for _ in range(2):
        code, _, err = run(capsys, src, "-o", dst, "--preset", tiny_preset, "-q")
        assert code == 1 and "another input maps to the same output" in err
        assert err.count("skipped:") <= 1


def test_batch_output_folder_inside_input_folder_is_not_searched(tmp_path, tiny_preset, capsys):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "x.wav", crackle(1.0, 8000), 8000)
    dst = src / "out"
    for _ in range(2):
        code, _, err = run(capsys, src, "-o", dst, "--preset", tiny_preset, "-q")
        assert code == 0
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.wav")) == ["out/x.wav", "x.wav"]
    assert "0 done, 1 skipped, 0 failed" in err


def test_module_entry_point_and_version():
    result = subprocess.run([sys.executable, "-m", "texsynth", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "texsynth, version" in result.stdout


@pytest.mark.parametrize("name, subtype, expected", [
    ("o.ogg", None, "VORBIS"), ("o.flac", "PCM_24", "PCM_24"), ("o.aiff", None, "PCM_16")])
def test_output_formats(tmp_path, crackle_wav, tiny_preset, capsys, name, subtype, expected):
    extra = ["--subtype", subtype] if subtype else []
    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / name, "--preset", tiny_preset, "-q", *extra)
    assert code == 0, err
    assert sf.info(tmp_path / name).subtype == expected
    assert json.loads((tmp_path / f"{name}.json").read_text())["output_subtype"] == expected


def test_impossible_subtype_is_refused_before_synthesis(tmp_path, crackle_wav, capsys):
    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / "o.flac", "--subtype", "FLOAT", "-q",
                       "--steps", 100000)
    assert code == 1 and "subtype=FLOAT must be one of PCM_16, PCM_24 for FLAC files" in err


def test_seed_out_of_range_is_a_usage_error(tmp_path, crackle_wav, capsys):
    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / "o.wav", "--seed", 2**64)
    assert code == 2 and "--seed" in err


@pytest.mark.parametrize("file_sr, out_sr", [(11025, 11025), (96000, 48000)])
def test_native_rate_output(tmp_path, tiny_preset, capsys, file_sr, out_sr):
    src = tmp_path / "in.wav"
    sf.write(src, crackle(1.0, file_sr), file_sr)
    out = tmp_path / "out.wav"
    code, _, err = run(capsys, src, "-o", out, "--preset", tiny_preset, "--set", "sample_rate=0",
                       "--duration", 1.5, "-q")
    assert code == 0, err
    y, sr = sf.read(out)
    assert sr == out_sr and y.shape == (round(1.5 * out_sr),) and np.all(np.isfinite(y))
    record = json.loads((tmp_path / "out.wav.json").read_text())
    # The sidecar holds the sizes actually used: the preset's (given for 16 kHz) scaled.
    tiny = presets.load(str(tiny_preset))
    assert record["settings"]["sample_rate"] == out_sr
    assert record["settings"]["n_fft"] == 2 * round(tiny.n_fft * out_sr / 16000 / 2)


@pytest.mark.parametrize("args, message", [
    (["--steps", "-3"], "--steps"),
    (["-o", ""], "must not be empty"),
])
def test_bad_options_are_usage_errors_naming_the_option(tmp_path, crackle_wav, capsys, args, message):
    if "-o" not in args:
        args = ["-o", str(tmp_path / "o.wav"), *args]
    code, _, err = run(capsys, crackle_wav, *args)
    assert code == 2 and message in err
    assert not (tmp_path / "o.wav").exists()


def test_preset_file_must_be_toml(tmp_path, crackle_wav, capsys):
    not_toml = tmp_path / "empty.wav"
    not_toml.write_bytes(b"")
    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / "o.wav", "--preset", not_toml)
    assert code == 1 and "must be a .toml file" in err and str(not_toml) in err


def test_debug_shows_texsynth_diagnostics_not_every_library(tmp_path, crackle_wav, tiny_preset, capsys):
    import logging

    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / "o.wav", "--preset", tiny_preset,
                       "--duration", 0.05, "--debug")
    assert code == 0, err
    assert logging.getLogger("texsynth").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("numba").getEffectiveLevel() >= logging.WARNING
    assert "(0.05 s at 8000 Hz)" in err
    logging.getLogger("texsynth").setLevel(logging.NOTSET)


def test_progress_line_counts_the_polish(tmp_path, crackle_wav, tiny_preset, capsys):
    code, _, err = run(capsys, crackle_wav, "-o", tmp_path / "o.wav", "--preset", tiny_preset,
                       "--duration", 0.5)
    assert code == 0, err
    tiny = presets.load(str(tiny_preset))
    assert f"({tiny.steps} steps + {tiny.refine_steps} waveform polish)" in err


TINY_SETS = ["sample_rate=8000", "n_fft=256", "hop_length=64", "widths=[2, 4, 8, 32]", "n_filters=8",
             "max_taps=8", "steps=4", "griffin_lim_iters=8", "refine_steps=0"]


@pytest.mark.parametrize("named", [False, True])
def test_a_loop_gets_the_rhythmic_preset_unless_one_is_named(tmp_path, capsys, named):
    src = tmp_path / "loop.wav"
    sf.write(src, loop(6.0, 8000), 8000)
    sets = [word for item in TINY_SETS for word in ("--set", item)]
    out = tmp_path / "out.wav"
    code, _, err = run(capsys, src, "-o", out, "--duration", 1, *sets, *(["--preset", "default"] if named else []))
    assert code == 0, err
    record = json.loads((tmp_path / "out.wav.json").read_text())
    rhythmic = presets.load("rhythmic")
    if named:
        assert record["preset"] == "default" and record["input_kind"] is None
        assert record["settings"]["autocorr_weight"] != rhythmic.autocorr_weight
        assert "repeats" not in err
    else:
        assert record["preset"] == "rhythmic" and record["input_kind"] == "repeats"
        assert record["settings"]["autocorr_weight"] == rhythmic.autocorr_weight
        assert record["settings"]["log_floor"] == rhythmic.log_floor
        assert record["settings"]["steps"] == 4  # --set still applies over the preset chosen
        assert "the input repeats: rhythmic preset, 4 steps)" in err


def test_a_beatless_input_keeps_the_default(tmp_path, capsys):
    src = tmp_path / "crackle.wav"
    sf.write(src, crackle(6.0, 8000), 8000)
    sets = [word for item in TINY_SETS for word in ("--set", item)]
    code, _, err = run(capsys, src, "-o", tmp_path / "out.wav", "--duration", 1, *sets)
    assert code == 0, err
    record = json.loads((tmp_path / "out.wav.json").read_text())
    assert record["preset"] == "default" and record["input_kind"] == "other"
    assert record["settings"]["max_lag_seconds"] == 1.0


def test_a_tonal_input_gets_the_pitched_preset(tmp_path, capsys):
    src = tmp_path / "drone.wav"
    sf.write(src, drone(6.0, 8000), 8000)
    sets = [word for item in TINY_SETS if not item.startswith(("n_fft", "hop_length"))
            for word in ("--set", item)]
    code, _, err = run(capsys, src, "-o", tmp_path / "out.wav", "--duration", 1, *sets)
    assert code == 0, err
    record = json.loads((tmp_path / "out.wav.json").read_text())
    assert record["preset"] == "pitched" and record["input_kind"] == "tonal"
    assert record["settings"]["marginal_weight"] == presets.load("pitched").marginal_weight
    assert "the input is tonal: pitched preset" in err


def test_a_set_stft_size_that_a_kind_preset_cannot_take_leaves_that_kind_out(tmp_path, capsys):
    """n_fft=256 with no hop given clashes with `pitched`'s hop of 256: only that kind is
    dropped, and the run goes on with what was asked for."""
    kinds = presets.by_kind({"n_fft": 256})
    assert "tonal" not in kinds and kinds["repeats"][0] == "rhythmic"
    src = tmp_path / "crackle.wav"
    sf.write(src, crackle(3.0, 8000), 8000)
    sets = [word for item in TINY_SETS if not item.startswith("hop_length") for word in ("--set", item)]
    code, _, err = run(capsys, src, "-o", tmp_path / "out.wav", "--duration", 1, *sets)
    assert code == 0, err
    record = json.loads((tmp_path / "out.wav.json").read_text())
    assert record["settings"]["n_fft"] == 256 and record["settings"]["hop_length"] == 64

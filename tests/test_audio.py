"""Reading every kind of input file: decode it to finite mono audio or refuse it in one line."""

import math
import struct
import tracemalloc
import wave

import numpy as np
import pytest
import soundfile as sf

from texsynth.audio import check_writable, load_audio, write_audio
from texsynth.errors import TexsynthError

SR = 8000  # working rate of the tiny preset, Hz


def noise(seconds: float, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """White noise at RMS 0.2, shape (n,) or (n, channels)."""
    rng = np.random.default_rng(seed)
    shape = (int(seconds * sr),) if channels == 1 else (int(seconds * sr), channels)
    return np.clip(0.2 * rng.standard_normal(shape), -0.99, 0.99).astype(np.float32)


def chunk(name: bytes, body: bytes) -> bytes:
    return name + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def fmt_chunk(code: int = 1, channels: int = 1, sr: int = SR, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", code, channels, sr, sr * block, block, bits))


def riff(*chunks: bytes, riff_size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def pcm16(y: np.ndarray) -> bytes:
    return (y * 32767).astype("<i2").tobytes()


def assert_valid(rec, seconds: float | None = None):
    assert rec.sr == SR and rec.y.dtype == np.float32 and rec.y.ndim == 1
    assert np.isfinite(rec.y).all() and rec.seconds >= 0.25
    assert rec.y.size == round(rec.seconds * SR)
    assert np.sqrt(np.mean(rec.y**2)) > 0.01
    if seconds is not None:
        assert abs(rec.seconds - seconds) <= 0.06


def assert_refused(path, *words, **kwargs) -> str:
    with pytest.raises(TexsynthError) as info:
        load_audio(path, SR, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for word in words:
        assert word in message
    return message


# Containers and encodings: all synthesise.

@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE",
                                     "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM"])
def test_wav_encodings(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, noise(1.0), SR, subtype=subtype)
    assert_valid(load_audio(path, SR), 1.0)


def test_wave_module_8_bit_unsigned(tmp_path):
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(1), w.setframerate(SR)
        w.writeframes(((noise(1.0) + 1) * 127.5).astype(np.uint8).tobytes())
    assert_valid(load_audio(path, SR), 1.0)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_beyond_full_scale_is_scaled_down(tmp_path, caplog, subtype):
    path = tmp_path / "hot.wav"
    sf.write(path, 8 * noise(1.0), SR, subtype=subtype)
    rec = load_audio(path, SR)
    assert_valid(rec, 1.0)
    assert np.abs(rec.y).max() < 1.2 and "beyond full scale" in caplog.text


def test_float_near_float_max_does_not_overflow(tmp_path):
    path = tmp_path / "huge.wav"
    sf.write(path, noise(1.0) * 1e38, SR, subtype="FLOAT")
    assert_valid(load_audio(path, SR), 1.0)


def test_wave_format_extensible(tmp_path):
    path = tmp_path / "ext.wav"
    sf.write(path, noise(1.0, channels=2), SR, format="WAVEX", subtype="PCM_24")
    rec = load_audio(path, SR)
    assert_valid(rec, 1.0)
    assert rec.channels == 2


def test_extra_chunks_and_a_chunk_before_fmt(tmp_path):
    path = tmp_path / "chunks.wav"
    info = chunk(b"LIST", b"INFO" + chunk(b"INAM", b"rain\0"))
    cue = chunk(b"cue ", struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 0, b"data", 0, 0, 100))
    bext = chunk(b"bext", b"x" * 603)  # odd size: a pad byte follows
    path.write_bytes(riff(bext, fmt_chunk(), info, cue, chunk(b"data", pcm16(noise(1.0))), info))
    assert_valid(load_audio(path, SR), 1.0)


@pytest.mark.parametrize("name, fmt", [("x.flac", "FLAC"), ("x.ogg", "OGG"), ("x.mp3", "MP3"),
                                       ("x.aiff", "AIFF"), ("X.WAV", "WAV"), ("flac.wav", "FLAC"),
                                       ("no_extension", "WAV")])
def test_containers_and_misleading_names(tmp_path, name, fmt):
    path = tmp_path / name
    sf.write(path, noise(1.0), SR, format=fmt)
    assert_valid(load_audio(path, SR), 1.0)


# Broken files: all refused, naming the problem.

@pytest.mark.parametrize("content, words", [
    (b"", ["file is empty (0 bytes)"]),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", ["cannot decode audio"]),
    (b"hello, this is text\n" * 50, ["not an audio file (it holds text)"]),
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n" * 20, ["it holds HTML"]),
    (np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
     ["cannot decode audio"]),
])
def test_undecodable_files(tmp_path, content, words):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    assert_refused(path, *words)


def test_truncated_data_reads_what_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, noise(1.0), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + 2 * 6000])
    assert_valid(load_audio(path, SR), 0.75)


def test_truncated_data_too_short(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, noise(1.0), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:1044])
    assert_refused(path, "must be at least 0.25 s", "500 samples")


@pytest.mark.parametrize("data_size, riff_size",
                         [(0xFFFFFFF0, 0xFFFFFFF8), (10**9, None), (16000, 7)])
def test_header_sizes_that_lie(tmp_path, data_size, riff_size):
    path = tmp_path / "lie.wav"
    payload = pcm16(noise(1.0))
    path.write_bytes(riff(fmt_chunk(), b"data" + struct.pack("<I", data_size) + payload,
                          riff_size=riff_size))
    assert_valid(load_audio(path, SR), 1.0)


@pytest.mark.parametrize("header, words", [
    (dict(code=1, channels=1, sr=SR), ["no audio data (0 frames)"]),
    (dict(code=1, channels=0, sr=SR), ["channel count 0 must be at least 1"]),
    (dict(code=1, channels=1, sr=0), ["sample rate 0 Hz must be between 2000 and 768000 Hz"]),
    (dict(code=1, channels=1, sr=1), ["sample rate 1 Hz must be between 2000 and 768000 Hz"]),
])
def test_impossible_headers(tmp_path, header, words):
    path = tmp_path / "bad.wav"
    payload = b"" if header["channels"] and header["sr"] == SR else pcm16(noise(1.0))
    path.write_bytes(riff(fmt_chunk(**header), chunk(b"data", payload)))
    assert_refused(path, *words)


# Content.

def test_silence_and_near_silence_are_refused(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(SR), SR)
    assert_refused(tmp_path / "zero.wav", "input is silent (all samples are zero)")
    sf.write(tmp_path / "quiet.wav", 1e-6 * np.sign(noise(1.0)), SR, subtype="FLOAT")  # -120 dBFS
    assert_refused(tmp_path / "quiet.wav", "input is silent (RMS -120 dBFS, below -100 dBFS)")


def test_non_finite_samples(tmp_path, caplog):
    sf.write(tmp_path / "nan.wav", np.full(SR, np.nan), SR, subtype="FLOAT")
    assert_refused(tmp_path / "nan.wav", "no finite samples (all NaN or Inf)")
    y = noise(1.0)
    y[::100], y[7], y[9] = np.nan, np.inf, -np.inf
    sf.write(tmp_path / "some.wav", y, SR, subtype="FLOAT")
    assert_valid(load_audio(tmp_path / "some.wav", SR), 1.0)
    assert "82 non-finite samples (NaN or Inf) set to zero" in caplog.text


def test_dc_offset_is_removed(tmp_path):
    sf.write(tmp_path / "dc.wav", 0.5 + 0.2 * noise(1.0), SR)
    rec = load_audio(tmp_path / "dc.wav", SR)
    assert_valid(rec, 1.0)
    assert abs(float(rec.y.mean())) < 1e-3
    sf.write(tmp_path / "flat.wav", np.full(SR, 0.5), SR)
    assert_refused(tmp_path / "flat.wav", "input is constant (a DC offset and no sound)")


def test_full_scale_square_wave(tmp_path):
    sf.write(tmp_path / "square.wav", np.sign(np.sin(np.arange(SR) * 2 * np.pi * 100 / SR)), SR)
    assert_valid(load_audio(tmp_path / "square.wav", SR), 1.0)


@pytest.mark.parametrize("n", [1, 100, 255, 1999])
def test_too_short(tmp_path, n):
    """One sample, 100 samples, shorter than one STFT frame, just under MIN_SECONDS."""
    sf.write(tmp_path / "short.wav", noise(1.0)[:n], SR)
    assert_refused(tmp_path / "short.wav", "must be at least 0.25 s", f"it has {n} sample")


def test_shortest_accepted(tmp_path):
    sf.write(tmp_path / "short.wav", noise(0.25), SR)
    assert load_audio(tmp_path / "short.wav", SR).y.size == SR // 4


def test_one_silent_channel_is_left_out(tmp_path):
    y = noise(1.0)
    sf.write(tmp_path / "half.wav", np.stack([y, 0 * y], 1), SR)
    rec = load_audio(tmp_path / "half.wav", SR)
    assert_valid(rec, 1.0)
    assert np.allclose(rec.y, y - y.mean(), atol=1e-4)


def test_phase_inverted_stereo_uses_one_channel(tmp_path, caplog):
    y = noise(1.0)
    sf.write(tmp_path / "inverted.wav", np.stack([y, -y], 1), SR, subtype="FLOAT")
    rec = load_audio(tmp_path / "inverted.wav", SR)
    assert_valid(rec, 1.0)
    assert np.allclose(np.abs(rec.y), np.abs(y - y.mean()), atol=1e-5)
    assert "channels cancel when averaged (opposite phase); using channel 1 alone" in caplog.text


def test_uncorrelated_channels_are_averaged(tmp_path, caplog):
    y = noise(1.0, channels=6)
    sf.write(tmp_path / "six.wav", y, SR, subtype="FLOAT")
    rec = load_audio(tmp_path / "six.wav", SR)
    assert_valid(rec, 1.0)
    assert rec.channels == 6 and "cancel" not in caplog.text
    assert np.allclose(rec.y, (y - y.mean(0)).mean(1), atol=1e-5)


# Rates.

@pytest.mark.parametrize("sr", [8000, 11025, 16001, 44056, 96000, 192000])
def test_sample_rates(tmp_path, sr):
    sf.write(tmp_path / "rate.wav", noise(0.5, sr), sr)
    rec = load_audio(tmp_path / "rate.wav", SR)
    assert_valid(rec, 0.5)
    assert rec.source_sr == sr and rec.y.size == math.ceil(0.5 * sr * SR / sr)


# Size: reading is bounded by max_seconds, whatever the header claims.

def test_header_claiming_an_hour_reads_only_the_excerpt(tmp_path, caplog):
    path = tmp_path / "hour.wav"
    claims_an_hour = b"data" + struct.pack("<I", 3700 * SR * 2)
    path.write_bytes(riff(fmt_chunk(), claims_an_hour + pcm16(noise(3.0))))
    rec = load_audio(path, SR, max_seconds=2)
    assert rec.truncated and rec.y.size == 2 * SR
    assert "longer than max_input_seconds=2; analysing the first 2 s" in caplog.text
    rec = load_audio(path, SR)
    assert not rec.truncated and rec.y.size == 3 * SR


def test_long_file_memory_is_bounded(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, noise(120.0, 16000, channels=2), 16000, subtype="PCM_16")  # 7.7 MB
    tracemalloc.start()
    try:
        rec = load_audio(path, SR, max_seconds=1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rec.truncated and rec.y.size == SR
    assert peak < 2e6  # reading it all would take 15 MB as float32


def test_exactly_max_seconds_is_not_truncated(tmp_path):
    sf.write(tmp_path / "x.wav", noise(2.0), SR)
    assert not load_audio(tmp_path / "x.wav", SR, max_seconds=2.0).truncated


# Paths.

def test_paths_that_are_not_files(tmp_path):
    assert_refused(tmp_path / "missing.wav", "no such file")
    (tmp_path / "x.wav").mkdir()
    assert_refused(tmp_path / "x.wav", "is a directory, not an audio file")
    (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
    assert_refused(tmp_path / "link.wav", "dangling symbolic link")


# Fuzzing: random bytes and random headers decode or raise TexsynthError, nothing else.

def random_header(rng) -> bytes:
    channels, sr = int(rng.integers(0, 9)), int(rng.integers(0, 400001))
    bits = int(rng.choice([0, 4, 8, 16, 24, 32, 64, int(rng.integers(0, 65536))]))
    code = int(rng.choice([1, 2, 3, 6, 7, 0x11, 0xFFFE, int(rng.integers(0, 65536))]))
    block = channels * bits // 8
    fields = struct.pack("<HHIIHH", code, channels, sr, (sr * block) % 2**32, block % 2**16, bits)
    payload = rng.bytes(int(rng.integers(0, 100000)))
    size = len(payload) if rng.random() < 0.5 else int(rng.integers(0, 2**32))
    return riff(chunk(b"fmt ", fields), b"data" + struct.pack("<I", size) + payload,
                riff_size=None if rng.random() < 0.7 else int(rng.integers(0, 2**32)))


def plausible_header(rng) -> bytes:
    channels, sr = int(rng.integers(1, 9)), int(rng.choice([2000, 8000, 22050, 48000, 400000]))
    code, bits = [(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)][int(rng.integers(0, 6))]
    payload = rng.bytes(int(rng.integers(0, 200000)))
    return riff(fmt_chunk(code, channels, sr, bits), chunk(b"data", payload))


def test_fuzz(tmp_path):
    rng = np.random.default_rng(2024)
    path = tmp_path / "fuzz.wav"
    samples = [rng.bytes(int(rng.integers(0, 5000))) for _ in range(200)]
    samples += [random_header(rng) for _ in range(60)] + [plausible_header(rng) for _ in range(40)]
    decoded = 0
    for content in samples:
        path.write_bytes(content)
        try:
            rec = load_audio(path, SR, max_seconds=2.0)
        except TexsynthError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            continue
        assert rec.sr == SR and rec.y.dtype == np.float32 and rec.y.ndim == 1
        assert np.isfinite(rec.y).all() and rec.y.size >= SR // 4 and rec.seconds >= 0.25
        decoded += 1
    assert decoded >= 10  # the plausible headers do decode


# Output.

def test_write_audio_refuses_nan_and_silence(tmp_path):
    out = tmp_path / "out.wav"
    with pytest.raises(TexsynthError, match="non-finite"):
        write_audio(out, np.full(100, np.nan, np.float32), SR)
    with pytest.raises(TexsynthError, match="silent"):
        write_audio(out, np.zeros(100, np.float32), SR)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"

    def interrupted(handle, *args, **kwargs):
        handle.write(b"RIFF half a header")
        raise KeyboardInterrupt

    monkeypatch.setattr(sf, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_audio(out, noise(1.0), SR)
    assert list(tmp_path.iterdir()) == []


def test_write_audio_replaces_atomically(tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"old")
    write_audio(out, noise(1.0), SR)
    assert sf.info(out).frames == SR and [p.name for p in tmp_path.iterdir()] == ["out.wav"]


@pytest.mark.parametrize("relative, words", [
    ("missing/out.wav", "output folder {tmp}/missing does not exist"),
    ("file.txt/out.wav", "output folder {tmp}/file.txt is not a folder"),
    ("folder.wav", "output path is a directory"),
    ("out.mp4", "output extension '.mp4' must be one of"),
])
def test_check_writable(tmp_path, relative, words):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(TexsynthError) as info:
        check_writable(tmp_path / relative)
    assert words.format(tmp=tmp_path) in str(info.value)

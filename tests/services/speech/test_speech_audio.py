"""Raw PCM validation and decoding (services.speech.audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.speech.audio import AudioError, PcmAudio, open_pcm


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "audio.pcm"
    path.write_bytes(data)
    return path


def rejection(path: Path, **kwargs: object) -> AudioError:
    options: dict[str, object] = {"sample_rate": 16000, "dtype": "int16", "max_seconds": 600.0}
    options.update(kwargs)
    with pytest.raises(AudioError) as caught:
        open_pcm(path, **options)  # type: ignore[arg-type]
    return caught.value


def test_int16_is_memory_mapped_and_scaled_per_window(tmp_path: Path) -> None:
    samples = np.array([0, 16384, -32768, 32767] * 4000, dtype="<i2")
    audio = open_pcm(write(tmp_path, samples.tobytes()), sample_rate=16000, dtype="int16", max_seconds=10)
    # Mapped, not read: long uploads are never held in memory as a whole.
    assert isinstance(audio.samples, np.memmap)
    assert audio.num_samples == 16000
    assert audio.seconds == 1.0
    window = audio.window(0, 4)
    assert window.dtype == np.float32
    np.testing.assert_allclose(window, [0.0, 0.5, -1.0, 32767 / 32768])
    starts = [start for start, _ in audio.windows(6000)]
    assert starts == [0, 6000, 12000]
    assert sum(w.shape[0] for _, w in audio.windows(6000)) == 16000


def test_float32_passes_through(tmp_path: Path) -> None:
    samples = np.linspace(-1.0, 1.0, 3200, dtype="<f4")
    audio = open_pcm(write(tmp_path, samples.tobytes()), sample_rate=16000, dtype="float32", max_seconds=10)
    np.testing.assert_array_equal(audio.window(0, 3200), samples)


def test_empty_audio_is_400(tmp_path: Path) -> None:
    error = rejection(write(tmp_path, b""))
    assert (error.status, error.field) == (400, "audio")
    assert "empty" in error.message


def test_odd_byte_count_is_400(tmp_path: Path) -> None:
    error = rejection(write(tmp_path, b"\x00" * 7), dtype="float32")
    assert error.status == 400
    assert "7 bytes" in error.message and "float32" in error.message and "WAV header" in error.message


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 0])
def test_other_sample_rates_are_422(tmp_path: Path, rate: int) -> None:
    error = rejection(write(tmp_path, b"\x00\x00" * 100), sample_rate=rate)
    assert (error.status, error.field) == (422, "sample_rate")
    assert str(rate) in error.message and "16000" in error.message


@pytest.mark.parametrize("dtype", ["int8", "float64", "pcm_s16le", ""])
def test_other_dtypes_are_422(tmp_path: Path, dtype: str) -> None:
    error = rejection(write(tmp_path, b"\x00\x00" * 100), dtype=dtype)
    assert (error.status, error.field) == (422, "dtype")
    assert "int16" in error.message and "float32" in error.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_422(tmp_path: Path, bad: float) -> None:
    samples = np.zeros(16000, dtype="<f4")
    samples[8000] = bad
    error = rejection(write(tmp_path, samples.tobytes()), dtype="float32")
    assert error.status == 422
    assert "NaN or infinite" in error.message and "sample 8000" in error.message


def test_int16_scaled_floats_are_422(tmp_path: Path) -> None:
    samples = np.array([0.0, 12000.0, -32768.0], dtype="<f4")
    error = rejection(write(tmp_path, samples.tobytes()), dtype="float32")
    assert error.status == 422
    assert "[-1, 1]" in error.message and "dtype=int16" in error.message


def test_over_the_length_limit_is_413(tmp_path: Path) -> None:
    path = write(tmp_path, np.zeros(16000 * 11, dtype="<i2").tobytes())
    error = rejection(path, max_seconds=10.0)
    assert error.status == 413
    assert "11.0 s" in error.message and "10 s limit" in error.message
    assert open_pcm(path, sample_rate=16000, dtype="int16", max_seconds=11.0).seconds == 11.0


def test_in_memory_arrays_are_checked_too() -> None:
    with pytest.raises(AudioError, match="mono"):
        PcmAudio.from_array(np.zeros((2, 100), np.int16))
    with pytest.raises(AudioError, match="NaN"):
        PcmAudio.from_array(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="empty"):
        PcmAudio.from_array(np.zeros(0, np.int16))

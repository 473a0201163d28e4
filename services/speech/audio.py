"""Raw PCM in, validated float32 windows out.

Requests carry 16 kHz mono PCM as raw little-endian bytes (int16 or float32) in a file. The file
is memory-mapped, never read whole: the pipeline asks for one window at a time and gets it as
float32 in [-1, 1], so a 10-minute int16 upload costs its 19 MB on disk plus one window in
memory, not a bytes copy plus a float copy of everything.

Every rejection is an :class:`AudioError` carrying the HTTP status the service answers with and
a message that says what was wrong and what to send instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common import RequestError

SAMPLE_RATE = 16_000
DTYPES: dict[str, np.dtype] = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
_INT16_SCALE = 1.0 / 32768.0
# Resamplers overshoot full scale a little; int16-valued floats (|x| up to 32767) are a mistake.
_FLOAT_PEAK_LIMIT = 2.0
_SCAN_SAMPLES = 1 << 20


class AudioError(RequestError):
    """Audio the service refuses; ``status`` is the HTTP status to answer with."""


@dataclass(frozen=True)
class PcmAudio:
    """16 kHz mono PCM in its transmitted dtype (usually a read-only memory map)."""

    samples: np.ndarray

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE

    def window(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as a fresh float32 array in [-1, 1]."""
        part = self.samples[start:stop]
        if part.dtype == DTYPES["int16"]:
            return part.astype(np.float32) * np.float32(_INT16_SCALE)
        return np.array(part, dtype=np.float32)

    def windows(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start sample, float32 window) covering the audio in order; the last may be short."""
        for start in range(0, self.num_samples, size):
            yield start, self.window(start, min(start + size, self.num_samples))

    @classmethod
    def from_array(cls, samples: np.ndarray) -> PcmAudio:
        """Wrap in-memory samples (int16, or float32 in [-1, 1]) without copying."""
        if samples.ndim != 1:
            raise AudioError(422, "audio", f"audio must be mono (1-D); got shape {samples.shape}")
        if samples.dtype not in (DTYPES["int16"], DTYPES["float32"]):
            raise AudioError(422, "dtype", f"audio dtype {samples.dtype} is not int16 or float32")
        audio = cls(samples)
        _check_values(audio)
        return audio


def check_declared(sample_rate: int, dtype: str) -> np.dtype:
    """Validate the declared format fields; returns the numpy dtype to read the bytes as."""
    if dtype not in DTYPES:
        raise AudioError(
            422,
            "dtype",
            f"dtype {dtype!r} is not supported: send raw little-endian 'int16' or 'float32' samples",
        )
    if sample_rate != SAMPLE_RATE:
        raise AudioError(
            422,
            "sample_rate",
            f"sample_rate {sample_rate} is not supported: resample to {SAMPLE_RATE} Hz mono before sending",
        )
    return DTYPES[dtype]


def open_pcm(path: Path, *, sample_rate: int, dtype: str, max_seconds: float) -> PcmAudio:
    """Validate and memory-map a raw PCM file; raises AudioError with the HTTP status to return."""
    np_dtype = check_declared(sample_rate, dtype)
    size = path.stat().st_size
    if size == 0:
        raise AudioError(400, "audio", "audio is empty: send at least one sample of 16 kHz mono PCM")
    if size % np_dtype.itemsize:
        raise AudioError(
            400,
            "audio",
            f"audio is {size} bytes, not a whole number of {dtype} samples ({np_dtype.itemsize} bytes "
            "each): send raw samples only (no WAV header) and check the declared dtype",
        )
    seconds = size / np_dtype.itemsize / SAMPLE_RATE
    if seconds > max_seconds:
        raise AudioError(
            413,
            "audio",
            f"audio is {seconds:.1f} s long, over the {max_seconds:g} s limit: split it and send the parts",
        )
    audio = PcmAudio(np.memmap(path, dtype=np_dtype, mode="r"))
    _check_values(audio)
    return audio


def _check_values(audio: PcmAudio) -> None:
    if audio.num_samples == 0:
        raise AudioError(400, "audio", "audio is empty: send at least one sample of 16 kHz mono PCM")
    if audio.samples.dtype != DTYPES["float32"]:
        return  # every int16 bit pattern is a valid sample
    for start in range(0, audio.num_samples, _SCAN_SAMPLES):
        block = audio.samples[start : start + _SCAN_SAMPLES]
        finite = np.isfinite(block)
        if not finite.all():
            first = start + int(np.argmin(finite))
            raise AudioError(
                422,
                "audio",
                f"audio contains NaN or infinite samples (first at sample {first}, "
                f"{first / SAMPLE_RATE:.2f} s): send finite float32 values in [-1, 1]",
            )
        peak = float(np.abs(block).max())
        if peak > _FLOAT_PEAK_LIMIT:
            raise AudioError(
                422,
                "audio",
                f"float32 samples must lie in [-1, 1] but reach {peak:g}: scale int16 values by 1/32768 "
                "or send dtype=int16",
            )

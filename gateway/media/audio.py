"""Decoded audio to 16 kHz mono float32 on the media timeline, bounded by max_duration_s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import av
import numpy as np

from gateway.media.limits import MediaLimits
from gateway.media.types import AUDIO_RATE


class AudioSink:
    """Resamples decoded audio to 16 kHz mono float32, bounded by max_duration_s."""

    def __init__(self, limits: MediaLimits, too_long: Callable[[float], Exception]) -> None:
        self.too_long = too_long
        self.max_duration_s = limits.max_duration_s
        self.max_samples = int((limits.max_duration_s + 1.0) * AUDIO_RATE)
        self.resampler = self._resampler()
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.start_s: float | None = None

    @staticmethod
    def _resampler() -> av.AudioResampler:
        return av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)

    def add(self, frame: Any, t: float) -> None:
        if self.start_s is None and frame.pts is not None:
            self.start_s = max(t, 0.0)
            if self.start_s > self.max_duration_s:
                raise self.too_long(self.start_s)
        try:
            self._take(self.resampler.resample(frame))
        except ValueError:
            # The stream changed sample format, layout or rate mid-way: drain the old
            # resampler and start a new one for the new parameters.
            self._take(self.resampler.resample(None))
            self.resampler = self._resampler()
            self._take(self.resampler.resample(frame))

    def _take(self, frames: list[Any]) -> None:
        for out in frames:
            self.samples += out.samples
            if self.samples > self.max_samples:
                raise self.too_long(self.samples / AUDIO_RATE)
            self.chunks.append(out.to_ndarray().reshape(-1).copy())

    def finish(self) -> np.ndarray | None:
        self._take(self.resampler.resample(None))
        if not self.chunks:
            return None
        pad = round((self.start_s or 0.0) * AUDIO_RATE)
        if pad > 0:
            # Keep the audio on the media timeline, so transcript times line up with frames.
            self.chunks.insert(0, np.zeros(pad, dtype=np.float32))
        return np.concatenate(self.chunks).astype(np.float32, copy=False)

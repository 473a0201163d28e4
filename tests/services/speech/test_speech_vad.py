"""Voice-activity detection: streaming Silero, region building and packing (services.speech.vad)."""

from __future__ import annotations

import itertools

import numpy as np
from faster_whisper.vad import get_vad_model

from modgate.tools.mediagen import SR, Utterance
from services.speech.audio import PcmAudio
from services.speech.pipeline import ChunkLayout
from services.speech.vad import FRAME, Region, SileroVad, VadParams, pack, probabilities_to_regions


def frames(pattern: list[tuple[float, float]]) -> np.ndarray:
    """Frame probabilities from (seconds, probability) runs."""
    return np.concatenate([np.full(round(s * SR / FRAME), p, np.float32) for s, p in pattern])


NO_PAD = VadParams(pad_s=0.0, min_silence_s=0.5, min_speech_s=0.25)


def test_streaming_probabilities_match_faster_whispers_one_shot_silero(
    spoken_track: tuple[np.ndarray, list[Utterance]],
) -> None:
    """Carrying state over 30 s windows gives what one pass over the whole audio gives."""
    audio, _ = spoken_track
    long = np.concatenate([audio, audio, audio])  # > 60 s: three windows
    samples = long.astype(np.float32) / 32768.0
    padded = np.pad(samples, (0, FRAME - samples.shape[0] % FRAME))
    reference = np.asarray(get_vad_model()(padded)).reshape(-1)
    ours = SileroVad().frame_probabilities(PcmAudio.from_array(long))
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_regions_follow_speech_with_hysteresis() -> None:
    probs = frames([(1.0, 0.0), (2.0, 0.9), (0.3, 0.4), (1.0, 0.9), (2.0, 0.1), (1.5, 0.8), (1.0, 0.0)])
    regions = probabilities_to_regions(probs, probs.shape[0] * FRAME, NO_PAD)
    # The 0.3 s dip at 0.4 (between the thresholds) does not split the first utterance.
    expected = [(1.0, 4.3), (6.3, 7.8)]
    assert len(regions) == len(expected)
    for region, (start, stop) in zip(regions, expected, strict=True):
        # Frame runs are rounded to 32 ms frames.
        assert abs(region.start / SR - start) < 0.1 and abs(region.stop / SR - stop) < 0.1, region


def test_short_blips_are_dropped_and_padding_is_added() -> None:
    probs = frames([(2.0, 0.0), (0.1, 0.95), (2.0, 0.0), (1.0, 0.9), (2.0, 0.0)])
    regions = probabilities_to_regions(probs, probs.shape[0] * FRAME, VadParams(pad_s=0.3))
    assert len(regions) == 1
    assert abs(regions[0].start / SR - (4.1 - 0.3)) < 0.05
    assert abs(regions[0].stop / SR - (5.1 + 0.3)) < 0.05


def test_speech_running_to_the_end_is_kept() -> None:
    probs = frames([(1.0, 0.0), (2.0, 0.9)])
    (region,) = probabilities_to_regions(probs, probs.shape[0] * FRAME, NO_PAD)
    assert region.stop == probs.shape[0] * FRAME


def test_long_speech_is_split_to_fit_whisper_windows() -> None:
    probs = frames([(70.0, 0.9)])
    regions = probabilities_to_regions(probs, probs.shape[0] * FRAME, VadParams())
    assert len(regions) == 3
    assert all(r.samples <= 30 * SR for r in regions)
    assert regions[0].start == 0 and regions[-1].stop == probs.shape[0] * FRAME
    assert all(a.stop <= b.start for a, b in itertools.pairwise(regions))


def test_pack_fills_whisper_windows_in_order() -> None:
    regions = [Region(i * 10 * SR, i * 10 * SR + 8 * SR) for i in range(7)]  # 7 x 8 s
    groups = pack(regions)
    assert [len(g) for g in groups] == [3, 3, 1]
    assert [r for g in groups for r in g] == regions
    assert all(sum(r.samples for r in g) <= 30 * SR for g in groups)


def test_chunk_layout_maps_packed_time_back_and_clamps_overshoot() -> None:
    layout = ChunkLayout([Region(2 * SR, 5 * SR), Region(10 * SR, 12 * SR)])
    assert layout.span(0.5, 2.0) == (2.5, 4.0)
    assert layout.span(3.5, 4.5) == (10.5, 11.5)  # inside the second region
    # A last word stretched 0.4 s into the next region ends where its own region ends.
    assert layout.span(2.5, 3.4) == (4.5, 5.0)
    assert layout.span(4.8, 9.0) == (11.8, 12.0)

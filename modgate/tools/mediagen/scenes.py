"""Scene clips for hash-bank tests and benchmarks, and the edits a re-upload goes through (PyAV).

Each clip is a sequence of scenes drawn from a seed: a smooth colour field, a few filled
shapes (circles, boxes, triangles), a striped or checkered patch, slowly panning, so two
seeds give unrelated pictures and frames a second apart differ the way camera footage does.
(The MediaSpec clips of this package all look alike to PDQ: frame-number blocks and a moving
box over a flat background; these do not.)

    make_clip(path, seed=1, duration_s=20)                    # 960x540, 10 fps, libx264
    transcode(src, dst, bitrate=150_000)                       # a much lower bitrate
    transcode(src, dst, size=(640, 360)); transcode(src, dst, brightness=1.1)
    transcode(src, dst, trim_start_s=3.0)
    concatenate([a, b, c], dst)                                # b embedded between a and c
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 10
SCENE_S = 4.0
PAN_PX_PER_S = 10.0  # at 1280 px wide (scaled with the width): about 1% of the width a second


def _smooth_field(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A low-frequency colour field: a coarse random grid, bilinearly upsampled."""
    grid = rng.integers(0, 256, size=(rng.integers(3, 7), rng.integers(4, 9), 3)).astype(np.float32)
    ys = np.linspace(0, grid.shape[0] - 1, height)
    xs = np.linspace(0, grid.shape[1] - 1, width)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, grid.shape[0] - 1), np.minimum(x0 + 1, grid.shape[1] - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def _draw_shapes(rng: np.random.Generator, image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(4, 9))):
        colour = rng.integers(0, 256, size=3)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        size = rng.uniform(0.06, 0.22) * height
        y0, y1 = int(max(cy - 2 * size, 0)), int(min(cy + 2 * size, height))
        x0, x1 = int(max(cx - 2 * size, 0)), int(min(cx + 2 * size, width))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        kind = rng.integers(0, 3)
        if kind == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < size**2
        elif kind == 1:
            half_h, half_w = size * rng.uniform(0.4, 1.2), size * rng.uniform(0.6, 1.8)
            mask = (np.abs(yy - cy) < half_h) & (np.abs(xx - cx) < half_w)
        else:
            mask = (yy - (cy - size) > 2 * np.abs(xx - cx)) & (yy < cy + size)
        image[y0:y1, x0:x1][mask] = colour
    # A patterned patch (stripes or checks at a seed-dependent frequency).
    y0, x0 = int(rng.uniform(0, height * 0.6)), int(rng.uniform(0, width * 0.6))
    h, w = int(height * rng.uniform(0.15, 0.35)), int(width * rng.uniform(0.15, 0.35))
    period = int(rng.integers(6, 24))
    py, px = np.mgrid[0:h, 0:w]
    pattern = ((px // period) % 2) if rng.integers(0, 2) else (((px // period) + (py // period)) % 2)
    colours = rng.integers(0, 256, size=(2, 3))
    image[y0 : y0 + h, x0 : x0 + w] = colours[pattern]


def scene_pictures(seed: int, scenes: int, height: int, width: int, margin: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(scenes):
        picture = _smooth_field(rng, height + margin, width + margin)
        _draw_shapes(rng, picture)
        pictures.append(np.clip(picture, 0, 255).astype(np.uint8))
    return pictures


def clip_frames(
    seed: int, duration_s: float, width: int, height: int, fps: int = FPS
) -> Iterator[np.ndarray]:
    scale = width / 1280
    pan = PAN_PX_PER_S * scale
    margin = int(pan * SCENE_S) + 2
    scenes = int(np.ceil(duration_s / SCENE_S))
    pictures = scene_pictures(seed, scenes, height, width, margin)
    directions = np.random.default_rng(seed + 10_000).uniform(0, 2 * np.pi, size=scenes)
    for index in range(round(duration_s * fps)):
        t = index / fps
        scene = min(int(t // SCENE_S), scenes - 1)
        into = t - scene * SCENE_S
        dy = int(margin / 2 + np.sin(directions[scene]) * pan * (into - SCENE_S / 2))
        dx = int(margin / 2 + np.cos(directions[scene]) * pan * (into - SCENE_S / 2))
        dy, dx = min(max(dy, 0), margin), min(max(dx, 0), margin)
        yield pictures[scene][dy : dy + height, dx : dx + width]


def _encode(frames: Iterator[np.ndarray], path: Path, fps: int, *, bitrate: int | None, crf: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = None
        for index, image in enumerate(frames):
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "ultrafast", **({} if bitrate else {"crf": str(crf)})}
                if bitrate:
                    stream.bit_rate = bitrate
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        if stream is not None:
            out.mux(stream.encode(None))
    return path


def make_clip(
    path: Path, *, seed: int, duration_s: float, width: int = 960, height: int = 540, crf: int = 20
) -> Path:
    return _encode(clip_frames(seed, duration_s, width, height), path, FPS, bitrate=None, crf=crf)


def decoded_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield float(frame.time), frame.to_ndarray(format="rgb24")


def transcode(
    src: Path,
    dst: Path,
    *,
    bitrate: int | None = None,
    size: tuple[int, int] | None = None,
    brightness: float = 1.0,
    trim_start_s: float = 0.0,
) -> Path:
    """Re-encode `src`: another bitrate, size (width, height), brightness factor, or start."""

    def edited() -> Iterator[np.ndarray]:
        for t, image in decoded_frames(src):
            if t < trim_start_s - 1e-6:
                continue
            if size is not None:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                    width=size[0], height=size[1]
                )
                image = frame.to_ndarray(format="rgb24")
            if brightness != 1.0:
                image = np.clip(image.astype(np.float32) * brightness, 0, 255).astype(np.uint8)
            yield image

    return _encode(edited(), dst, FPS, bitrate=bitrate, crf=23)


def concatenate(parts: Sequence[Path], dst: Path, size: tuple[int, int] = (960, 540)) -> Path:
    """The parts one after the other, each scaled to `size` (width, height)."""

    def frames() -> Iterator[np.ndarray]:
        for part in parts:
            for _, image in decoded_frames(part):
                if (image.shape[1], image.shape[0]) != size:
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    image = frame.reformat(width=size[0], height=size[1]).to_ndarray(format="rgb24")
                yield image

    return _encode(frames(), dst, FPS, bitrate=None, crf=23)


# The edits a re-upload goes through, as the hash-bank tests and benchmarks name them.
REUPLOAD_EDITS = ("lower bitrate", "640x360", "brightness +10%", "first 3 s trimmed", "embedded")
EMBED_LEAD_S = 10.0  # unrelated footage before and after the clip in the "embedded" edit


def reupload(original: Path, work: Path, edit: str) -> tuple[Path, int]:
    """`original` after one of REUPLOAD_EDITS, written under `work`, and where the clip starts in
    it (ms; negative: its start was cut)."""
    if edit == "lower bitrate":
        return transcode(original, work / "low.mp4", bitrate=120_000), 0
    if edit == "640x360":
        return transcode(original, work / "small.mp4", size=(640, 360)), 0
    if edit == "brightness +10%":
        return transcode(original, work / "bright.mp4", brightness=1.1), 0
    if edit == "first 3 s trimmed":
        return transcode(original, work / "trimmed.mp4", trim_start_s=3.0), -3000
    if edit != "embedded":
        raise ValueError(f"unknown edit {edit!r}; one of {', '.join(REUPLOAD_EDITS)}")
    before = make_clip(work / "before.mp4", seed=101, duration_s=EMBED_LEAD_S)
    after = make_clip(work / "after.mp4", seed=102, duration_s=EMBED_LEAD_S)
    return concatenate([before, original, after], work / "embedded.mp4"), int(EMBED_LEAD_S * 1000)

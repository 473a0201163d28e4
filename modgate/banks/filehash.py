"""Hash a media file the way moderation sees it: the bytes (MD5, SHA-256) and the sampled frames (PDQ).

A video is split by the gateway's own splitter (gateway.media.splitter.split_media) with the
gateway's sampling (GatewayConfig().split_options(): the same MODGATE_GATEWAY_* settings), so
a banked frame is the frame a moderated upload of the same file produces. A still image
(JPEG, PNG, WebP...) is one frame, downscaled like a sampled video frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from modgate.banks.digests import ContentDigests
from modgate.banks.entries import BankEntry
from modgate.banks.pdq import pdq_frames
from modgate.banks.signals import SignalType


class MediaHashError(ValueError):
    """A file that is neither a video the gateway can split nor an image."""


@dataclass(frozen=True)
class HashedFrame:
    timestamp_ms: int
    pdq: str  # 64 hex digits
    quality: int


@dataclass(frozen=True)
class HashedMedia:
    path: Path
    kind: Literal["video", "image"]
    md5: str
    sha256: str
    size: int
    frames: tuple[HashedFrame, ...]
    duration_ms: int = 0


def hash_media_file(path: Path, *, fps: float = 0.0) -> HashedMedia:
    """Digests of the file's bytes and PDQ + quality of its sampled frames (`fps`: 0 = the
    gateway's sampling rate; the gateway's frame cap applies either way)."""
    from gateway.config import GatewayConfig
    from gateway.errors import GatewayError, UnsupportedMedia
    from gateway.media.splitter import split_media

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaHashError(f"cannot read {path} ({exc.strerror or exc})") from None
    digests = ContentDigests.of_bytes(data)
    config = GatewayConfig()
    try:
        media = split_media(
            path, config.split_options(fps=fps, audio=False), config.media_limits(config.max_stream_bytes)
        )
    except UnsupportedMedia:
        return _hash_image(path, digests, config.frame_max_side)
    except GatewayError as exc:
        raise MediaHashError(f"{path}: the gateway's splitter refused it ({exc})") from None
    if not media.frames:
        raise MediaHashError(f"{path}: the splitter sampled no video frames (no decodable video stream)")
    codes, qualities = pdq_frames([frame.image for frame in media.frames])
    return HashedMedia(
        path=path,
        kind="video",
        md5=digests.md5,
        sha256=digests.sha256,
        size=digests.size,
        frames=tuple(
            HashedFrame(frame.timestamp_ms, code.tobytes().hex(), int(quality))
            for frame, code, quality in zip(media.frames, codes, qualities, strict=True)
        ),
        duration_ms=media.info.duration_ms,
    )


def _hash_image(path: Path, digests: ContentDigests, max_side: int) -> HashedMedia:
    try:
        with Image.open(path) as image:
            image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaHashError(
            f"{path} is neither a video the gateway can split (mp4, mov, webm, mkv) nor an image ({exc})"
        ) from None
    codes, qualities = pdq_frames([rgb])
    frame = HashedFrame(0, codes[0].tobytes().hex(), int(qualities[0]))
    return HashedMedia(path, "image", digests.md5, digests.sha256, digests.size, (frame,))


def media_entries(
    media: HashedMedia,
    *,
    category: str,
    source: str,
    added_at: str,
    note: str = "",
    content_id: str | None = None,
    min_quality: int,
) -> list[BankEntry]:
    """The entries banking `media` adds: its MD5 and SHA-256, and the PDQ of each sampled
    frame at or above `min_quality` (with the frame's time)."""
    meta = {"category": category, "source": source, "note": note, "added_at": added_at}
    content = content_id or media.path.name
    entries = [
        BankEntry("", SignalType.MD5, media.md5, content_id=content, **meta),
        BankEntry("", SignalType.SHA256, media.sha256, content_id=content, **meta),
    ]
    entries += [
        BankEntry("", SignalType.PDQ, f.pdq, content_id=content, content_ms=f.timestamp_ms, **meta)
        for f in media.frames
        if f.quality >= min_quality
    ]
    return entries

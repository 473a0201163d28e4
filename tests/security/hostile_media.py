"""Builders for malformed and hostile media, made at test time from real encodes.

Every builder returns container bytes. They start from small valid files (PyAV encodes, like
modgate/tools/mediagen) and then lie: truncate them, rewrite a header field, add streams by the
thousand, flood subtitles, patch a codec id, or wrap them in other formats.

    crafted_h264_mp4(8192, 8192)   # an mp4 whose SPS declares 8192x8192 but holds 64x48 slices
    vp8_webm(bitstream=(8000, 8000))  # the container says 64x48, the VP8 frames say 8000x8000
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from modgate.tools.mediagen import ASS_HEADER

SMALL = (64, 48)


# --- tiny valid encodes --------------------------------------------------------------------------


def _frames(width: int, height: int, count: int) -> Iterator[av.VideoFrame]:
    for i in range(count):
        image = np.full((height, width, 3), (i * 37) % 256, np.uint8)
        image[: height // 4, : (i % 4 + 1) * width // 4] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, 25)
        yield frame


def encode(
    container: str = "mp4",
    *,
    video: str | None = "libx264",
    audio: str | None = None,
    size: tuple[int, int] = SMALL,
    frames: int = 10,
    metadata: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """A short, small valid file in any format PyAV writes (mp4, avi, flv, mpegts, ogg...)."""
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format=container)
    for key, value in (metadata or {}).items():
        out.metadata[key] = value
    stream = None
    if video:
        stream = out.add_stream(video, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = {"gif": "rgb8", "png": "rgb24"}.get(video, "yuv420p")
        defaults = {"libx264": {"preset": "ultrafast"}, "libx265": {"x265-params": "log-level=none"}}
        stream.options = options or defaults.get(video, {})
    sound = None
    if audio:
        sound = out.add_stream(audio, rate=48_000 if audio in ("libopus", "aac") else 44_100)
        sound.layout = "mono"
    if stream is not None:
        for frame in _frames(*size, frames):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if sound is not None:
        rate = sound.codec_context.sample_rate
        fmt = sound.codec_context.format.name
        step = sound.codec_context.frame_size or 1024
        total = int(rate * max(frames / 25, 0.5))
        for offset in range(0, total, step):
            samples = (0.1 * np.sin(np.arange(offset, offset + step) * 0.05)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = offset
            frame.time_base = Fraction(1, rate)
            if fmt != "flt":
                frame = av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame)[0]
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    out.close()
    return buffer.getvalue()


# --- ISO BMFF surgery ----------------------------------------------------------------------------

# Bytes between a box header and its first child, for the sample-description boxes we walk.
_CHILD_OFFSET = {b"stsd": 8, b"avc1": 78}


def box_path(data: bytes | bytearray, path: list[bytes], start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of each box along `path` (e.g. moov/trak/mdia/...); KeyError when missing."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:
            break
        if kind == path[0]:
            if len(path) == 1:
                return [pos]
            inner = pos + 8 + _CHILD_OFFSET.get(kind, 0)
            return [pos, *box_path(data, path[1:], inner, pos + size)]
        pos += size
    raise KeyError(path[0])


def replace_box_body(data: bytes, path: list[bytes], body: bytes) -> bytes:
    """`data` with the last box of `path` holding `body`; every enclosing box size fixed up.
    Only valid when moov follows mdat (PyAV's default), so no chunk offset moves."""
    out = bytearray(data)
    offsets = box_path(out, path)
    last = offsets[-1]
    (size,) = struct.unpack(">I", out[last : last + 4])
    delta = len(body) - (size - 8)
    out[last + 8 : last + size] = body
    for offset in offsets:
        (old,) = struct.unpack(">I", out[offset : offset + 4])
        out[offset : offset + 4] = struct.pack(">I", old + delta)
    if out.find(b"mdat") > offsets[0]:
        raise ValueError("moov precedes mdat: resizing it would move the media data")
    return bytes(out)


# --- H.264 SPS rewriting -------------------------------------------------------------------------


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)


class _BitWriter:
    def __init__(self) -> None:
        self.out: list[int] = []

    def bits(self, n: int, value: int) -> None:
        self.out += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        value += 1
        self.bits(value.bit_length() - 1, 0)
        self.bits(value.bit_length(), value)

    def data(self) -> bytes:
        bits = self.out + [0] * (-len(self.out) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def _unescape(payload: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _escape(payload: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in payload:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def resize_sps(nal: bytes, width_mbs: int, height_mbs: int) -> bytes:
    """A baseline-profile SPS NAL unit rewritten to declare width_mbs x height_mbs macroblocks."""
    reader, writer = _BitReader(_unescape(nal[1:])), _BitWriter()
    profile = reader.bits(8)
    if profile not in (66, 77, 88):
        raise ValueError(f"only baseline/main SPS can be rewritten here, got profile {profile}")
    writer.bits(8, profile)
    writer.bits(8, reader.bits(8))  # constraint flags
    writer.bits(8, reader.bits(8))  # level
    writer.ue(reader.ue())  # seq_parameter_set_id
    writer.ue(reader.ue())  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    writer.ue(poc_type)
    if poc_type == 0:
        writer.ue(reader.ue())
    elif poc_type == 1:
        raise ValueError("pic_order_cnt_type 1 is not handled")
    writer.ue(reader.ue())  # max_num_ref_frames
    writer.bits(1, reader.bits(1))  # gaps_in_frame_num_value_allowed_flag
    reader.ue()
    reader.ue()
    writer.ue(width_mbs - 1)
    writer.ue(height_mbs - 1)
    while reader.pos < len(reader.data) * 8:  # the rest, stop bit included, verbatim
        writer.bits(1, reader.bits(1))
    body = writer.data().rstrip(b"\x00")
    return nal[:1] + _escape(body)


def crafted_h264_mp4(width: int, height: int) -> bytes:
    """A 64x48 H.264 mp4 whose SPS (in avcC) declares width x height."""
    data = encode("mp4", options={"preset": "ultrafast", "profile": "baseline"})
    path = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1", b"avcC"]
    avcc_at = box_path(data, path)[-1]
    (size,) = struct.unpack(">I", data[avcc_at : avcc_at + 4])
    body = data[avcc_at + 8 : avcc_at + size]
    (sps_len,) = struct.unpack(">H", body[6:8])
    sps = resize_sps(body[8 : 8 + sps_len], width // 16, height // 16)
    return replace_box_body(data, path, body[:6] + struct.pack(">H", len(sps)) + sps + body[8 + sps_len :])


def patch_fourcc(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first sample-entry fourcc (e.g. avc1 -> zzzz): a codec nobody decodes."""
    at = data.find(old, data.find(b"stsd"))
    if at < 0:
        raise KeyError(old)
    return data[:at] + new + data[at + len(new) :]


def mvhd_duration(data: bytes, duration: int) -> bytes:
    """Rewrite the movie header's duration (version 0: a 32-bit field at offset 24)."""
    at = box_path(data, [b"moov", b"mvhd"])[-1]
    out = bytearray(data)
    out[at + 24 : at + 28] = struct.pack(">I", duration)
    return bytes(out)


# --- other lies ----------------------------------------------------------------------------------


def vp8_webm(declared: tuple[int, int] = SMALL, bitstream: tuple[int, int] = SMALL, frames: int = 5) -> bytes:
    """VP8 in webm where the container declares one size and the keyframes another."""
    context = av.CodecContext.create("libvpx", "w")
    context.width, context.height, context.pix_fmt = *SMALL, "yuv420p"
    context.time_base = Fraction(1, 25)
    context.framerate = 25
    packets: list[bytes] = []
    for frame in _frames(*SMALL, frames):
        packets += [bytes(p) for p in context.encode(frame.reformat(format="yuv420p"))]
    packets += [bytes(p) for p in context.encode(None)]
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format="webm")
    stream = out.add_mux_stream("vp8", width=declared[0], height=declared[1])
    for index, payload in enumerate(packets):
        data = bytearray(payload)
        keyframe = not data[0] & 1
        if keyframe and data[3:6] == b"\x9d\x01\x2a":
            data[6:8] = struct.pack("<H", bitstream[0] & 0x3FFF)
            data[8:10] = struct.pack("<H", bitstream[1] & 0x3FFF)
        packet = av.Packet(bytes(data))
        packet.stream = stream
        packet.time_base = Fraction(1, 25)
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.is_keyframe = keyframe
        out.mux(packet)
    out.close()
    return buffer.getvalue()


def sparse_timeline(container: str, last_pts_s: float) -> bytes:
    """Two video frames: at 0 s and at `last_pts_s` (a tiny file spanning days)."""
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format=container)
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = *SMALL, "yuv420p"
    stream.options = {"preset": "ultrafast"}
    stream.codec_context.time_base = Fraction(1, 1000)
    for index, frame in enumerate(_frames(*SMALL, 2)):
        frame.time_base = Fraction(1, 1000)
        frame.pts = 0 if index == 0 else int(last_pts_s * 1000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    return buffer.getvalue()


def many_streams(count: int, codec: str = "subrip") -> bytes:
    """An mkv with `count` (empty) subtitle streams and one real video stream."""
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format="matroska")
    video = out.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = *SMALL, "yuv420p"
    video.options = {"preset": "ultrafast"}
    for _ in range(count):
        out.add_mux_stream(codec)
    for frame in _frames(*SMALL, 3):
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    out.close()
    return buffer.getvalue()


def subtitle_flood(
    cues: int, text: str = "flood", container: str = "matroska", codec: str = "subrip", video: bool = True
) -> bytes:
    """A file with `cues` subtitle cues (1 ms each), over a 1-frame video unless video=False."""
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format=container)
    stream = None
    if video:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *SMALL, "yuv420p"
        stream.options = {"preset": "ultrafast"}
    subtitle = out.add_stream(codec)
    subtitle.codec_context.subtitle_header = ASS_HEADER.encode()
    for i in range(cues):
        event = f"{i},0,Default,,0,0,0,,{text}".encode()
        cue = av.subtitles.subtitle.SubtitleSet.create(text=event, start=0, end=1, pts=i)
        packet = subtitle.codec_context.encode_subtitle(cue)
        packet.stream = subtitle
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = i
        packet.duration = 1
        out.mux(packet)
    if stream is not None:
        for frame in _frames(*SMALL, 1):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out.close()
    return buffer.getvalue()


def duplicate_tracks(data: bytes, copies: int) -> bytes:
    """An mp4 whose moov repeats its first trak `copies` more times (thousands of streams that
    FFmpeg's muxers would never write)."""
    moov = box_path(data, [b"moov"])[0]
    trak = box_path(data, [b"moov", b"trak"])[-1]
    (trak_size,) = struct.unpack(">I", data[trak : trak + 4])
    (moov_size,) = struct.unpack(">I", data[moov : moov + 4])
    if data.find(b"mdat") > moov:
        raise ValueError("moov precedes mdat")
    copy = data[trak : trak + trak_size]
    grown = struct.pack(">I", moov_size + copies * trak_size)
    return data[:moov] + grown + data[moov + 4 : trak] + copy * (copies + 1) + data[trak + trak_size :]


def zip_with(data: bytes, name: str = "payload.txt", payload: bytes = b"PK polyglot") -> bytes:
    """`data` with a ZIP archive appended (a file that is a video and a zip at once)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, payload)
    return data + buffer.getvalue()


def matroska_codec_id(data: bytes, old: bytes, new: bytes) -> bytes:
    """Swap a Matroska CodecID string for another of the same length (e.g. V_MPEG4/ISO/AVC)."""
    if len(old) != len(new):
        raise ValueError("same length only: EBML sizes are not rewritten")
    at = data.find(old)
    if at < 0:
        raise KeyError(old)
    return data[:at] + new + data[at + len(old) :]

"""The hostile corpus: malformed and hostile inputs, each with the gRPC status the proto
documents for it (proto/modgate/v1/moderation.proto, "Status codes returned").

A Case says how the input travels (inline media, ModerateStream data, a file under the media
root sent as file://, a raw media_uri, bare request fields, raw stream messages) and which
statuses are correct. "OK" means a verdict. Where the documented behaviour allows two outcomes
(a truncated upload is refused, a complete file with a damaged tail is tolerated) both are
listed, and the reason says why.

URIs may hold {root} (the media root) and {http} (a loopback HTTP server that must never see a
connection: the gateway refuses loopback before connecting).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from modgate.tools.mediagen import random_bytes
from modgate.v1 import moderation_pb2 as pb
from tests.security import hostile_media as hm

OK = "OK"
INVALID = "INVALID_ARGUMENT"
EXHAUSTED = "RESOURCE_EXHAUSTED"
DENIED = "PERMISSION_DENIED"

KiB = 1024
MiB = 1024 * KiB
# Limits of the corpus gateway (tests/security/test_hostile_corpus.py).
UNARY_LIMIT = 2 * MiB
STREAM_LIMIT = 4 * MiB
# Hosts the corpus gateway allowlists although they are not public: the address check must
# still refuse each of them (MODGATE_GATEWAY_URI_FETCH_ALLOWED_NETWORKS is empty there).
NON_PUBLIC_HOSTS = (
    "127.0.0.1",
    "localhost",
    "::1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::ffff:127.0.0.1",
    "fd00:ec2::254",
    "64:ff9b::a00:1",
    "224.0.0.1",
)


@dataclass(frozen=True)
class Case:
    name: str
    expect: tuple[str, ...]
    media: bytes | None = None
    stream: bytes | None = None
    file: bytes | None = None
    sparse: int = 0  # with file=b"": a sparse file of this many bytes
    chunk: int = 64 * 1024  # ModerateStream data message size
    uri: str | None = None
    fields: dict[str, object] = field(default_factory=dict)
    messages: tuple[pb.ModerateChunk, ...] | None = None
    fragment: str = ""  # must appear in the status details
    why: str = ""


def _truncations() -> list[Case]:
    mp4 = hm.encode("mp4", audio="aac")
    mkv = hm.encode("matroska", audio="libopus")
    webm = hm.encode("webm", video="libvpx-vp9", audio="libopus")
    cases = []
    # PyAV writes moov (the index) after mdat: cutting anywhere before it loses the index.
    for fraction in (0.001, 0.01, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75):
        cases.append(Case(f"mp4 cut at {fraction:.1%}", (INVALID,), media=mp4[: int(len(mp4) * fraction)]))
    for fraction in (0.9, 0.97, 0.999):
        cases.append(
            Case(
                f"mp4 cut at {fraction:.1%}",
                (INVALID, OK),
                media=mp4[: int(len(mp4) * fraction)],
                why="only the tail of the index is gone: what remains may still describe whole tracks",
            )
        )
    for fraction in (0.02, 0.05):
        cases.append(Case(f"mkv cut at {fraction:.0%}", (INVALID,), media=mkv[: int(len(mkv) * fraction)]))
    for name, data in (("mkv", mkv), ("webm", webm)):
        for fraction in (0.1, 0.2, 0.5, 0.8, 0.95):
            cases.append(
                Case(
                    f"{name} cut at {fraction:.0%}",
                    (INVALID, OK),
                    media=data[: int(len(data) * fraction)],
                    why="matroska needs no index: a short clip cut late is a damaged tail, tolerated",
                )
            )
    # The same cut, streamed instead of inline.
    cases.append(Case("mp4 cut at 50%, streamed", (INVALID,), stream=mp4[: len(mp4) // 2]))
    return cases


def _garbage() -> list[Case]:
    mp4 = hm.encode("mp4", audio="aac")
    mkv = hm.encode("matroska", audio="libopus")
    return [
        Case("one zero byte", (INVALID,), media=b"\0", fragment="not a supported container"),
        Case("64 KiB of zero bytes", (INVALID,), media=bytes(64 * KiB), fragment="not a supported container"),
        Case("zero bytes streamed", (INVALID,), stream=bytes(300 * KiB)),
        Case("empty file under the root", (INVALID,), file=b"", fragment="empty"),
        Case("1 random byte", (INVALID,), media=random_bytes(1, seed=11)),
        Case("1 KiB random", (INVALID,), media=random_bytes(KiB, seed=12)),
        Case("64 KiB random", (INVALID,), media=random_bytes(64 * KiB, seed=13)),
        Case("1 MiB random", (INVALID,), media=random_bytes(MiB, seed=14)),
        Case(
            "1 MiB random, streamed in 1 KiB chunks",
            (INVALID,),
            stream=random_bytes(MiB, seed=15),
            chunk=KiB,
        ),
        Case("bare ftyp box", (INVALID,), media=b"\0\0\0\x18ftypisom\0\0\0\0isom"),
        Case("ftyp then random", (INVALID,), media=b"\0\0\0\x18ftypisom\0\0\0\0isom" + random_bytes(4096, 3)),
        Case("EBML magic then random", (INVALID,), media=b"\x1a\x45\xdf\xa3" + random_bytes(4096, 4)),
        # Polyglots: one file, two formats.
        Case("GIF header + mp4", (INVALID,), media=b"GIF89a" + mp4, fragment="not a supported container"),
        Case("PDF header + mp4", (INVALID,), media=b"%PDF-1.4\n" + mp4, fragment="not a supported container"),
        Case("mp4 + zip archive", (OK,), media=hm.zip_with(mp4), why="trailing bytes after the boxes"),
        Case("mkv + zip archive", (OK,), media=hm.zip_with(mkv)),
        Case("mkv + mp4", (OK,), media=mkv + mp4, why="the mkv is complete; the rest is trailing junk"),
        Case(
            "HTML/JS in mp4 title",
            (OK,),
            media=hm.encode("mp4", metadata={"title": "<script>fetch('http://10.0.0.1')</script>"}),
        ),
        # Playlist/concat scripts would make FFmpeg open other files or URLs: demuxer whitelist.
        Case(
            "HLS playlist naming /etc/passwd",
            (INVALID,),
            media=b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
            fragment="not a supported container",
        ),
        Case(
            "HLS playlist naming a private URL",
            (INVALID,),
            media=b"#EXTM3U\n#EXTINF:1,\nhttp://169.254.169.254/latest/meta-data/\n#EXT-X-ENDLIST\n",
        ),
        Case("ffconcat script", (INVALID,), media=b"ffconcat version 1.0\nfile /etc/passwd\n"),
    ]


def _lies() -> list[Case]:
    return [
        Case(
            "H.264 SPS declares 8192x8192",
            (EXHAUSTED,),
            media=hm.crafted_h264_mp4(8192, 8192),
            fragment="resolution limit",
        ),
        Case("H.264 SPS declares 4096x4096", (EXHAUSTED,), media=hm.crafted_h264_mp4(4096, 4096)),
        Case(
            "H.264 SPS declares 16384x16384",
            (INVALID,),
            media=hm.crafted_h264_mp4(16384, 16384),
            why="beyond what the H.264 decoder accepts: the stream is undecodable",
        ),
        Case(
            "VP8 frames say 8000x8000, container 64x48",
            (EXHAUSTED,),
            media=hm.vp8_webm(bitstream=(8000, 8000)),
            fragment="resolution limit",
        ),
        Case("VP8 frames say 16383x16383", (INVALID,), media=hm.vp8_webm(bitstream=(16383, 16383))),
        Case(
            "webm declares 16383x16383, frames are 64x48",
            (OK,),
            media=hm.vp8_webm(declared=(16383, 16383)),
            why="the decoded frames are what counts, and they are small",
        ),
        Case("mkv spanning 11 days (2 frames)", (EXHAUSTED,), media=hm.sparse_timeline("matroska", 1e6)),
        Case("mp4 spanning 28 hours (2 frames)", (EXHAUSTED,), media=hm.sparse_timeline("mp4", 1e5)),
        Case("mkv spanning 700 s (2 frames)", (EXHAUSTED,), media=hm.sparse_timeline("matroska", 700)),
        Case(
            "mkv with 998 subtitle streams",
            (EXHAUSTED,),
            media=hm.many_streams(998),
            fragment="streams",
        ),
        Case("mkv with 60 subtitle streams", (EXHAUSTED,), media=hm.many_streams(60)),
        Case(
            "mp4 with 3001 tracks",
            (INVALID, EXHAUSTED),
            media=hm.duplicate_tracks(hm.encode("mp4"), 3000),
            why="FFmpeg stops at 1000 streams while reading (undecodable) or the stream limit refuses",
        ),
        Case("mp4 with 21 tracks", (EXHAUSTED,), media=hm.duplicate_tracks(hm.encode("mp4"), 20)),
        Case("12000 subtitle cues (mkv)", (EXHAUSTED,), media=hm.subtitle_flood(12000), fragment="cues"),
        Case(
            "12000 subtitle cues (mp4 mov_text)",
            (EXHAUSTED,),
            media=hm.subtitle_flood(12000, container="mp4", codec="mov_text"),
        ),
        Case(
            "1 MB of subtitle text in 700 cues",
            (EXHAUSTED,),
            stream=hm.subtitle_flood(700, "y" * 1500),
            fragment="characters",
        ),
    ]


def _streams_and_codecs() -> list[Case]:
    return [
        Case("audio-only mp4 (AAC)", (OK,), media=hm.encode("mp4", video=None, audio="aac")),
        Case("audio-only webm (Opus)", (OK,), media=hm.encode("webm", video=None, audio="libopus")),
        Case("video-only mp4", (OK,), media=hm.encode("mp4")),
        Case("video-only mkv", (OK,), media=hm.encode("matroska")),
        Case("subtitle-only mkv", (OK,), media=hm.subtitle_flood(3, video=False)),
        Case("HEVC in mp4", (OK,), media=hm.encode("mp4", video="libx265")),
        Case(
            "mkv with an unknown video codec id",
            (INVALID,),
            media=hm.matroska_codec_id(hm.encode("matroska"), b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/ZZZ"),
            fragment="no decoder",
        ),
        Case(
            "mp4 with an unknown fourcc",
            (INVALID,),
            media=hm.patch_fourcc(hm.encode("mp4"), b"avc1", b"zzzz"),
            fragment="no decoder",
        ),
        Case("AVI (MPEG-4 part 2)", (INVALID,), media=hm.encode("avi", video="mpeg4")),
        Case("MPEG-TS", (INVALID,), media=hm.encode("mpegts")),
        Case("FLV", (INVALID,), media=hm.encode("flv", video="flv")),
        Case("Ogg Opus", (INVALID,), media=hm.encode("ogg", video=None, audio="libopus")),
        Case("WAV", (INVALID,), media=hm.encode("wav", video=None, audio="pcm_s16le")),
        Case("MP3", (INVALID,), media=hm.encode("mp3", video=None, audio="libmp3lame")),
        Case("GIF", (INVALID,), media=hm.encode("gif", video="gif")),
        Case("raw H.264 Annex B", (INVALID,), media=hm.encode("h264")),
    ]


def _oversized() -> list[Case]:
    return [
        Case("media 1 byte over the unary limit", (EXHAUSTED,), media=bytes(UNARY_LIMIT + 1)),
        Case(
            "media 3 MiB over the unary limit (gRPC message cap)",
            (EXHAUSTED,),
            media=bytes(UNARY_LIMIT + 3 * MiB),
        ),
        Case("stream over the stream limit", (EXHAUSTED,), stream=random_bytes(STREAM_LIMIT + 1, seed=5)),
        Case("sparse file over the stream limit", (EXHAUSTED,), file=b"", sparse=STREAM_LIMIT + 1),
        Case("2 KiB title", (INVALID,), fields={"title": "t" * 2048}, fragment="title"),
        Case("1 MiB description", (INVALID,), fields={"description": "d" * MiB}, fragment="description"),
        Case("6000 caption cues", (INVALID,), fields={"captions": [pb.CaptionCue(text="c")] * 6000}),
        Case("10000 hashtags", (INVALID,), fields={"hashtags": ["#x"] * 10000}, fragment="hashtags"),
        Case("request id with control characters", (INVALID,), fields={"request_id": "a\x00b\x1b[2J"}),
        Case("policy name with path traversal", (INVALID,), fields={"policy": "../../etc/passwd"}),
        Case(
            "stream: data before the header",
            (INVALID,),
            messages=(pb.ModerateChunk(data=b"\0" * 10),),
            fragment="header",
        ),
        Case(
            "stream: two headers",
            (INVALID,),
            messages=(pb.ModerateChunk(header=pb.ModerateRequest()),) * 2,
        ),
    ]


def _uris() -> list[Case]:
    uri = lambda name, value, *expect, fragment="": Case(  # noqa: E731
        name, tuple(expect), uri=value, fragment=fragment
    )
    return [
        # Not a URI the gateway serves.
        uri("plain words", "not a uri", INVALID, fragment="scheme"),
        uri("javascript:", "javascript:alert(1)", INVALID),
        uri("data: URI", "data:video/mp4;base64,AAAAGGZ0eXBpc29t", INVALID),
        uri("ftp://", "ftp://127.0.0.1/clip.mp4", INVALID),
        uri("gopher:// (SSRF classic)", "gopher://127.0.0.1:6379/_FLUSHALL", INVALID),
        uri("file on a remote host", "file://evil.example/etc/passwd", INVALID, fragment="host"),
        uri("relative file URI", "file:clip.mp4", INVALID),
        uri("5000-character URI", "file:///" + "a" * 5000, INVALID, fragment="longer"),
        uri("http without a host", "http:///clip.mp4", INVALID),
        uri("unclosed IPv6 bracket", "http://[::1/clip.mp4", INVALID),
        uri("port out of range", "http://127.0.0.1:99999/clip.mp4", INVALID),
        uri("credentials in the URI", "http://user:pw@127.0.0.1/clip.mp4", INVALID, fragment="credentials"),
        # Path traversal and escapes from the media root.
        uri("../ out of the root", "file://{root}/../outside/secret.mp4", INVALID, fragment="traversal"),
        uri("%2e%2e out of the root", "file://{root}/%2e%2e/outside/secret.mp4", INVALID),
        uri("%2E%2E%2F out of the root", "file://{root}/%2E%2E%2Foutside%2Fsecret.mp4", INVALID),
        uri("double-encoded ..", "file://{root}/%252e%252e/outside/secret.mp4", INVALID),
        uri("backslash traversal", "file://{root}/..%5c..%5cetc%5cpasswd", INVALID),
        uri("absolute path outside", "file:///etc/passwd", INVALID, fragment="outside"),
        uri("/proc/self/environ", "file:///proc/self/environ", INVALID),
        uri("/dev/zero", "file:///dev/zero", INVALID),
        uri("symlink to /etc/passwd", "file://{root}/passwd-link", INVALID, fragment="outside"),
        uri("symlink to /dev/zero", "file://{root}/zero-link", INVALID),
        uri("symlink loop", "file://{root}/loop-a", INVALID),
        uri("FIFO under the root", "file://{root}/fifo", INVALID, fragment="regular file"),
        uri("the root directory itself", "file://{root}/", INVALID),
        uri("NUL in the path", "file://{root}/clip.mp4%00.txt", INVALID),
        uri("localhost file URI with traversal", "file://localhost{root}/../../etc/passwd", INVALID),
        # http(s) to non-public addresses: allowlisted by name, refused by address, before connecting.
        *[
            uri(
                f"http to {host}",
                f"http://{'[' + host + ']' if ':' in host else host}:{{http_port}}/clip.mp4",
                DENIED,
                fragment="address",
            )
            for host in NON_PUBLIC_HOSTS
        ],
        uri("https to 10.0.0.1", "https://10.0.0.1/clip.mp4", DENIED, fragment="private"),
        uri(
            "decimal-encoded loopback", "http://2130706433:{http_port}/clip.mp4", DENIED, fragment="allowlist"
        ),
        uri("host not on the allowlist", "http://media.example.net/clip.mp4", DENIED, fragment="allowlist"),
    ]


BUILDERS: tuple[Callable[[], list[Case]], ...] = (
    _truncations,
    _garbage,
    _lies,
    _streams_and_codecs,
    _oversized,
    _uris,
)


@functools.cache
def build() -> list[Case]:
    cases = [case for builder in BUILDERS for case in builder()]
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate case names: {sorted(duplicates)}")
    return cases

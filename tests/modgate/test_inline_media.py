"""The Moderate request's media on the wire (modgate.inline_media): the client's encoding is a
standard ModerateRequest, and the gateway's decoding reads any encoding as protobuf does."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from modgate.inline_media import decode_request, encode_request
from modgate.v1 import moderation_pb2 as pb

MEDIA = random.Random(14).randbytes(300_000)  # 300 kB: a length varint of three bytes


def header() -> pb.ModerateRequest:
    """Every kind of field the request has: strings, repeated strings and messages, a message."""
    return pb.ModerateRequest(
        request_id="r-1",
        content_id="c-1",
        title="a title",
        description="ünïcode description",
        hashtags=["one", "two"],
        captions=[
            pb.CaptionCue(text="hello", start_ms=0, end_ms=900),
            pb.CaptionCue(text="bye", start_ms=1000),
        ],
        locale="pt-BR",
        policy="strict",
        options=pb.ModerateOptions(frame_sample_fps=2.5, max_frames=8, skip_modalities=[pb.MODALITY_AUDIO]),
    )


def with_media(request: pb.ModerateRequest, media: bytes) -> pb.ModerateRequest:
    full = pb.ModerateRequest()
    full.CopyFrom(request)
    full.media = media
    return full


def test_the_encoding_parses_as_the_same_request() -> None:
    wire = encode_request(header(), MEDIA)
    assert pb.ModerateRequest.FromString(wire) == with_media(header(), MEDIA)
    assert encode_request(header(), b"") == header().SerializeToString()
    with pytest.raises(ValueError, match="separately"):
        encode_request(with_media(header(), b"x"), MEDIA)


@pytest.mark.parametrize("encoding", ["protobuf", "inline_media"])
def test_decoding_gives_the_fields_and_a_view_of_the_media(encoding: str) -> None:
    full = with_media(header(), MEDIA)
    wire = full.SerializeToString() if encoding == "protobuf" else encode_request(header(), MEDIA)
    request, media = decode_request(wire)
    assert request == header() and not request.media
    assert isinstance(media, memoryview) and media == MEDIA
    assert media.obj is wire  # no copy of the media was made


def test_a_request_without_media_decodes_to_itself_and_empty_media() -> None:
    for request in (header(), pb.ModerateRequest(media_uri="file:///media/a.mp4"), pb.ModerateRequest()):
        decoded, media = decode_request(request.SerializeToString())
        assert decoded == request and len(media) == 0


def test_unusual_encodings_decode_as_protobuf_decodes_them() -> None:
    first, second = b"first media", b"second media"
    field = b"\x1a"  # media: field 3, length-delimited
    # Two media fields: the last one wins, as for any singular protobuf field.
    twice = (
        field
        + bytes([len(first)])
        + first
        + header().SerializeToString()
        + field
        + bytes([len(second)])
        + second
    )
    assert pb.ModerateRequest.FromString(twice).media == second
    request, media = decode_request(twice)
    assert media == second and request == header()
    # An unknown field before the media (a newer client): kept, as protobuf keeps it.
    unknown = b"\xf8\x06\x2a"  # field 111, varint 42
    request, media = decode_request(unknown + encode_request(header(), MEDIA))
    assert media == MEDIA
    assert (
        request.SerializeToString()
        == pb.ModerateRequest.FromString(unknown + header().SerializeToString()).SerializeToString()
    )


@pytest.mark.parametrize(
    "wire",
    [
        b"\x1a\x05abc",  # media cut short
        b"\x1a",  # a tag and nothing else
        b"\x0a\x03r-1\x1a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length varint over 10 bytes
        b"\x0f",  # wire type 7 does not exist
    ],
)
def test_malformed_requests_are_refused_as_protobuf_refuses_them(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        pb.ModerateRequest.FromString(wire)
    with pytest.raises(DecodeError):
        decode_request(wire)

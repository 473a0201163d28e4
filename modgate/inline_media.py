"""A Moderate request's inline media on the wire, without protobuf copies of the bytes.

A ModerateRequest carries up to 32 MiB in its `media` field. Through the protobuf runtime
those bytes are copied into the message, again into its serialisation (client side), again
into the parsed message and again on every read of `request.media` (server side): at 16 MB each
copy costs 5-15 ms, several times what the gateway needs to answer a banked upload. Both ends
therefore handle that one field as raw wire bytes and leave every other field to protobuf:

    wire = encode_request(header, media)        # client: header has no media
    request, media = decode_request(wire)       # gateway: media is a view of `wire`

(grpc copies the bytes once more between its core and Python on each side; that copy stays.)

The wire bytes are a standard ModerateRequest encoding (a parser takes fields in any order;
media goes first so the gateway finds it at once), so any client's request decodes the same,
and the public proto is unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

from modgate.v1 import moderation_pb2 as pb

_MEDIA_NUMBER = pb.ModerateRequest.DESCRIPTOR.fields_by_name["media"].number
# Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_MEDIA_TAG = _varint(_MEDIA_NUMBER << 3 | _LEN)


class DecodedRequest(NamedTuple):
    request: pb.ModerateRequest  # every field but media (left empty)
    media: memoryview  # the media field's bytes, a view of the received message


def encode_request(header: pb.ModerateRequest, media: bytes) -> bytes:
    """The serialised ModerateRequest `header` with `media` as its media field, by one join."""
    if header.media:
        raise ValueError("encode_request: pass the media separately, not in header.media")
    if not media:
        return header.SerializeToString()
    return b"".join((_MEDIA_TAG, _varint(len(media)), media, header.SerializeToString()))


def decode_request(wire: bytes) -> DecodedRequest:
    """The request without its media, and its media as a view of `wire`.

    The top-level fields are walked up to the first media field (the first or third field
    of the usual encodings); the rest is parsed by protobuf. Anything unusual (a second media
    field, a malformed or group-encoded field) is parsed by protobuf whole, with the same
    result and errors as ModerateRequest.FromString."""
    span = _media_span(wire)
    if span is None:
        return _whole(wire)
    start, end, field_start = span
    view = memoryview(wire)
    request = pb.ModerateRequest.FromString(b"".join((view[:field_start], view[end:])))
    if request.media:  # a later media field wins in protobuf: let protobuf decide
        return _whole(wire)
    return DecodedRequest(request, view[start:end])


def _whole(wire: bytes) -> DecodedRequest:
    request = pb.ModerateRequest.FromString(wire)
    media = request.media
    request.ClearField("media")
    return DecodedRequest(request, memoryview(media))


def _media_span(wire: bytes) -> tuple[int, int, int] | None:
    """(media start, media end, field start) of the first media field; None: none found or
    the encoding is one this walk leaves to protobuf."""
    pos, size = 0, len(wire)
    while pos < size:
        field_start = pos
        key, pos = _read_varint(wire, pos)
        if pos < 0:
            return None
        number, kind = key >> 3, key & 7
        if kind == _VARINT:
            _, pos = _read_varint(wire, pos)
        elif kind == _I64:
            pos += 8
        elif kind == _I32:
            pos += 4
        elif kind == _LEN:
            length, pos = _read_varint(wire, pos)
            if pos < 0 or pos + length > size:
                return None
            if number == _MEDIA_NUMBER:
                return pos, pos + length, field_start
            pos += length
        else:
            return None
        if pos < 0 or pos > size:
            return None
    return None


def _read_varint(wire: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); position -1 when the varint is cut off or over 10 bytes."""
    value = shift = 0
    for offset in range(pos, min(pos + 10, len(wire))):
        byte = wire[offset]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + 1
        shift += 7
    return 0, -1

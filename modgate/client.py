"""Python client for product backends: moderate a video file, bytes, or plain text.

    from modgate.client import ModerationClient

    with ModerationClient("127.0.0.1:50051", token="s3cret") as client:
        verdict = client.moderate_file("clip.mp4", title="my clip", timeout_s=30)
        if verdict.decision == DECISION_BLOCK: ...
        verdict = client.moderate_text("buy followers now", hashtags=["deal"])

Media up to the gateway's unary limit goes in one `Moderate` call; larger media is streamed
in chunks over `ModerateStream` (the file is never read into memory whole). Every call has a
deadline (`timeout_s`); the gateway returns a verdict inside it or DEADLINE_EXCEEDED. Errors
raise `ModerationError` with the gRPC status and, when the gateway is overloaded, the
`retry_after_ms` it asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import grpc
from opentelemetry import propagate

from modgate.inline_media import encode_request
from modgate.ports import GATEWAY_TARGET
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

DEFAULT_TARGET = GATEWAY_TARGET
MiB = 1024 * 1024
# The gateway's default unary limit is 32 MiB; headroom for the other request fields.
DEFAULT_UNARY_LIMIT = 32 * MiB - 64 * 1024
CHUNK_SIZE = 1 * MiB

# progress(stage, done, total): stage is "upload" (bytes) or "wait" (elapsed ms, total 0).
Progress = Callable[[str, int, int], None]

MODERATE_METHOD = f"/{pb.DESCRIPTOR.services_by_name['Moderation'].full_name}/Moderate"

MODALITY_BY_NAME = {"AUDIO": pb.MODALITY_AUDIO, "VISUAL": pb.MODALITY_VISUAL, "TEXT": pb.MODALITY_TEXT}


class ModerationError(Exception):
    """A moderation call that returned no verdict."""

    def __init__(self, code: grpc.StatusCode, details: str, retry_after_ms: int | None = None) -> None:
        hint = f" (retry after {retry_after_ms} ms)" if retry_after_ms is not None else ""
        super().__init__(f"{code.name}: {details}{hint}")
        self.code = code
        self.details = details
        self.retry_after_ms = retry_after_ms

    @property
    def retryable(self) -> bool:
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) and (
            self.code == grpc.StatusCode.UNAVAILABLE or self.retry_after_ms is not None
        )


@dataclass(frozen=True)
class Caption:
    text: str
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class Options:
    """Per-request options; zero values mean the gateway's defaults."""

    frame_sample_fps: float = 0.0
    max_frames: int = 0
    include_transcript: bool = False
    skip_modalities: Sequence[str] = ()  # "AUDIO", "VISUAL", "TEXT"
    variant: str = ""  # "stable" | "canary": pin the model variant (evaluation callers only)

    def to_pb(self) -> pb.ModerateOptions:
        unknown = [m for m in self.skip_modalities if m.upper() not in MODALITY_BY_NAME]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r} in skip_modalities: use AUDIO, VISUAL or TEXT")
        return pb.ModerateOptions(
            frame_sample_fps=self.frame_sample_fps,
            max_frames=self.max_frames,
            include_transcript=self.include_transcript,
            skip_modalities=[MODALITY_BY_NAME[m.upper()] for m in self.skip_modalities],
            variant=self.variant,
        )


class ModerationClient:
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | str | Path | None = None,
        client_certificate: bytes | str | Path | None = None,
        client_key: bytes | str | Path | None = None,
        timeout_s: float = 60.0,
        unary_limit_bytes: int = DEFAULT_UNARY_LIMIT,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        """`tls` (or any certificate argument) makes a TLS channel; `root_certificates` trusts a
        private CA (default: the system roots); `client_certificate` + `client_key` for mTLS.
        Certificates are PEM bytes or paths to PEM files."""
        self.target = target
        self.timeout_s = timeout_s
        self.unary_limit_bytes = unary_limit_bytes
        self.chunk_size = chunk_size
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            ("grpc.max_send_message_length", max(unary_limit_bytes, 4 * MiB) + MiB),
            ("grpc.max_receive_message_length", 64 * MiB),
        ]
        if tls or root_certificates or client_certificate:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates),
                private_key=_pem(client_key),
                certificate_chain=_pem(client_certificate),
            )
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.ModerationStub(self._channel)
        # Moderate with the request already serialised (modgate.inline_media): the media bytes
        # are joined to the other fields once instead of copied through a protobuf message.
        self._moderate_wire = self._channel.unary_unary(
            MODERATE_METHOD, request_serializer=None, response_deserializer=pb.Verdict.FromString
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ModerationClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- public calls ---------------------------------------------------------------------

    def moderate_file(
        self,
        path: str | Path,
        *,
        progress: Progress | None = None,
        timeout_s: float | None = None,
        **fields: object,
    ) -> pb.Verdict:
        """Moderate a video file (unary or streamed by size). `fields`: see `build_request`."""
        path = Path(path)
        size = path.stat().st_size
        if size <= self.unary_limit_bytes:
            return self.moderate_bytes(path.read_bytes(), progress=progress, timeout_s=timeout_s, **fields)
        with path.open("rb") as stream:
            return self._stream(
                _chunks(stream, self.chunk_size), size, build_request(**fields), progress, timeout_s
            )

    def moderate_bytes(
        self,
        data: bytes,
        *,
        progress: Progress | None = None,
        timeout_s: float | None = None,
        **fields: object,
    ) -> pb.Verdict:
        """Moderate container bytes: one `Moderate` call when it fits, else `ModerateStream`."""
        request = build_request(**fields)
        if len(data) > self.unary_limit_bytes:
            chunks = (data[i : i + self.chunk_size] for i in range(0, len(data), self.chunk_size))
            return self._stream(chunks, len(data), request, progress, timeout_s)
        if progress:
            progress("upload", 0, len(data))
        return self._unary(request, progress, timeout_s, media=data)

    def moderate_text(
        self,
        text: str = "",
        *,
        progress: Progress | None = None,
        timeout_s: float | None = None,
        **fields: object,
    ) -> pb.Verdict:
        """Moderate text only (no media): `text` is sent as the description; title, hashtags
        and captions may be given too. Only the text service is called."""
        if text:
            fields.setdefault("description", text)
        return self._unary(build_request(**fields), progress, timeout_s, media=b"")

    # --- plumbing -------------------------------------------------------------------------

    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        # A caller with OpenTelemetry set up continues its trace in the gateway (W3C
        # traceparent); without an active span nothing is added.
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return self._metadata + tuple(carrier.items())

    def _unary(
        self,
        request: pb.ModerateRequest,
        progress: Progress | None,
        timeout_s: float | None,
        *,
        media: bytes,
    ) -> pb.Verdict:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        future = self._moderate_wire.future(
            encode_request(request, media), timeout=timeout, metadata=self._call_metadata()
        )
        return self._await(future, progress, len(media))

    def _stream(
        self,
        chunks: Iterable[bytes],
        size: int,
        header: pb.ModerateRequest,
        progress: Progress | None,
        timeout_s: float | None,
    ) -> pb.Verdict:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        uploaded = threading.Event()

        def messages() -> Iterator[pb.ModerateChunk]:
            yield pb.ModerateChunk(header=header)
            sent = 0
            for chunk in chunks:
                yield pb.ModerateChunk(data=chunk)
                sent += len(chunk)
                if progress:
                    progress("upload", sent, size)
            uploaded.set()

        future = self._stub.ModerateStream.future(messages(), timeout=timeout, metadata=self._call_metadata())
        return self._await(future, progress, 0, uploaded)

    def _await(
        self,
        future: grpc.Future,
        progress: Progress | None,
        upload_size: int,
        uploaded: threading.Event | None = None,
    ) -> pb.Verdict:
        started = time.monotonic()
        if progress:
            while not future.done():
                if uploaded is None or uploaded.is_set():
                    if upload_size and uploaded is None:
                        progress("upload", upload_size, upload_size)
                        upload_size = 0
                    progress("wait", int((time.monotonic() - started) * 1000), 0)
                time.sleep(0.1)
        try:
            return future.result()
        except grpc.RpcError as exc:
            raise _error(exc) from None


def build_request(
    *,
    request_id: str = "",
    content_id: str = "",
    title: str = "",
    description: str = "",
    hashtags: Sequence[str] = (),
    captions: Sequence[Caption] = (),
    locale: str = "",
    policy: str = "",
    options: Options | None = None,
    media_uri: str = "",
) -> pb.ModerateRequest:
    return pb.ModerateRequest(
        request_id=request_id,
        content_id=content_id,
        title=title,
        description=description,
        hashtags=list(hashtags),
        captions=[pb.CaptionCue(text=c.text, start_ms=c.start_ms, end_ms=c.end_ms) for c in captions],
        locale=locale,
        policy=policy,
        media_uri=media_uri,
        options=(options or Options()).to_pb(),
    )


def _chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _pem(value: bytes | str | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def _error(exc: grpc.RpcError) -> ModerationError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    retry_after: int | None = None
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "retry-after-ms":
            try:
                retry_after = int(value)
            except ValueError:
                retry_after = None
    return ModerationError(code, details or "", retry_after)

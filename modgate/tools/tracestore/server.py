"""The OTLP receivers: HTTP (POST /v1/traces, protobuf or JSON) and, optionally, gRPC.

Deliberately small: stdlib ThreadingHTTPServer, no auth, 127.0.0.1 by default. A body that is
not a valid export request gets 400 with the reason, never a crash.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from modgate.ports import HOST, TRACE_STORE_GRPC_PORT, TRACE_STORE_PORT
from modgate.tools.tracestore.store import TraceStore

_log = logging.getLogger("modgate.tools.tracestore")

MAX_BODY_BYTES = 64 * 1024 * 1024  # the OTLP exporters' own default request cap
TRACES_PATH = "/v1/traces"


class BadRequest(ValueError):
    """The body is not an OTLP trace export request."""


def decode_request(body: bytes, content_type: str, content_encoding: str = "") -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP body (protobuf or JSON, optionally gzip/deflate) or raise BadRequest."""
    encoding = content_encoding.strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise BadRequest(f"unsupported Content-Encoding {content_encoding!r} (use gzip, deflate or none)")
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(f"body is not valid {encoding}: {exc}") from exc
    media_type = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media_type == "application/json":
        try:
            document = json.loads(body)
            json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
        except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
            raise BadRequest(f"body is not an OTLP JSON ExportTraceServiceRequest: {exc}") from exc
    elif media_type in ("application/x-protobuf", "application/protobuf", ""):
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from exc
    else:
        raise BadRequest(
            f"unsupported Content-Type {content_type!r} (use application/x-protobuf or application/json)"
        )
    return request


def _hex_ids_to_base64(document: Any) -> Any:
    """OTLP/JSON writes ids as hex, unlike protobuf's canonical JSON (base64): convert them."""

    def convert(holder: dict[str, Any], *keys: str) -> None:
        for key in keys:
            value = holder.get(key)
            if isinstance(value, str) and value:
                holder[key] = base64.b64encode(bytes.fromhex(value)).decode()

    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                convert(span, "traceId", "spanId", "parentSpanId")
                for link in span.get("links", []):
                    convert(link, "traceId", "spanId")
    return document


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse one connection

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") != TRACES_PATH:
            self._reply(HTTPStatus.NOT_FOUND, b"only POST /v1/traces is served\n", "text/plain")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._reply(HTTPStatus.LENGTH_REQUIRED, b"Content-Length is required\n", "text/plain")
            return
        try:
            length = int(length_header)
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, b"bad Content-Length\n", "text/plain")
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"body over 64 MiB\n", "text/plain")
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        try:
            request = decode_request(body, content_type, self.headers.get("Content-Encoding", ""))
            stored = self.server.store.add_request(request)
        except (BadRequest, ValueError) as exc:
            _log.warning("rejected export from %s: %s", self.client_address[0], exc)
            self._reply(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), "text/plain")
            return
        _log.debug("stored %d spans", stored)
        if content_type.split(";")[0].strip().lower() == "application/json":
            self._reply(HTTPStatus.OK, b"{}", "application/json")
        else:
            response = ExportTraceServiceResponse().SerializeToString()
            self._reply(HTTPStatus.OK, response, "application/x-protobuf")

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/healthz", "/livez", "/readyz"):
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.client_address[0], *args)


class ReceiverHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: TraceStore) -> None:
        self.store = store
        super().__init__(address, _Handler)


def make_http_server(store: TraceStore, host: str = HOST, port: int = TRACE_STORE_PORT) -> ReceiverHTTPServer:
    """Bind (port 0 picks a free one: read ``server.server_address``); call serve_forever()."""
    return ReceiverHTTPServer((host, port), store)


def make_grpc_server(
    store: TraceStore, host: str = HOST, port: int = TRACE_STORE_GRPC_PORT
) -> tuple[Any, int]:
    """An OTLP/gRPC receiver (TraceService/Export) on ``port``; returns (started server, bound port)."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(
            self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
        ) -> ExportTraceServiceResponse:
            try:
                store.add_request(request)
            except ValueError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the OTLP/gRPC receiver on {host}:{port} (in use?)")
    server.start()
    return server, bound

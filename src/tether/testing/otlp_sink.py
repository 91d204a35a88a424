"""Local OTLP receivers for tests and benchmarks: an OTLP/HTTP sink and an OTLP/gRPC sink on
127.0.0.1 that keep the spans they are sent (needs the ``otel`` extra).

    with OtlpHttpSink() as sink:
        configure_tracing("otlp-http", endpoint=sink.endpoint)
        ...
        sink.wait_for(lambda names: "invoke_workflow wf" in names)
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _decode(body: bytes) -> list[dict[str, Any]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(body)
    return _spans(req)


def _spans(req: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs: dict[str, Any] = {}
                for kv in s.attributes:
                    which = kv.value.WhichOneof("value")
                    attrs[kv.key] = getattr(kv.value, which) if which else None
                out.append(
                    {
                        "name": s.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex() or None,
                        "attributes": attrs,
                        "events": [e.name for e in s.events],
                    }
                )
    return out


class _Sink:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.requests = 0
        self._cond = threading.Condition()

    def _add(self, spans: list[dict[str, Any]]) -> None:
        with self._cond:
            self.requests += 1
            self.spans.extend(spans)
            self._cond.notify_all()

    def names(self) -> list[str]:
        with self._cond:
            return [s["name"] for s in self.spans]

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 60.0) -> list[str]:
        """Wait until ``done(names of the spans so far)``; raise TimeoutError at ``timeout``."""
        end = time.monotonic() + timeout
        with self._cond:
            while not done([s["name"] for s in self.spans]):
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"spans so far: {[s['name'] for s in self.spans]}")
                self._cond.wait(left)
            return [s["name"] for s in self.spans]


class OtlpHttpSink(_Sink):
    """Accepts ``POST /v1/traces`` (protobuf, optionally gzip) and keeps the spans."""

    def __init__(self, keep: bool = True) -> None:
        super().__init__()
        sink = self
        self.keep = keep

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                sink._add(_decode(body) if sink.keep else [])
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        """The base URL (the exporter adds ``/v1/traces``)."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpHttpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class OtlpGrpcSink(_Sink):
    """An OTLP/gRPC ``TraceService`` on 127.0.0.1 that keeps the spans."""

    def __init__(self) -> None:
        super().__init__()
        from concurrent import futures

        import grpc  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as rpc

        sink = self

        class Service(rpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                sink._add(_spans(request))
                return pb.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        rpc.add_TraceServiceServicer_to_server(Service(), self.server)  # type: ignore[no-untyped-call]
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{port}"

    def __enter__(self) -> OtlpGrpcSink:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)

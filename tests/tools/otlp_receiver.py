#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for the end-to-end tests, independent of the gateway's
exporter: it decodes what it is sent with the OpenTelemetry project's own protobuf classes
(PyPI `opentelemetry-proto`).

It listens on 127.0.0.1 on a free port and prints that port alone on the first line of
standard output. Each POST to /v1/traces (protobuf, optionally gzip-compressed) is decoded
as an ExportTraceServiceRequest and answered 200 with an empty ExportTraceServiceResponse;
then one JSON object per span is written to standard output, one per line:

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex or empty>",
     "name": "...", "kind": <int>, "attributes": {...}, "status_code": <int>,
     "service_name": "..."}

`kind` and `status_code` are the protobuf enum values (kind 2 is SERVER, 3 is CLIENT;
status 2 is ERROR). A body that does not decode is answered 400 and reported on standard
error. Exit status 2 when opentelemetry-proto is not installed.
"""

import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

try:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
except ImportError as e:
    print(
        f"otlp_receiver.py: {e}; install it: python3 -m pip install opentelemetry-proto",
        file=sys.stderr,
    )
    sys.exit(2)

OUTPUT = Lock()


def value(v):
    """An AnyValue as a plain JSON value."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    if which is None:
        return None
    return getattr(v, which)


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # The trailer section ends with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def answer(self, status, payload=b"", content_type="application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        try:
            data = self.body()
        except (OSError, ValueError) as e:
            print(f"otlp_receiver.py: unreadable body: {e!r}", file=sys.stderr, flush=True)
            self.answer(400, b"unreadable body", "text/plain")
            return
        if self.path != "/v1/traces":
            self.answer(404, b"not found", "text/plain")
            return
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("application/x-protobuf"):
            print(f"otlp_receiver.py: Content-Type {content_type!r}", file=sys.stderr, flush=True)
            self.answer(415, b"only application/x-protobuf", "text/plain")
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(data)
        except DecodeError as e:
            print(f"otlp_receiver.py: not an ExportTraceServiceRequest: {e}", file=sys.stderr, flush=True)
            self.answer(400, b"not an ExportTraceServiceRequest", "text/plain")
            return
        lines = []
        for resource_spans in request.resource_spans:
            service = attributes(resource_spans.resource.attributes).get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(json.dumps({
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "attributes": attributes(span.attributes),
                        "status_code": span.status.code,
                        "service_name": service,
                    }))
        # The spans are out before the exporter hears back, so a test that saw the export
        # succeed can read them.
        with OUTPUT:
            for line in lines:
                print(line)
            sys.stdout.flush()
        self.answer(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def do_GET(self):
        self.answer(404, b"not found", "text/plain")

    def log_message(self, format, *args):
        # One line per request on standard error would only be noise in test output.
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""A real OTLP/HTTP trace receiver for the tests: every POST to /v1/traces is decoded with the
official OpenTelemetry protocol definitions (PyPI `opentelemetry-proto`, generated from the
.proto files), strictly: an unknown field, a wrong type or a malformed id fails the export with
400, as a collector would refuse it. What it accepted is listed at GET /received.

OTLP's JSON encoding differs from protobuf's JSON mapping in one point: trace and span ids are
hex strings, not base64. The receiver checks and converts them (as a collector's JSON decoder
does) before handing the document to `json_format.Parse`.

Usage: python otlp_receiver.py [port]   (prints "otlp receiver listening on PORT")
"""

import base64
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACES_PATH = "/v1/traces"
MAX_BODY = 4 * 1024 * 1024
ID_FIELDS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
HEX = re.compile(r"^[0-9a-f]*$")

received = []


def hex_ids_to_base64(node):
    """Rewrites OTLP JSON's hex ids into protobuf JSON's base64, failing on a malformed id."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key in ID_FIELDS and isinstance(value, str):
                if len(value) != ID_FIELDS[key] or not HEX.match(value):
                    raise ValueError(f"{key} is not {ID_FIELDS[key]} lowercase hex digits: {value!r}")
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item)


def base64_ids_to_hex(node):
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key in ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                base64_ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            base64_ids_to_hex(item)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/received":
            self.reply(200, received)
        else:
            self.reply(404, {})

    def do_POST(self):
        if self.path != TRACES_PATH:
            self.reply(404, {})
            return
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.reply(413, {})
            return
        body = self.rfile.read(length)
        if self.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            self.reply(415, {"error": "content-type must be application/json"})
            return
        try:
            doc = json.loads(body)
            hex_ids_to_base64(doc)
            message = json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())
        except Exception as e:  # noqa: BLE001 - any decoding failure is the sender's fault
            received.append({"error": str(e)})
            self.reply(400, {"error": str(e)})
            return
        # Back to a dict from the decoded message (not the raw body): only what the official
        # definitions understood reaches the test; ids as hex again, enums by name.
        decoded = json_format.MessageToDict(message)
        base64_ids_to_hex(decoded)
        received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "request": decoded})
        # An empty ExportTraceServiceResponse: full success.
        self.reply(200, {})


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"otlp receiver listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

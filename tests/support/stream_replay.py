"""An endpoint that replays recorded provider streams (tests/fixtures/streams/), for the adapters.

A real HTTP server on loopback with open CORS. The first path segment picks what it does:
/<fixture>/… streams that fixture in small uneven pieces (so events and CRLFs split across reads);
/html/… answers 200 with a web page; /half/… starts an OpenAI stream and hangs up midway;
/silent/… never answers; /refuses-stop/… answers 400 naming `stop` unless the body has none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.support.front_servers import serving

FIXTURES = Path(__file__).parent.parent / "fixtures" / "streams"
PIECES = (7, 1, 13, 2, 31, 5)  # sizes of the writes, in turn
HALF_STREAM = (b'data: {"choices":[{"delta":{"content":"Half of"},"finish_reason":null}]}\n\n'
               b'data: {"choices":[{"delta":{"content":" a reply"}')


class Replay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[dict] = []
    headers_seen: list[dict[str, str]] = []

    def do_OPTIONS(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers", "*"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        sent = json.loads(body or b"{}")
        Replay.bodies.append(sent)
        Replay.headers_seen.append(dict(self.headers))
        kind = self.path.strip("/").split("/", 1)[0]
        if kind == "silent":
            time.sleep(30)
            return
        if kind == "html":
            return self._whole(200, "text/html", b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>")
        if kind == "refuses-stop" and "stop" in sent:
            error = {"error": {"message": "Unrecognized request argument supplied: stop", "type": "invalid_request_error",
                               "param": "stop"}}
            return self._whole(400, "application/json", json.dumps(error).encode())
        if kind == "half":
            self._stream_head()
            self.wfile.write(HALF_STREAM)
            self.wfile.flush()
            self.close_connection = True
            return
        name = "openai" if kind == "refuses-stop" else kind
        self._stream_head()
        data = (FIXTURES / f"{name}.sse").read_bytes()
        at, turn = 0, 0
        while at < len(data):
            size = PIECES[turn % len(PIECES)]
            self.wfile.write(data[at:at + size])
            self.wfile.flush()
            at, turn = at + size, turn + 1
        self.close_connection = True

    def _stream_head(self) -> None:
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

    def _whole(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))

    def log_message(self, *args: object) -> None:
        pass


class Firehose(BaseHTTPRequestHandler):
    """Streams 100 MiB of SSE events to any POST, as a very long reply would come."""

    protocol_version = "HTTP/1.1"
    EVENT = b'data: {"choices":[{"delta":{"content":"' + b"x" * 1000 + b'"}}]}\n\n'
    TOTAL = 100 * 1024 * 1024

    @classmethod
    def total_bytes(cls) -> int:
        return (cls.TOTAL // len(cls.EVENT)) * len(cls.EVENT)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(self.TOTAL // len(self.EVENT)):
            self.wfile.write(self.EVENT)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def stream_replay() -> Iterator[str]:
    """Serve the replays; yields the server's URL."""
    with serving(Replay) as url:
        yield url

"""A Hub-style MLC repository and a plain file mirror on loopback, for pulls whose library is not in the repo."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def without_libraries(app: ASGIApp) -> ASGIApp:
    """A Hearth as the Hub shows an mlc-ai repository: its API lists no model library (.wasm)."""
    async def hub_view(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/models/api/models/"):
            await app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def filtered(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            answer = _drop_libraries(json.loads(body)) if start["status"] == 200 else None
            content = bytes(body) if answer is None else json.dumps(answer).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(content)).encode())]})
            await send({"type": "http.response.body", "body": content})

        await app(scope, receive, filtered)

    return hub_view


def _drop_libraries(answer: object) -> object:
    if isinstance(answer, list):  # a tree
        return [entry for entry in answer if not entry["path"].endswith(".wasm")]
    assert isinstance(answer, dict)  # repo info
    return {**answer, "siblings": [s for s in answer["siblings"] if not s["rfilename"].endswith(".wasm")]}


@contextmanager
def file_mirror(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve root over HTTP on loopback, as a mirror would: (its URL, the paths it was asked for)."""
    asked: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            asked.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

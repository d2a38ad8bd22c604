"""Remote providers for the tests, real and on loopback: llama.cpp's OpenAI-compatible server
(llama-cpp-python[server]) running the SmolLM2 GGUF, and a recording front that forwards to it.

The front is a real HTTP server in front of the real one: it keeps every request body it forwarded
(so a test can assert what reached the endpoint) and whether the caller hung up mid-reply, and it can
answer without CORS headers (a server that is up but does not let a browser page read it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from tests.support.front_servers import free_port, stop, wait_for_port

MODEL_ALIAS = "smollm2"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-max-age", "access-control-expose-headers")


@contextmanager
def llamacpp_server(gguf: Path, api_key: str | None = None) -> Iterator[str]:
    """llama.cpp's server on a free loopback port; yields its base URL (…/v1)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--interrupt_requests", "False",
               "--verbose", "False"]
    if api_key:
        command += ["--api_key", api_key]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "llama.cpp's server", timeout=60)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)  # llama.cpp may still be generating a reply nobody waits for


@dataclass
class Recorded:
    """One request the front forwarded."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    hung_up: bool = False


@dataclass
class RecordingFront:
    """Forwards to `upstream`; `cors=False` strips every CORS header (and answers preflights with 405)."""

    upstream: str
    cors: bool = True
    requests: list[Recorded] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chats(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions") and r.method == "POST"]

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        record = Recorded(scope["method"], scope["path"], headers, _json(body))
        if scope["method"] != "OPTIONS":
            self.requests.append(record)
        if scope["method"] == "OPTIONS" and not self.cors:
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        forwarded = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
        query = scope.get("query_string", b"").decode()
        url = f"{self.upstream}{scope['path']}" + (f"?{query}" if query else "")
        async with httpx.AsyncClient(timeout=None) as client:
            async with client.stream(scope["method"], url, headers=forwarded, content=body) as upstream:
                out = [(k.encode(), v.encode()) for k, v in upstream.headers.items()
                       if k not in ("content-length", "transfer-encoding", "connection")
                       and (self.cors or k not in CORS_HEADERS)]
                await send({"type": "http.response.start", "status": upstream.status_code, "headers": out})
                gone = asyncio.create_task(_disconnected(receive))
                try:
                    async for chunk in upstream.aiter_raw():
                        if gone.done():
                            record.hung_up = True
                            return
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except httpx.HTTPError:
                    pass  # the server cut the reply short: the page must notice that itself
                finally:
                    gone.cancel()
                await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive) -> None:  # type: ignore[no-untyped-def]
    while (await receive())["type"] != "http.disconnect":
        pass


def _json(body: bytes) -> dict | None:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


@contextmanager
def running(front: RecordingFront) -> Iterator[RecordingFront]:
    """Serve a front on its port in a background thread."""
    server = uvicorn.Server(uvicorn.Config(front, host="127.0.0.1", port=front.port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(front.port, name="the recording front")
    try:
        yield front
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""An unreliable network in front of a test server: cut chosen files' bodies at given offsets, or answer 503 once."""

from __future__ import annotations

import re
import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RANGE_START = re.compile(rb"bytes=(\d+)-")


class _Cut(Exception):
    """The connection is dropped here, mid-body."""


def cutting_host(app: ASGIApp, cuts: dict[str, list[int]], fail_once: set[str],
                 down: threading.Event | None = None, down_suffix: str = ".bin",
                 keep_cutting: tuple[threading.Event, str, int] | None = None) -> ASGIApp:
    """cuts: file name → the absolute byte offsets at which its successive responses are cut (then whole);
    fail_once: file names answered 503 Service Unavailable the first time they are asked for;
    while `down` is set, requests for files ending in down_suffix are dropped before any answer;
    keep_cutting (event, file name, offset): while the event is set, every response for that file is cut there."""
    pending = {name: list(offsets) for name, offsets in cuts.items()}
    failed: set[str] = set()

    def cut_for(name: str) -> int | None:
        if keep_cutting and keep_cutting[0].is_set() and keep_cutting[1] == name:
            return keep_cutting[2]
        return pending[name].pop(0) if pending.get(name) else None

    async def unreliable(scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].rsplit("/", 1)[-1] if scope["type"] == "http" else ""
        if down is not None and down.is_set() and name.endswith(down_suffix):
            return  # no answer at all: the server drops the connection
        if name in fail_once and name not in failed:
            failed.add(name)
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        cut_at = cut_for(name)
        if cut_at is None:
            await app(scope, receive, send)
            return
        ranges = [RANGE_START.match(value) for key, value in scope["headers"] if key == b"range"]
        sent = int(ranges[0].group(1)) if ranges and ranges[0] else 0

        async def cutting(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if sent + len(body) > cut_at:
                    await send({"type": "http.response.body", "body": body[:cut_at - sent], "more_body": True})
                    raise _Cut
                sent += len(body)
            await send(message)

        try:
            await app(scope, receive, cutting)
        except _Cut:
            pass  # returning with the response unfinished makes the server drop the connection

    return unreliable

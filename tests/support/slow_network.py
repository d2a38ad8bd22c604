"""A slow network between a test server and its clients, so a download can be caught halfway."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def slow_shards(app: ASGIApp) -> ASGIApp:
    """A slow network for shard bodies: 64 KiB per 20 ms, so a pull can be killed halfway."""
    async def slowed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(".bin"):
            await app(scope, receive, send)
            return

        async def trickle(message: Message) -> None:
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            if len(body) <= 65536:
                await send(message)
                return
            for start in range(0, len(body), 65536):
                await asyncio.sleep(0.02)
                more = start + 65536 < len(body) or message.get("more_body", False)
                await send({"type": "http.response.body", "body": body[start:start + 65536], "more_body": more})

        await app(scope, receive, trickle)

    return slowed

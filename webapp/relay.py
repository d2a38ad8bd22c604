"""The relay: "through Hearth" for endpoints that send no CORS headers, and for server-defined providers.

The page posts one JSON envelope — {url, method, headers, body}, or {provider, path, ...} for a
provider from the server's providers file — and gets the endpoint's status, content type and body back,
streamed as it arrives, never buffered. It is not an open proxy:
- only this server's own page may use it (Origin and the page token, webapp/owner.py);
- only http(s) targets; link-local and cloud-metadata addresses are refused unless the owner allows
  their network (--relay-allow); the host is resolved once and the connection made to the address
  that was checked, so a DNS answer cannot change between the check and the call;
- the envelope is capped in size, each call in time, and redirects are not followed;
- nothing of the envelope (URL, prompt, key) or the reply is logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from webapp.owner import owner_refusal
from webapp.server_providers import ServerProvider

MAX_ENVELOPE_BYTES = 32 * 1024 * 1024  # room for a few attached images
MAX_CALL_SECONDS = 15 * 60
CONNECT_SECONDS = 10
IDLE_SECONDS = 120
# Addresses a relay never reaches unless the owner allows their network: instance metadata services
# answer there with the server's cloud credentials.
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")}
# Not passed on in either direction: hop-by-hop headers and what would identify the page or its user.
DROPPED_REQUEST_HEADERS = {"host", "connection", "content-length", "transfer-encoding", "cookie", "origin",
                           "referer", "accept-encoding", "keep-alive", "upgrade", "te", "trailer",
                           "proxy-authorization"}
PASSED_RESPONSE_HEADERS = ("content-type", "retry-after", "x-request-id")


class RelayRefusal(Exception):
    """A call the relay will not make; the message says why."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def forbidden_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                     allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str | None:
    """Why the relay must not connect to this address, or None."""
    if any(address in network for network in allowed):
        return None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not an address one can call"
    return None


async def resolve(host: str, port: int) -> str:
    """One address of the host (the first the system resolver gives)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RelayRefusal(f"{host} could not be resolved: check the base URL", 502) from exc
    return infos[0][4][0]


def relay_allowed_networks(texts: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The --relay-allow networks, parsed (a bare address is a one-address network)."""
    return tuple(ipaddress.ip_network(t, strict=False) for t in texts)


async def relay(request: Request) -> Response:
    """POST /relay: make one call for the page and stream its answer back."""
    try:
        problem = owner_refusal(request, request.headers.get("x-hearth-token", ""),
                                request.headers.get("x-hearth-admin-token", ""),
                                doing="use the relay", require_origin=True)
        if problem:
            raise RelayRefusal(problem)
        envelope = await _envelope(request)
        target, headers = _target(request, envelope)
        allowed = relay_allowed_networks(request.app.state.settings.relay_allow)
        call = await _pinned(target, headers, allowed)
        client: httpx.AsyncClient = request.app.state.relay_client
        upstream = await client.send(
            client.build_request(envelope.get("method", "POST"), call["url"], headers=call["headers"],
                                 content=_body(envelope), extensions=call["extensions"]),
            stream=True)
    except RelayRefusal as refusal:
        return _refused(str(refusal), refusal.status)
    except httpx.TimeoutException:
        return _refused("the endpoint did not answer in time", 504, kind="unreachable")
    except httpx.HTTPError as exc:
        return _refused(f"the endpoint could not be reached ({type(exc).__name__})", 502, kind="unreachable")
    headers = {k: upstream.headers[k] for k in PASSED_RESPONSE_HEADERS if k in upstream.headers}
    headers["X-Hearth-Relay"] = "passed"
    headers["Cache-Control"] = "no-store"
    return StreamingResponse(_stream(upstream), status_code=upstream.status_code, headers=headers)


async def _stream(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Closing the upstream response when the page goes away (Stop) closes the endpoint's connection.
    deadline = time.monotonic() + MAX_CALL_SECONDS
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
            if time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass  # the page sees the stream end early and says so
    finally:
        await upstream.aclose()


async def _envelope(request: Request) -> dict[str, Any]:
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_ENVELOPE_BYTES:
        raise RelayRefusal(f"the request is larger than the relay's {MAX_ENVELOPE_BYTES >> 20} MiB limit", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_ENVELOPE_BYTES:
            raise RelayRefusal(f"the request is larger than the relay's {MAX_ENVELOPE_BYTES >> 20} MiB limit", 413)
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise RelayRefusal("the relay takes a JSON object {url, method, headers, body}", 400) from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("headers", {}), dict):
        raise RelayRefusal("the relay takes a JSON object {url, method, headers, body}", 400)
    if envelope.get("method", "POST") not in ("GET", "POST"):
        raise RelayRefusal("the relay makes GET and POST calls only", 400)
    return envelope


def _target(request: Request, envelope: dict[str, Any]) -> tuple[str, dict[str, str]]:
    headers = {str(k): str(v) for k, v in envelope.get("headers", {}).items()
               if str(k).lower() not in DROPPED_REQUEST_HEADERS}
    if "provider" not in envelope:
        return str(envelope.get("url", "")), headers
    providers: dict[str, ServerProvider] = request.app.state.server_providers
    provider = providers.get(str(envelope["provider"]))
    if provider is None:
        raise RelayRefusal(f"this server defines no provider {envelope['provider']!r}", 404)
    path = str(envelope.get("path", ""))
    if not path.startswith("/") or ".." in path or "//" in path or "#" in path:
        raise RelayRefusal("a server provider's path must start with / and stay under its base URL", 400)
    return provider.base_url + path, {**headers, **provider.auth_headers()}


async def _pinned(url: str, headers: dict[str, str], allowed: tuple) -> dict[str, Any]:
    """The call made to the checked address, with the Host header and TLS name of the original."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RelayRefusal("the relay calls http(s) URLs only", 400)
    if parts.username or parts.password:
        raise RelayRefusal("a URL with a user name or password is not relayed: use the key field", 400)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = ipaddress.ip_address(await resolve(host, port))
    if reason := forbidden_reason(address, allowed):
        raise RelayRefusal(f"{host} is {reason}, which the relay does not call (the server's owner can allow "
                           "it with --relay-allow)")
    shown = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{shown}:{port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return {"url": pinned, "headers": {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
            "extensions": extensions}


def _body(envelope: dict[str, Any]) -> bytes | None:
    body = envelope.get("body")
    return None if body is None else str(body).encode("utf-8")


def _refused(message: str, status: int, kind: str = "refused") -> Response:
    return JSONResponse({"error": {"message": f"Hearth's relay: {message}"}}, status_code=status,
                        headers={"X-Hearth-Relay": kind, "Cache-Control": "no-store"})


def make_relay_client() -> httpx.AsyncClient:
    """The one HTTP client the relay uses: no redirects, no environment proxies, idle-timed reads."""
    timeout = httpx.Timeout(connect=CONNECT_SECONDS, read=IDLE_SECONDS, write=60, pool=CONNECT_SECONDS)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

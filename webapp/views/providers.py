"""Remote providers, server side: the network worker's script and policy, its origins, the relay.

See webapp/connect_origins.py for why provider calls run in a worker with its own CSP, and
webapp/relay.py for the relay's rules. Nothing here logs a URL, a prompt or a key.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webapp.connect_origins import ConnectOrigins, OriginError
from webapp.owner import owner_refusal
from webapp.paths import STATIC_DIR

NET_WORKER = STATIC_DIR / "js" / "providers" / "net-worker.js"
MAX_BODY_BYTES = 4096


def worker_policy(origins: tuple[str, ...]) -> str:
    """The worker's CSP: it loads no script but its own and reaches this server and the given origins."""
    connect = " ".join(("'self'", *origins))
    return "; ".join(("default-src 'none'", "script-src 'self'", f"connect-src {connect}"))


def net_worker(request: Request) -> Response:
    """GET /provider-worker.js: the network worker, with a connect-src of the registered origins."""
    origins: ConnectOrigins = request.app.state.connect_origins
    headers = {
        "Content-Security-Policy": worker_policy(origins.all()),
        # A new origin must reach the next worker at once: never a cached copy.
        "Cache-Control": "no-store",
    }
    if request.app.state.settings.coep != "off":
        # Still cross-origin isolated, but the doctor's opaque "does anything answer?" probe may see a
        # server that sends no CORP header (the worker never sends credentials anyway).
        headers["Cross-Origin-Embedder-Policy"] = "credentialless"
    return Response(NET_WORKER.read_bytes(), media_type="text/javascript", headers=headers)


def connect_origins_list(request: Request) -> Response:
    """GET /api/connect-origins: the provider origins the worker may call."""
    return JSONResponse({"origins": list(request.app.state.connect_origins.all())},
                        headers={"Cache-Control": "no-store"})


async def connect_origins_change(request: Request) -> Response:
    """POST /api/connect-origins {origin, remove?}: register (or forget) a provider's origin."""
    problem = owner_refusal(request, request.headers.get("x-hearth-token", ""),
                            request.headers.get("x-hearth-admin-token", ""),
                            doing="add provider origins", require_origin=True)
    if problem:
        return _error(problem, 403)
    body = await request.body()
    try:
        change = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
        origin = str(change["origin"])
    except (ValueError, TypeError, KeyError):
        return _error('send {"origin": "https://api.example.com"}', 400)
    origins: ConnectOrigins = request.app.state.connect_origins
    try:
        if change.get("remove"):
            origins.remove(origin)
        else:
            origins.add(origin)
    except OriginError as exc:
        return _error(str(exc), 400)
    return JSONResponse({"origins": list(origins.all())}, headers={"Cache-Control": "no-store"})


def server_providers(request: Request) -> Response:
    """GET /api/server-providers: the owner's providers, without their keys or header values."""
    providers = request.app.state.server_providers.values()
    return JSONResponse({"providers": [p.public() for p in providers]}, headers={"Cache-Control": "no-store"})


def _error(message: str, status: int) -> Response:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers={"Cache-Control": "no-store"})

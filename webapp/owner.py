"""Requests only this server's owner may make from its own page: pulls, provider origins, the relay.

Such a request must come from this server's own page (the Origin a browser sends names this server)
and carry the page's per-process token, which no other site can read; when Hearth listens beyond
loopback, it must also carry the --admin-token the owner chose.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request


def own_origin(request: Request) -> str:
    """This server's origin as the browser addressed it."""
    return f"{request.url.scheme}://{request.url.netloc}"


def owner_refusal(request: Request, token: str, admin_token: str = "", *, doing: str,
                  require_origin: bool = False) -> str | None:
    """Why this request may not `doing` (plain words), or None when it may.

    require_origin: refuse a request without an Origin header (fetch always sends one on POST; a form
    post from an old browser may not, which is why pulls do not insist)."""
    settings = request.app.state.settings
    origin = request.headers.get("origin")
    if (origin is None and require_origin) or (origin is not None and origin != own_origin(request)):
        return f"{doing} only from this server's own page"
    if not hmac.compare_digest(token.encode(), request.app.state.page_token.encode()):
        return "this page is stale or not from this server: reload it"
    if settings.beyond_loopback and not settings.admin_token:
        return f"Hearth listens beyond this machine: restart it with --admin-token to {doing} from the page"
    if settings.admin_token and not hmac.compare_digest(admin_token.encode(), settings.admin_token.encode()):
        return "wrong admin token"
    return None

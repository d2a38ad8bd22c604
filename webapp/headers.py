"""Isolation and safety headers on every response; CORS only on model files, never with credentials."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.settings import Settings

# Responses under these prefixes are model files another origin's page may fetch.
MODEL_PATH_PREFIXES = ("/models/", "/libs/")
# What another origin's script may read of a model file response: sizes, ranges and the Hub's headers.
EXPOSED_HEADERS = (
    "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
    "X-Repo-Commit", "X-Linked-Etag", "X-Linked-Size", "X-Error-Code", "X-Error-Message",
)


# Headers a route may set for itself; the middleware's defaults fill in only where it did not.
ROUTE_OWNED_HEADERS = ("Content-Security-Policy", "Cross-Origin-Embedder-Policy")


def content_security_policy(settings: Settings) -> str:
    """A CSP that lets WebLLM run (wasm, a worker, model downloads) and forbids inline script.

    img-src stays on our own origin so a model's markdown image cannot carry a conversation away.
    """
    connect = " ".join(("'self'", *settings.connect_hosts))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "worker-src 'self'",
            f"connect-src {connect}",
            "img-src 'self' data:",
            "style-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def page_headers(settings: Settings) -> dict[str, str]:
    """Headers for pages, scripts and styles: same-origin everything, cross-origin isolated."""
    headers = {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if settings.coep != "off":
        headers["Cross-Origin-Embedder-Policy"] = settings.coep
    return headers


def model_file_headers(allow_origin: str = "*") -> dict[str, str]:
    """Headers for model files: readable by any origin's page (or the one allowed), without credentials."""
    return {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


# A CORS preflight for model files (a page sending Range or If-None-Match): allowed, cached for a day.
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match, If-Modified-Since",
    "Access-Control-Max-Age": "86400",
}


async def preflight(send: Send, headers: dict[str, str]) -> None:
    """Answer OPTIONS on a model file: 204, no body, the CORS headers."""
    merged = {**headers, **PREFLIGHT_HEADERS}
    await send({"type": "http.response.start", "status": 204,
                "headers": [(k.lower().encode(), v.encode()) for k, v in merged.items()]})
    await send({"type": "http.response.body", "body": b""})


class SecurityHeadersMiddleware:
    """Sets the headers above on each response start, by path; nothing else passes through it."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.pages = page_headers(settings)
        self.allow_origins = settings.allow_origins
        self.models = model_file_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_model_file = scope["path"].startswith(MODEL_PATH_PREFIXES)
        extra = self._model_headers(scope) if is_model_file else self.pages
        if is_model_file and scope["method"] == "OPTIONS":
            await preflight(send, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A route with policies of its own (the provider worker's) keeps them.
                own = {name: headers[name] for name in ROUTE_OWNED_HEADERS if name in headers}
                for name, value in extra.items():
                    headers[name] = value
                for name, value in own.items():
                    headers[name] = value
                # Credentials and a wildcard Vary both break WebLLM's Cache.add of model files.
                del headers["Access-Control-Allow-Credentials"]
                if headers.get("Vary", "").strip() == "*":
                    del headers["Vary"]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _model_headers(self, scope: Scope) -> dict[str, str]:
        if "*" in self.allow_origins:
            return self.models
        # A list of origins: echo the request's when it is one of them (and say the answer varies).
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), "")
        headers = model_file_headers(origin if origin in self.allow_origins else "null")
        headers["Vary"] = "Origin"
        return headers

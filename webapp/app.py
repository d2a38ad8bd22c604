"""create_app(settings): the route table, the middleware and the templates of one Hearth server."""

from __future__ import annotations

import mimetypes
import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, Route

from webapp import hosting, hub_api, relay
from webapp.connect_origins import ConnectOrigins
from webapp.headers import SecurityHeadersMiddleware
from webapp.paths import STATIC_DIR
from webapp.settings import Settings
from webapp.pull_jobs import PullJobs
from webapp.views import chat, library, providers, pulls, shell
from webapp.views.templating import make_templates

# Browsers require these exact types: wasm streaming compile wants application/wasm and module
# scripts must be JavaScript; Debian's mime.types says application/javascript, which also works,
# but one answer everywhere keeps tests and caches simple.
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/manifest+json", ".webmanifest")


class StaticAssets(StaticFiles):
    """Static files that browsers revalidate (ETag / 304) instead of trusting a stale copy."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def create_app(settings: Settings | None = None, pages: bool = True) -> FastAPI:
    """Build the ASGI app for these settings; nothing global, so tests can make many.

    pages=False is the model host alone (`hearth host`): model files and the Hub API, no chat page.
    """
    settings = settings or Settings()
    page_routes = [
        Route("/", chat.chat_page, name="chat_page"),
        Route("/library", library.library_page, name="library_page"),
        Route("/library/pulls", pulls.pulls_list, name="pulls_list"),
        Route("/library/pulls", pulls.pull_create, name="pull_create", methods=["POST"]),
        Route("/library/pulls/{job_id:int}/cancel", pulls.pull_cancel, name="pull_cancel", methods=["POST"]),
        Route("/library/{model_id:path}/check", library.hosted_model_check, name="hosted_model_check"),
        Route("/library/{model_id:path}", library.hosted_model_page, name="hosted_model_page"),
        Route("/sw.js", shell.service_worker, name="service_worker"),
        Route("/app-shell.json", shell.app_shell, name="app_shell"),
        Route("/provider-worker.js", providers.net_worker, name="net_worker"),
        Route("/api/connect-origins", providers.connect_origins_list, name="connect_origins"),
        Route("/api/connect-origins", providers.connect_origins_change, methods=["POST"]),
        Route("/api/server-providers", providers.server_providers, name="server_providers"),
        Route("/relay", relay.relay, name="relay", methods=["POST"]),
    ]
    routes = [
        *(page_routes if pages else []),
        Route("/models/index.json", hosting.models_index, name="models_index"),
        # The Hub's URL space under /models: huggingface-hub takes http://<host>/models as its endpoint.
        Route("/models/api/models/{rest:path}", hub_api.repo_api, name="repo_api", methods=["GET", "HEAD"]),
        Route("/models/{rest:path}", hosting.model_file, name="model_file", methods=["GET", "HEAD"]),
        Route("/libs/{name:path}", hosting.model_lib, name="model_lib", methods=["GET", "HEAD"]),
    ]
    if pages:
        routes.append(Mount("/static", app=StaticAssets(directory=STATIC_DIR), name="static"))
    app = FastAPI(routes=routes, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.pulls = PullJobs(settings.models_dir)
    # Proves a request came from this server's own page (a per-process secret in it): see owner.py.
    app.state.page_token = secrets.token_urlsafe(32)
    app.state.connect_origins = ConnectOrigins(settings.connect_origins_file)
    app.state.server_providers = {p.id: p for p in settings.server_providers}
    app.state.relay_client = relay.make_relay_client()
    app.state.templates = make_templates()
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app

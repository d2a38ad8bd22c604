"""The Jinja2 environment, and the htmx rule for full pages versus partials."""

from __future__ import annotations

from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from webapp import __version__
from webapp.paths import TEMPLATES_DIR


def make_templates() -> Jinja2Templates:
    """Templates with autoescaping on (the default for .html) and the app version as a global."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["hearth_version"] = __version__
    return templates


def make_page_context(request: Request, page: str) -> dict[str, Any]:
    """What every page template gets: the page name (for the navigation) and the page token (owner.py)."""
    return {"page": page, "page_token": request.app.state.page_token}


def wants_partial(request: Request) -> bool:
    """htmx asked for a fragment: HX-Request without HX-Boosted (a boosted link wants a page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(request: Request, page: str, partial: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render the partial for htmx and the full page otherwise; caches must tell them apart."""
    templates: Jinja2Templates = request.app.state.templates
    name = partial if wants_partial(request) else page
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response

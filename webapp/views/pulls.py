"""Pulls from the Hosted models page: start, watch, cancel (htmx partials; 303 after POST for plain forms).

Starting or cancelling a pull makes this server download to its disk, so only its owner may (webapp/owner.py).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from webapp.owner import owner_refusal
from webapp.pull_jobs import PullJobs
from webapp.views.templating import make_page_context, wants_partial

MAX_FORM_BYTES = 8192


def pulls_context(request: Request) -> dict[str, object]:
    """What the pulls partial needs; the library page includes it too."""
    settings = request.app.state.settings
    jobs: PullJobs = request.app.state.pulls
    return {"pulls": jobs.all(), "pull_token": request.app.state.page_token,
            "pulls_locked": settings.beyond_loopback and not settings.admin_token,
            "needs_admin_token": bool(settings.admin_token)}


def pulls_list(request: Request) -> Response:
    """GET /library/pulls: the pulls partial, running and recent (the page polls it while one runs)."""
    context = {**make_page_context(request, "library"), **pulls_context(request)}
    return request.app.state.templates.TemplateResponse(request, "_pulls.html", context)


async def pull_create(request: Request) -> Response:
    """POST /library/pulls: start pulling form field `source` (a repo id, with `endpoint`, or a URL)."""
    form = await _form(request)
    if refusal := _refusal(request, form):
        return refusal
    source, endpoint = form.get("source", "").strip(), form.get("endpoint", "").strip() or None
    if not source:
        return _answer(request, 400, "give a repository id (name or org/name) or the URL of a model directory")
    request.app.state.pulls.start(source, endpoint)
    return _answer(request)


async def pull_cancel(request: Request) -> Response:
    """POST /library/pulls/<id>/cancel: stop a running pull (its files stay for a later one)."""
    form = await _form(request)
    if refusal := _refusal(request, form):
        return refusal
    job = request.app.state.pulls.get(request.path_params["job_id"])
    if job is None:
        return _answer(request, 404, "no such pull")
    job.cancel.set()
    return _answer(request)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


def _refusal(request: Request, form: dict[str, str]) -> Response | None:
    problem = owner_refusal(request, form.get("token", ""), form.get("admin_token", ""), doing="start pulls")
    return _answer(request, 403, problem) if problem else None


def _answer(request: Request, status: int = 200, error: str = "") -> Response:
    """htmx gets the pulls partial (with the error); a plain form a 303 back to the page, or the error."""
    if not wants_partial(request):
        if error:
            return PlainTextResponse(error, status_code=status)
        return RedirectResponse("/library", status_code=303)
    context = {**make_page_context(request, "library"), **pulls_context(request), "pull_error": error}
    return request.app.state.templates.TemplateResponse(request, "_pulls.html", context, status_code=status)

"""The chat page: the model runs in the browser, so the server only sends the page."""

from starlette.requests import Request
from starlette.responses import Response

from webapp.views.templating import make_page_context


def chat_page(request: Request) -> Response:
    """GET /: the chat page (model picker, custom models, transcript)."""
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "chat.html", make_page_context(request, "chat"))

"""The model library: the models this server hosts, listed and detailed through htmx."""

import json

from starlette.requests import Request
from starlette.responses import Response

from webapp.catalog import find_model, scan_models
from webapp.hosting import model_entry
from webapp.views.pulls import pulls_context
from webapp.views.templating import make_page_context, render


def library_page(request: Request) -> Response:
    """GET /library: hosted models and broken model directories (the list alone for htmx)."""
    hosted, broken = scan_models(request.app.state.settings)
    context = make_page_context(request, "library")
    context.update(
        models=[model_entry(request, model) for model in hosted],
        broken=broken,
        models_dir=request.app.state.settings.models_dir,
        **pulls_context(request),
    )
    return render(request, "library.html", "_hosted_models.html", context)


def hosted_model_page(request: Request) -> Response:
    """GET /library/<id>: one hosted model's files, hashes, pinned URLs and SRI (the details alone for htmx)."""
    model_id = request.path_params["model_id"]
    hosted = find_model(request.app.state.settings, model_id)
    context = make_page_context(request, "library")
    if hosted is None:
        context.update(model_id=model_id)
        return render(request, "model_missing.html", "_model_missing.html", context, status_code=404)
    entry = model_entry(request, hosted)
    context.update(entry=entry, files=hosted.manifest.files, hub_endpoint=f"{request.base_url}models",
                   integrity_json=json.dumps(entry["integrity"], indent=2))
    return render(request, "hosted_model.html", "_hosted_model.html", context)


def hosted_model_check(request: Request) -> Response:
    """GET /library/<id>/check: validate a hosted model as WebLLM will load it, every recorded hash included."""
    from webapp.validation import validate_dir

    settings = request.app.state.settings
    model_id = request.path_params["model_id"]
    hosted = find_model(settings, model_id)
    context = make_page_context(request, "library")
    if hosted is None:
        context.update(model_id=model_id)
        return render(request, "model_missing.html", "_model_missing.html", context, status_code=404)
    context.update(model_id=model_id, report=validate_dir(hosted.model.path, libs_dir=settings.libs_dir))
    return render(request, "model_check.html", "_model_check.html", context)

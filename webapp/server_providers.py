"""Providers the server's owner defines for everyone who uses this Hearth (`hearth serve --providers`).

A YAML file lists providers and their models; keys and headers may name environment variables as
${NAME}, read when the server starts. Their keys never reach the browser: the page sees each provider
without its key or header values, and its calls go through the relay (webapp/relay.py), which adds them.

    providers:
      - id: team-llm                 # lowercase letters, digits, - and _
        name: Team LLM
        type: openai                 # openai | anthropic | gemini | azure
        base_url: http://10.0.0.5:4000/v1
        api_key: ${TEAM_LLM_KEY}
        headers: {X-Team: hearth}
        # azure only: api_version: 2024-10-21, azure_mode: classic | v1
        models:
          - {id: llama-3.1-8b, label: Llama 3.1 8B, context_length: 8192, max_output_tokens: 2048,
             vision: false, price_input: 0.2, price_output: 0.6}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PROVIDER_TYPES = ("openai", "anthropic", "gemini", "azure")
PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# How each type of endpoint takes its key.
KEY_HEADERS: dict[str, tuple[str, str]] = {
    "openai": ("Authorization", "Bearer {key}"),
    "anthropic": ("x-api-key", "{key}"),
    "gemini": ("x-goog-api-key", "{key}"),
    "azure": ("api-key", "{key}"),
}
MODEL_FIELDS = {"id": str, "label": str, "type": str, "context_length": int, "max_output_tokens": int,
                "vision": bool, "price_input": (int, float), "price_output": (int, float)}


class ProvidersFileError(ValueError):
    """The providers file cannot be used; the message names the place and what to fix."""


@dataclass(frozen=True)
class ServerProvider:
    """One provider from the file, with its secrets resolved (they stay on the server)."""

    id: str
    name: str
    type: str
    base_url: str
    api_key: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_version: str = ""
    azure_mode: str = "classic"
    models: tuple[Mapping[str, Any], ...] = ()

    def auth_headers(self) -> dict[str, str]:
        """The headers the relay adds to each call: the key in this type's header, then the extra ones."""
        headers = dict(self.headers)
        if self.api_key:
            name, template = KEY_HEADERS[self.type]
            headers[name] = template.format(key=self.api_key)
        return headers

    def public(self) -> dict[str, Any]:
        """What the page may know: everything but the key and the header values."""
        return {"id": self.id, "name": self.name, "type": self.type, "baseUrl": self.base_url,
                "apiVersion": self.api_version, "azureMode": self.azure_mode, "hasKey": bool(self.api_key),
                "headerNames": sorted(self.headers), "models": [dict(m) for m in self.models]}


def load_providers(path: Path, environ: Mapping[str, str] | None = None) -> tuple[ServerProvider, ...]:
    """Read and check a providers file; raises ProvidersFileError saying what is wrong where."""
    environ = os.environ if environ is None else environ
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvidersFileError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProvidersFileError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("providers"), list):
        raise ProvidersFileError(f"{path} must hold a list under `providers:` (see `hearth serve -h`)")
    providers = tuple(_provider(entry, f"{path}: providers[{i}]", environ)
                      for i, entry in enumerate(document["providers"]))
    ids = [p.id for p in providers]
    if duplicate := next((i for i in ids if ids.count(i) > 1), None):
        raise ProvidersFileError(f"{path}: two providers have the id {duplicate!r}; ids must be unique")
    return providers


def _provider(entry: Any, where: str, environ: Mapping[str, str]) -> ServerProvider:
    if not isinstance(entry, dict):
        raise ProvidersFileError(f"{where} must be a mapping with id, name, type, base_url and models")
    pid = str(entry.get("id", ""))
    if not PROVIDER_ID.match(pid):
        raise ProvidersFileError(f"{where}: id {pid!r} must be lowercase letters, digits, - or _, without spaces")
    where = f"{where} ({pid})"
    kind = entry.get("type", "openai")
    if kind not in PROVIDER_TYPES:
        raise ProvidersFileError(f"{where}: type {kind!r} is not one of {', '.join(PROVIDER_TYPES)}")
    base_url = str(entry.get("base_url", "")).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ProvidersFileError(f"{where}: base_url {base_url!r} must be an http(s) URL without ? or #")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ProvidersFileError(f"{where}: headers must be a mapping of names to values")
    models = entry.get("models") or []
    if not isinstance(models, list) or not models:
        raise ProvidersFileError(f"{where}: list at least one model under `models:`")
    return ServerProvider(
        id=pid, name=str(entry.get("name") or pid), type=kind, base_url=base_url,
        api_key=_expand(str(entry.get("api_key") or ""), f"{where} api_key", environ),
        headers={str(k): _expand(str(v), f"{where} header {k}", environ) for k, v in headers.items()},
        api_version=str(entry.get("api_version") or ""),
        azure_mode=str(entry.get("azure_mode") or "classic"),
        models=tuple(_model(m, f"{where} models[{i}]") for i, m in enumerate(models)),
    )


def _model(entry: Any, where: str) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"id": entry}
    if not isinstance(entry, dict) or not entry.get("id"):
        raise ProvidersFileError(f"{where} needs at least an id")
    for name, value in entry.items():
        wanted = MODEL_FIELDS.get(name)
        if wanted is None:
            raise ProvidersFileError(f"{where}: unknown field {name!r} (known: {', '.join(MODEL_FIELDS)})")
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise ProvidersFileError(f"{where}: {name} has the wrong kind of value ({value!r})")
    if entry.get("type", "chat") not in ("chat", "embedding"):
        raise ProvidersFileError(f"{where}: type must be chat or embedding")
    return dict(entry)


def _expand(value: str, where: str, environ: Mapping[str, str]) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ProvidersFileError(f"{where} names ${{{name}}}, which is not set in the server's environment")
        return environ[name]

    return ENV_REFERENCE.sub(variable, value)

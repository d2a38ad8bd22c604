"""Settings for one Hearth server: where models live and which headers pages get."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs

if TYPE_CHECKING:
    from webapp.server_providers import ServerProvider

APP_NAME = "hearth"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Model libraries sit in this folder of the models directory, beside one folder per model.
LIBS_DIR_NAME = "libs"

CoepPolicy = Literal["require-corp", "credentialless", "off"]
COEP_POLICIES: tuple[str, ...] = ("require-corp", "credentialless", "off")

# Hosts WebLLM's prebuilt catalogue downloads from (config, weights, and the model libraries).
# Hugging Face redirects weight downloads to its LFS / Xet CDNs, so those are listed too.
PREBUILT_MODEL_HOSTS: tuple[str, ...] = (
    "https://huggingface.co",
    "https://cdn-lfs.huggingface.co",
    "https://cdn-lfs-us-1.hf.co",
    "https://cas-bridge.xethub.hf.co",
    "https://raw.githubusercontent.com",
)


def default_data_dir() -> Path:
    """The per-user data directory (e.g. ~/.local/share/hearth)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_cache_dir() -> Path:
    """The per-user cache for heavy build outputs (runtime bitcode, compiled models)."""
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class Settings:
    """Everything one server needs to know; built by the CLI or by tests."""

    data_dir: Path = field(default_factory=default_data_dir)
    # None means "<data_dir>/models".
    models_dir_override: Path | None = None
    coep: CoepPolicy = "require-corp"
    # Extra origins the page may fetch models from (Content-Security-Policy connect-src).
    model_hosts: tuple[str, ...] = ()
    # Origins whose pages may read model files (CORS); "*" is any page, without credentials.
    allow_origins: tuple[str, ...] = ("*",)
    # Behind nginx: GET bodies are handed to it with X-Accel-Redirect under this internal prefix.
    accel_redirect: str | None = None
    # The address the server listens on, and the token its owner must give to pull from the page.
    listen_host: str = DEFAULT_HOST
    admin_token: str | None = None
    # Providers the owner defined for everyone (hearth serve --providers FILE), keys resolved.
    server_providers: tuple[ServerProvider, ...] = ()
    # Networks the relay may call although it refuses them by default (link-local, metadata), as CIDR.
    relay_allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.coep not in COEP_POLICIES:
            raise ValueError(f"coep must be one of {', '.join(COEP_POLICIES)}, not {self.coep!r}")

    @property
    def models_dir(self) -> Path:
        """Directory holding one folder per hosted model, plus libs/ for model libraries."""
        return (self.models_dir_override or self.data_dir / "models").resolve()

    @property
    def libs_dir(self) -> Path:
        """Directory of the hosted model libraries (.wasm), served at /libs/."""
        return self.models_dir / LIBS_DIR_NAME

    @property
    def connect_origins_file(self) -> Path:
        """Where the provider origins the page registered are kept (webapp/connect_origins.py)."""
        return self.data_dir / "connect-origins.json"

    @property
    def beyond_loopback(self) -> bool:
        """True when other machines can reach this server."""
        return self.listen_host not in ("127.0.0.1", "::1", "localhost")

    @property
    def connect_hosts(self) -> tuple[str, ...]:
        """Origins besides our own that the page may fetch from."""
        return PREBUILT_MODEL_HOSTS + tuple(h.rstrip("/") for h in self.model_hosts)

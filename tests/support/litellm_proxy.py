"""The LiteLLM proxy, for real, in its own venv (scripts/setup makes .venv-litellm), on loopback in front
of llama.cpp's server: its OpenAI, Anthropic (/v1/messages), Gemini (streamGenerateContent) and
Azure-shaped routes all end at the same local model."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.front_servers import free_port, stop, wait_for_port

LITELLM = Path(__file__).resolve().parents[2] / ".venv-litellm" / "bin" / "litellm"


def installed() -> bool:
    return LITELLM.exists()


@contextmanager
def litellm_proxy(upstream_v1: str, model: str, master_key: str, workdir: Path) -> Iterator[str]:
    """LiteLLM routing `model` to an OpenAI-compatible upstream; yields its base URL (no /v1)."""
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: hosted_vllm/{model}\n"
        f"      api_base: {upstream_v1}\n"
        "      api_key: none\n"
        # One failed call must not bench the only deployment for the next test.
        "router_settings:\n"
        "  disable_cooldowns: true\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true",
           "LITELLM_LOG": "ERROR", "NO_PROXY": "*", "HOME": str(workdir)}
    process = subprocess.Popen([str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                               cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "the LiteLLM proxy", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process, grace=15)

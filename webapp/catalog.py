"""Which models this server hosts: the checked model directories under the models directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webapp.mlc.files import MODEL_ID_PATTERN
from webapp.mlc.model_dir import MLCModel, ModelDirError, read_model_dir
from webapp.settings import LIBS_DIR_NAME, Settings


@dataclass(frozen=True)
class HostedModel:
    """A model directory that is complete and has its model library beside it."""

    model: MLCModel
    lib_name: str
    lib_bytes: int

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def total_bytes(self) -> int:
        """Everything a browser downloads to run the model: weights, config, tokenizer, library."""
        return self.model.total_bytes + self.lib_bytes


@dataclass(frozen=True)
class BrokenModel:
    """A directory that looks like a model but cannot be served; `problem` says what to fix."""

    model_id: str
    problem: str


def scan_models(settings: Settings) -> tuple[list[HostedModel], list[BrokenModel]]:
    """Read every model directory, sorted by id; broken ones are reported, not hidden."""
    hosted: list[HostedModel] = []
    broken: list[BrokenModel] = []
    root = settings.models_dir
    if not root.is_dir():
        return hosted, broken
    for entry in sorted(root.iterdir()):
        if entry.name == LIBS_DIR_NAME or entry.name.startswith(".") or not entry.is_dir():
            continue
        if not MODEL_ID_PATTERN.match(entry.name):
            broken.append(BrokenModel(entry.name, "the directory name is not a valid model id "
                                                  "(letters, digits, '.', '_' and '-' only)"))
            continue
        try:
            hosted.append(_hosted(entry, settings.libs_dir))
        except ModelDirError as exc:
            broken.append(BrokenModel(entry.name, str(exc)))
    return hosted, broken


def find_model(settings: Settings, model_id: str) -> HostedModel | None:
    """The hosted model with this id, or None when it is absent or broken."""
    if not MODEL_ID_PATTERN.match(model_id) or model_id == LIBS_DIR_NAME:
        return None
    path = settings.models_dir / model_id
    try:
        return _hosted(path, settings.libs_dir)
    except ModelDirError:
        return None


def _hosted(path: Path, libs_dir: Path) -> HostedModel:
    model = read_model_dir(path)
    lib_name = model.model_lib or f"{model.model_id}.wasm"
    lib = libs_dir / lib_name
    if not lib.is_file():
        raise ModelDirError(f"its model library {lib} is missing: compile the model or copy the .wasm there")
    return HostedModel(model=model, lib_name=lib_name, lib_bytes=lib.stat().st_size)

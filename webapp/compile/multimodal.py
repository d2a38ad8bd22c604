"""Multimodal checkpoints whose text model Hearth compiles alone: where its tensors sit, and what is left out.

A vision-language checkpoint (Gemma3ForConditionalGeneration) nests a text-only model's config and
tensors inside its own, beside an image encoder and a projector. Hearth compiles the text model as the
family's text-only checkpoint would give it; the image part is not compiled, so the chat takes text only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from webapp.compile.loaders import CheckpointError, Sources


@dataclass(frozen=True)
class MultimodalLayout:
    """How one multimodal architecture wraps its family's text-only model."""

    hf_architecture: str  # config.json "architectures" value, e.g. Gemma3ForConditionalGeneration
    # config.json -> the config.json of the text model alone, as the text-only architecture has it
    text_config: Callable[[dict[str, Any]], dict[str, Any]]
    # (prefix of a text-only tensor name, what replaces it here), one pair per naming transformers has used
    renames: tuple[tuple[str, str], ...]
    # the modules of the image part, whose tensors are not compiled (for messages)
    image_parts: tuple[str, ...]

    def text_sources(self, sources: Sources, names: Collection[str], where: str) -> Sources:
        """The family's name mapping moved to where this checkpoint keeps the text model's tensors."""
        for old, new in self.renames:
            if any(name.startswith(new) for name in names):
                return lambda param: [_renamed(source, old, new) for source in sources(param)]
        under = " or ".join(f"{new}*" for _, new in self.renames)
        image = ", ".join(self.image_parts)
        raise CheckpointError(
            f"{where} has no text model tensors: config.json says {self.hf_architecture}, whose text model is "
            f"named {under} (the image part, {image}, is not compiled). Download all of "
            f"the checkpoint's *.safetensors shards (model.safetensors.index.json lists them)"
        )


def _renamed(name: str, old: str, new: str) -> str:
    return new + name[len(old):] if name.startswith(old) else name

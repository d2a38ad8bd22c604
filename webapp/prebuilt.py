"""WebLLM's prebuilt model list, read from the vendored web-llm: the model library each Hub MLC repository needs.

The Hub's mlc-ai repositories hold weights, config and tokenizer but no library; WebLLM names one per
model in `prebuiltAppConfig.model_list`, built from two constants:

    const modelVersion = "v0_2_86/base";
    const modelLibURLPrefix = "https://raw.githubusercontent.com/.../web-llm-models/";
    model_list: [{ model: "https://huggingface.co/mlc-ai/<id>", model_id: "<id>",
                   model_lib: modelLibURLPrefix + modelVersion + "/<file>.wasm", ... }, ...]

The list is JavaScript, not JSON, so this reads the small subset it is written in (objects, arrays,
strings, numbers, names, `+` and comments) and fails with the file's name when the shape is not that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webapp.paths import VENDOR_DIR

WEBLLM_JS = VENDOR_DIR / "web-llm" / "index.js"
CONSTANTS = ("modelVersion", "modelLibURLPrefix")
HUB_PREFIX = "https://huggingface.co/"
_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)
  | (?P<punct>[{}\[\],:+])
""", re.VERBOSE | re.DOTALL)


class PrebuiltListError(Exception):
    """The vendored WebLLM is missing or its prebuilt list is not in the shape this module reads."""


class _Opaque:
    """A value the list computes in a way this reader does not evaluate (ModelType.embedding, true)."""


def prebuilt_libraries(path: Path = WEBLLM_JS) -> dict[str, str]:
    """Hub repo id (org/name, from each entry's `model` URL) → URL of its model library.

    Where several entries share a repository, the one whose model_id is the repository's name wins,
    else the first listed (WebLLM's own order).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PrebuiltListError(f"cannot read WebLLM's prebuilt model list in {path} ({exc.strerror or exc}): run "
                                "scripts/setup to vendor WebLLM, or pass the library's URL with --lib-url") from None
    libraries: dict[str, str] = {}
    named: set[str] = set()  # repositories whose own-named entry has been seen
    for entry in _model_list(text, path):
        repo_id, model_lib = _repo_and_library(entry, path)
        own_name = entry.get("model_id") == repo_id.rsplit("/", 1)[-1]
        if repo_id in named or (repo_id in libraries and not own_name):
            continue
        libraries[repo_id] = model_lib
        if own_name:
            named.add(repo_id)
    return libraries


def _model_list(text: str, path: Path) -> list[Any]:
    """The parsed `model_list` array of `const prebuiltAppConfig = {...}`."""
    constants = {}
    for name in CONSTANTS:
        match = re.search(rf'\bconst {name} = "([^"\\\n]*)";', text)
        if match is None:
            raise _shape(path, f'no `const {name} = "...";`')
        constants[name] = match.group(1)
    start = text.find("const prebuiltAppConfig = {")
    if start < 0:
        raise _shape(path, "no `const prebuiltAppConfig = {`")
    at = re.compile(r"\bmodel_list\s*:\s*\[").search(text, start)
    if at is None:
        raise _shape(path, "no `model_list: [` in prebuiltAppConfig")
    value = _Reader(text, at.end() - 1, constants, path).value()
    if not isinstance(value, list) or not value:
        raise _shape(path, "model_list is not a list of models")
    return value


def _repo_and_library(entry: Any, path: Path) -> tuple[str, str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise _shape(path, f"a model_list entry has no `model` URL: {entry!r:.200}")
    model, model_lib = entry["model"], entry.get("model_lib")
    if not model.startswith(HUB_PREFIX) or not isinstance(model_lib, str) or not model_lib.endswith(".wasm"):
        raise _shape(path, f"the entry for {model} lacks a Hub `model` URL or a `model_lib` URL of a .wasm")
    repo_id = urlsplit(model).path.strip("/").removesuffix("/resolve/main")
    return repo_id, model_lib


def _shape(path: Path, what: str) -> PrebuiltListError:
    return PrebuiltListError(f"{path} is not the WebLLM this Hearth knows how to read ({what}); run scripts/setup "
                             "to vendor the pinned @mlc-ai/web-llm, or pass the library's URL with --lib-url")


class _Reader:
    """Reads one JavaScript literal (the subset the prebuilt list uses) starting at an offset."""

    def __init__(self, text: str, offset: int, constants: dict[str, str], path: Path) -> None:
        self.text, self.pos, self.constants, self.path = text, offset, constants, path

    def _next(self) -> tuple[str, str]:
        while True:
            match = _TOKEN.match(self.text, self.pos)
            if match is None:
                line = self.text.count("\n", 0, self.pos) + 1
                raise _shape(self.path, f"unexpected {self.text[self.pos:self.pos + 20]!r} on line {line}")
            self.pos = match.end()
            if match.lastgroup != "space":
                return match.lastgroup or "", match.group()

    def _peek(self) -> tuple[str, str]:
        pos = self.pos
        token = self._next()
        self.pos = pos
        return token

    def _expect(self, punct: str) -> None:
        if self._next() != ("punct", punct):
            raise _shape(self.path, f"expected {punct!r} near line {self.text.count(chr(10), 0, self.pos) + 1}")

    def value(self) -> Any:
        """A term, or terms joined by `+` (strings and the named constants concatenate)."""
        terms = [self._term()]
        while self._peek() == ("punct", "+"):
            self._next()
            terms.append(self._term())
        if len(terms) == 1:
            return terms[0]
        return "".join(terms) if all(isinstance(t, str) for t in terms) else _Opaque()

    def _term(self) -> Any:
        kind, token = self._next()
        if kind == "string":
            return self._string(token)
        if kind == "number":
            return float(token)
        if kind == "name":
            return self.constants.get(token, _Opaque())
        if token == "{":
            return self._items("}", keyed=True)
        if token == "[":
            return self._items("]", keyed=False)
        raise _shape(self.path, f"unexpected {token!r} near line {self.text.count(chr(10), 0, self.pos) + 1}")

    def _string(self, token: str) -> str:
        # JavaScript's escapes are JSON's plus \' (and rarer ones the list does not use).
        body = token[1:-1].replace("\\'", "'")
        if token[0] == "'":
            body = re.sub(r'(?<!\\)"', '\\"', body)
        try:
            return json.loads(f'"{body}"')
        except ValueError:
            raise _shape(self.path, f"a string this reader cannot decode: {token[:40]!r}") from None

    def _items(self, close: str, keyed: bool) -> Any:
        result: Any = {} if keyed else []
        while self._peek() != ("punct", close):
            if keyed:
                kind, key = self._next()
                if kind not in ("name", "string"):
                    raise _shape(self.path, f"unexpected key {key!r}")
                self._expect(":")
                result[key.strip("\"'")] = self.value()
            else:
                result.append(self.value())
            if self._peek() != ("punct", close):
                self._expect(",")
        self._next()
        return result

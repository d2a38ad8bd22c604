"""WebLLM's sampling and logit-processing functions compute what numpy says, on the CPU and on WebGPU.

The greedy browser test only needs the largest probability first; here every function is checked
whole: softmax with and without temperature, the full descending argsort (a 49152-token
vocabulary takes every path of the sorting network), top-p sampling at chosen uniform draws,
and the three in-place logit processors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser

from tests.browser.chromium import open_page
from tests.compiled import compiled_abi_library
from tests.conftest import LiveServer
from webapp.paths import VENDOR_DIR
from webapp.settings import Settings

pytestmark = pytest.mark.compiler

VOCAB = 49152
ABI_PROBE = Path(__file__).resolve().parent / "browser" / "abi_probe.js"
# Inside WebLLM's bundle, tvmjs is the module object bound to this name (WebLLM does not export it).
WEBLLM_TVMJS_BINDING = "var libExports$2 = requireLib$2();"


def _inputs(seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(VOCAB) * 4).astype(np.float32)
    probs = np.exp(logits - logits.max())
    probs = (probs / probs.sum()).astype(np.float32)
    probs[[5, 900, 40000]] = probs[77]  # exact ties: the lower token id must come first
    return {"logits": logits, "probs": probs}


def _top_p_reference(probs: np.ndarray, uniform: float, top_p: float) -> int:
    """The token sample_with_top_p picks: the first sorted token whose cumulative mass passes u * kept mass."""
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order].astype(np.float64))
    kept = cumulative[min(int(np.searchsorted(cumulative, top_p, side="left")), len(order) - 1)]
    position = int(np.searchsorted(cumulative, uniform * kept, side="right"))
    # float32 cumulative sums on the device differ in the last bits: the draw must not sit on a boundary.
    bounds = cumulative[max(position - 1, 0) : position + 1]
    assert np.all(np.abs(bounds - uniform * kept) > 1e-5), "test draw too close to a boundary"
    return int(order[position])


# (uniform draw, top_p): draws away from the cumulative-sum boundaries, nuclei small and large.
SAMPLES = [(0.5, 1.0), (0.05, 0.3), (0.93, 0.9), (0.8, 0.95)]


def _cases(data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    logits, probs = data["logits"], data["probs"]

    def arg(array: np.ndarray, shape: list[int] | None = None) -> list[Any]:
        return [array.ravel().tolist(), shape or list(array.shape), str(array.dtype)]

    sorted_probs = np.sort(probs)[::-1].copy()
    order = np.argsort(-probs, kind="stable").astype(np.int32)
    cases: list[dict[str, Any]] = [
        {"func": "softmax_with_temperature", "args": [arg(logits, [1, 1, VOCAB]), arg(np.float32([0.7]))]},
        {"func": "softmax_with_temperature", "args": [arg(logits, [1, 1, VOCAB]), arg(np.float32([1e-6]))]},
        {"func": "argsort_probs", "args": [arg(probs, [1, VOCAB])]},
    ]
    for uniform, top_p in SAMPLES:
        cases.append({
            "func": "sample_with_top_p",
            "args": [arg(sorted_probs, [1, VOCAB]), arg(order, [1, VOCAB]), arg(np.float32([uniform])),
                     arg(np.int32([0])), arg(np.float32([top_p]))],
        })  # fmt: skip
    tokens = np.int32([3, 17, 40000])
    cases += [
        {"func": "apply_logit_bias_inplace",
         "args": [arg(logits, [1, VOCAB]), arg(np.int32([0, 0, 0])), arg(tokens), arg(np.float32([5.0, -2.5, 100.0]))],
         "readArgs": [0]},
        {"func": "apply_penalty_inplace",
         "args": [arg(logits, [1, VOCAB]), arg(np.int32([0])), arg(np.int32([0, 0, 0])), arg(tokens),
                  arg(np.int32([1, 2, 3])), arg(np.float32([0.5, 0.25, 1.3]), [1, 3])],
         "readArgs": [0]},
        {"func": "apply_bitmask_inplace",
         "args": [arg(logits, [1, VOCAB]), arg(np.int32([0])), arg(_bitmask(tokens), [1, VOCAB // 32])],
         "readArgs": [0]},
    ]  # fmt: skip
    return cases


def _bitmask(allowed: np.ndarray) -> np.ndarray:
    words = np.zeros(VOCAB // 32, dtype=np.uint32)
    for token in allowed:
        words[token // 32] |= np.uint32(1) << np.uint32(token % 32)
    return words.view(np.int32)


def _check(data: dict[str, np.ndarray], results: list[list[Any]]) -> None:
    logits, probs = data["logits"], data["probs"]
    softmax, greedy, (sorted_probs, order), *rest = results
    expected = np.exp((logits - logits.max()) / 0.7)
    np.testing.assert_allclose(np.ravel(softmax), expected / expected.sum(), rtol=1e-4, atol=1e-9)
    assert np.ravel(greedy).tolist() == (logits == logits.max()).astype(np.float32).tolist()

    reference_order = np.argsort(-probs, kind="stable")
    assert np.ravel(order).tolist() == reference_order.tolist()
    assert np.ravel(sorted_probs).tolist() == probs[reference_order].tolist()

    samples, (biased,), (penalized,), (masked,) = rest[: len(SAMPLES)], *rest[len(SAMPLES) :]
    for (uniform, top_p), (token,) in zip(SAMPLES, samples, strict=True):
        assert token == [_top_p_reference(probs, uniform, top_p)], (uniform, top_p)

    tokens = [3, 17, 40000]
    expected_bias = logits.copy()
    expected_bias[tokens] += np.float32([5.0, -2.5, 100.0])
    np.testing.assert_array_equal(np.float32(biased), expected_bias)
    expected_penalty = logits.copy()
    presence, frequency, repetition = np.float32(0.5), np.float32(0.25), np.float32(1.3)
    for token, count in zip(tokens, [1, 2, 3], strict=True):
        value = expected_penalty[token] - (presence + np.float32(count) * frequency)
        expected_penalty[token] = value * repetition if value < 0 else value / repetition
    np.testing.assert_allclose(np.float32(penalized), expected_penalty, rtol=1e-6)
    masked = np.float32(masked)
    np.testing.assert_array_equal(masked[tokens], logits[tokens])
    # Masked tokens get the lowest float (as TVM prints it in WGSL, it comes back 2 units off).
    others = np.ones(VOCAB, bool)
    others[tokens] = False
    assert np.all(masked[others] <= -3.4e38)


def test_abi_functions_on_the_cpu_build() -> None:
    import tvm
    from tvm import relax

    from webapp.compile.abi import ABI_FUNCTIONS, attach_abi
    from webapp.compile.build import pipeline

    target = tvm.target.Target({"kind": "llvm"})
    meta: dict[str, Any] = {}
    mod = attach_abi(tvm.IRModule(), target, VOCAB, meta)
    with target:
        executable = relax.build(mod, target, relax_pipeline=pipeline(target, meta, ABI_FUNCTIONS))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    data = _inputs()
    results = []
    for case in _cases(data):
        tensors = [tvm.runtime.tensor(np.asarray(v, dtype=dtype).reshape(shape)) for v, shape, dtype in case["args"]]
        # Like tvmjs, look through imports too: the in-place processors are kernels, not VM functions.
        ret = vm.module.get_function(case["func"], query_imports=True)(*tensors)
        returned = [] if ret is None else [ret] if isinstance(ret, tvm.runtime.Tensor) else list(ret)
        outputs = [t.numpy().ravel().tolist() for t in returned]
        outputs += [tensors[i].numpy().ravel().tolist() for i in case.get("readArgs", [])]
        results.append(outputs)
    _check(data, results)


@pytest.fixture(scope="module")
def served_library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    library = compiled_abi_library(VOCAB)
    models = tmp_path_factory.mktemp("models")
    (models / "libs").mkdir()
    (models / "libs" / library.name).write_bytes(library.read_bytes())
    with LiveServer(Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir_override=models)) as server:
        yield server, library.name


@pytest.mark.browser
@pytest.mark.timeout(1800)
def test_abi_functions_on_webgpu(served_library: tuple[LiveServer, str], browser: Browser) -> None:
    server, library = served_library
    bundle = (VENDOR_DIR / "web-llm" / "index.js").read_text()
    assert WEBLLM_TVMJS_BINDING in bundle, "WebLLM's bundle no longer binds tvmjs as libExports$2"
    data = _inputs()
    with open_page(browser) as page:
        # WebLLM does not export its tvmjs; the page gets the same bundle with one export added.
        tvmjs = bundle + "\nexport { libExports$2 as tvmjs };\n"
        page.route(
            f"{server.url}/hearth-test/tvmjs.js",
            lambda route: route.fulfill(body=tvmjs, content_type="text/javascript"),
        )
        page.goto(f"{server.url}/library")
        results = page.evaluate(
            ABI_PROBE.read_text(),
            {
                "tvmjsUrl": f"{server.url}/hearth-test/tvmjs.js",
                "libUrl": f"{server.url}/libs/{library}",
                "cases": _cases(data),
            },
        )
    _check(data, results)

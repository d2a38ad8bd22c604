"""WebLLM's progress reports and error strings, as the page puts them into words."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# Texts in the shapes WebLLM 0.2.86 reports them (lib/index.js: fetchTensorCacheInternal,
# asyncLoadWebGPUPipelines, reloadInternal), with the progress it reports alongside.
PROGRESS = [
    ({"progress": 0, "text": "Start to fetch params"}, ["Starting the download", 0, ""]),
    ({"progress": 0.25, "text": "Fetching param cache[3/12]: 100MB fetched. 25% completed, 4 secs elapsed. "
                                "It can take a while when we first visit this page to populate the cache. "
                                "Later refreshes will become faster."},
     ["Downloading weights", 0.25, "3 of 12 files · 105 MB of 419 MB · 26.2 MB/s · about 12 s left"]),
    ({"progress": 0.05, "text": "Fetching param cache[1/12]: 20MB fetched. 5% completed, 20 secs elapsed."},
     ["Downloading weights", 0.05, "1 of 12 files · 21.0 MB of 419 MB · 1.0 MB/s · about 7 min left"]),
    ({"progress": 0.5, "text": "Loading model from cache[6/12]: 200MB loaded. 50% completed, 2 secs elapsed."},
     ["Loading weights from the browser cache", 0.5, "6 of 12 files · 210 MB of 419 MB"]),
    ({"progress": 0.1, "text": "Loading GPU shader modules[8/80]: 10% completed, 3 secs elapsed."},
     ["Compiling GPU shaders", 0.1, "8 of 80 shader modules"]),
    ({"progress": 1, "text": "Finish loading on WebGPU - google"}, ["Ready", 1, ""]),
]

# What the worker sends back: err.toString(), i.e. "<Name>: <message>".
ERRORS = [
    ("ShaderF16SupportError: This model requires WebGPU extension shader-f16, which is not enabled in this browser.",
     "Pick the q4f32 variant"),
    ("FeatureSupportError: This model requires feature subgroups, which is not yet supported by this browser.",
     "needs a WebGPU feature this browser does not offer"),
    ("DeviceLostError: The WebGPU device was lost while loading the model.", "usually because it ran out of memory"),
    ("QuotaExceededError: Failed to execute 'add' on 'Cache': Quota exceeded.", "no room left to store this model"),
    ("TypeError: Failed to fetch", "could not be downloaded"),
    # Cache.add's words when the service worker's retries ran out (or the host refused the file).
    ("TypeError: Failed to execute 'add' on 'Cache': Request failed", "could not be downloaded"),
    ("Error: Cannot fetch https://huggingface.co/x/resolve/main/params_shard_3.bin err= TypeError: network error",
     "could not be downloaded"),
    ("CompileError: WebAssembly.instantiate(): expected magic word 00 61 73 6d", "model library (.wasm)"),
    ("Error: Unable to find a compatible GPU. This issue might be because your computer doesn't have a GPU",
     "found no usable GPU"),
    ("TypeError: Failed to construct 'URL': Invalid URL", "URLs must be absolute"),
    ("ContextWindowSizeExceededError: Prompt tokens exceed context window size", "Start a new chat"),
    ("WorkerError: the engine's worker stopped (it could not start)", "Reload the page"),
    ("SomeNewError: a message nobody has seen yet", "Something went wrong in the model engine."),
]


def test_progress_reports_become_phases_and_bytes(chat: Page) -> None:
    described = chat.evaluate("""async (reports) => {
      const { describeProgress } = await import("/static/js/progress.js");
      return reports.map((report) => Object.values(describeProgress(report)));
    }""", [report for report, _ in PROGRESS])
    assert described == [expected for _, expected in PROGRESS]


def test_worker_error_strings_become_plain_words(chat: Page) -> None:
    explained = chat.evaluate("""async (errors) => {
      const { explainError, isDownloadFailure } = await import("/static/js/errors.js");
      return errors.map((error) => ({ ...explainError(error), download: isDownloadFailure(error) }));
    }""", [error for error, _ in ERRORS])
    for (error, phrase), result in zip(ERRORS, explained, strict=True):
        assert phrase in result["message"], error
        assert result["detail"] == error
        # A download that failed is offered Resume; nothing else is.
        assert result["download"] == (phrase == "could not be downloaded"), error

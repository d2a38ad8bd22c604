import { integrityMessage } from "./integrity.js";

/**
 * WebLLM's errors in plain words. From the worker they arrive as strings "<Name>: <message>",
 * so they are matched on the name (and a few telling phrases), never on the class.
 */

// How a model file's download fails in WebLLM's words: fetch's, or Cache.add's for a host that answered
// with an error (after the service worker's retries ran out).
const DOWNLOAD_FAILED = /NetworkError|Failed to fetch|Cannot fetch|network|ERR_|Request failed/i;

const EXPLANATIONS = [
  [/^ShaderF16SupportError|shader-f16/, "This model needs shader-f16 (16-bit float shaders), which this GPU or "
    + "browser does not offer. Pick the q4f32 variant of the same model."],
  [/^FeatureSupportError/, "This model needs a WebGPU feature this browser does not offer. Pick another model, "
    + "or try a newer Chrome or Edge."],
  [/^DeviceLostError|Device was lost/i, "The GPU gave up while running the model, usually because it ran out of "
    + "memory. Close other tabs that use the GPU, or pick a smaller model, then load it again."],
  [/QuotaExceeded|Quota exceeded/i, "The browser has no room left to store this model. Free space (delete "
    + "cached models or this site's data) and try again; private windows get much less room."],
  [/^WebGPUNotAvailableError|^WebGPUNotFoundError/, "This browser has no WebGPU. Use a recent Chrome or Edge "
    + "on a desktop."],
  [/Unable to find a compatible GPU/i, "WebGPU found no usable GPU. Turn on hardware acceleration in the "
    + "browser's settings, or update the graphics driver."],
  [/^(CompileError|LinkError)|WebAssembly/, "The model library (.wasm) could not be loaded: it is damaged, or "
    + "built for another WebLLM version than this page's (0.2.86). Rebuild it, or check its URL."],
  [/^MissingModelError/, "This model has no model library URL (.wasm). Edit the model and add one."],
  [/^ModelNotFoundError/, "This model is not in the catalogue any more. Reload the page and pick it again."],
  [/^ContextWindowSizeExceededError/, "The conversation no longer fits the model's context window. Start a new "
    + "chat, or raise the context window of a custom model."],
  [/^UnsupportedTokenizerFilesError/, "The model has no tokenizer.json or tokenizer.model, so WebLLM cannot read "
    + "text with it. Add the tokenizer file next to the weights."],
  [/^IntegrityError/, "A downloaded model file does not match its expected hash, so it was not used. The host may "
    + "have changed the model: clear it from the cache and try again."],
  [/^CancelledError/, "The load was cancelled. The files already downloaded are kept: load the model again "
    + "to go on from there."],
  [/^WorkerError/, "The model engine's worker stopped, perhaps because the browser ran out of memory. Reload the "
    + "page and load the model again."],
  [/Invalid URL/i, "A model URL is not valid. Edit the model: URLs must be absolute (https://…) or start with /."],
  [DOWNLOAD_FAILED, "A model file could not be downloaded. Check your "
    + "connection and that the model host is up, then load again: files already downloaded are kept."],
];

/** {message, detail}: what to tell people, and WebLLM's own text for the curious. */
export function explainError(error) {
  // A provider's errors are already in plain words (providers/stream.js).
  if (error?.name === "ProviderError") return { message: error.message, detail: error.serverText ?? "" };
  const detail = errorText(error);
  const match = EXPLANATIONS.find(([pattern]) => pattern.test(detail));
  const message = integrityMessage(detail) ?? (match ? match[1] : "Something went wrong in the model engine.");
  return { message, detail };
}

/** Whether an engine error's text says a model file could not be downloaded (loading again may resume it). */
export function isDownloadFailure(detail) {
  return DOWNLOAD_FAILED.test(detail);
}

function errorText(error) {
  if (typeof error === "string") return error;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

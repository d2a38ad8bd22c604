/**
 * GPU memory a WebLLM model needs, estimated before its weights download: the weights (from its
 * tensor-cache.json) and the KV cache for the chosen context window (from its mlc-chat-config.json,
 * laid out as TVM's paged KV cache: one GPU buffer per layer). WebGPU tells a page the largest buffer
 * it may create, never how much memory the GPU has, so the largest single buffer is what is compared;
 * the total is stated, not compared. No DOM here.
 */

import { formatBytes } from "./format.js";
import { SMALLEST_WINDOW } from "./load-recovery.js";
import { modelDescription } from "./model-storage.js";
import { PARAMS } from "./params.js";
import { runsInBrowser } from "./runtimes/index.js";

// What tvmjs's detectGPUDevice (WebLLM 0.2.86) asks the adapter for, largest first: the engine's
// device gets exactly the first that the adapter offers (tests/browser check it against the worker's).
const ENGINE_MAX_BUFFER = [1 << 30, 1 << 28];
const ENGINE_MAX_BINDING = [1 << 30, 1 << 27];
// WebLLM's KV cache page, in tokens (LLMChatPipeline's defaultPageSize); TVM adds one page, and two
// more when the cache supports a sliding window.
const PAGE_TOKENS = 16;
// The window offered instead is at most what the chat settings accept.
const LARGEST_WINDOW = PARAMS.find((param) => param.name === "context_window_size").max;

/**
 * Before a load: gpuMemoryProblem for this entry at the chosen context window (null: the model's or
 * its record's own), or null when it fits or cannot be told (no GPU, its config unreadable now). Reads
 * the model's config and tensor list into WebLLM's caches, where the load finds them; a refusal
 * deletes them again, so a refused model leaves nothing stored.
 */
export async function gpuRoomProblem(entry, contextWindow, gpu) {
  if (!runsInBrowser(entry) || !entry.record?.model || !gpu.ok || !gpu.limits) return null;
  const description = await modelDescription(entry.record);
  if (!isObject(description?.config) || !isObject(description.tensorCache)) return null;
  const shape = memoryShape(description.config, description.tensorCache);
  const window = contextWindow ?? entry.record.overrides?.context_window_size ?? null;
  const problem = gpuMemoryProblem(entry.name, shape, estimateGpuMemory(shape, window), engineBufferLimit(gpu.limits));
  if (problem) await description.forget();
  return problem;
}

/**
 * The largest single buffer the engine's GPU device will accept: {bytes, limit (the WebGPU limit's
 * name), adapter (what the adapter itself offers)}. adapterLimits = {maxBufferSize, maxStorageBufferBindingSize}.
 */
export function engineBufferLimit(adapterLimits) {
  const buffer = ENGINE_MAX_BUFFER.find((size) => size <= adapterLimits.maxBufferSize) ?? adapterLimits.maxBufferSize;
  const binding = ENGINE_MAX_BINDING.find((size) => size <= adapterLimits.maxStorageBufferBindingSize)
    ?? adapterLimits.maxStorageBufferBindingSize;
  return binding <= buffer
    ? { bytes: binding, limit: "maxStorageBufferBindingSize", adapter: adapterLimits.maxStorageBufferBindingSize }
    : { bytes: buffer, limit: "maxBufferSize", adapter: adapterLimits.maxBufferSize };
}

/**
 * What decides a model's GPU memory, read from its config and tensor list: {weights (bytes),
 * largestTensor ({name, bytes}), kv ({layers, kvHeads, headDim, bytes per value}, null when the
 * config does not say), contextWindow, slidingWindow (from the config, before any override)}.
 */
export function memoryShape(config, tensorCache) {
  const model = config.model_config ?? {};
  const heads = firstNumber(model.num_attention_heads, model.n_head);
  const kv = {
    layers: firstNumber(model.num_hidden_layers, model.num_layers, model.n_layer),
    kvHeads: firstNumber(model.num_key_value_heads, model.num_kv_heads, heads),
    headDim: firstNumber(model.head_dim, model.hidden_size && heads ? model.hidden_size / heads : null),
    // The KV cache holds the model's activations: 16-bit floats for an f16 quantization, else 32-bit
    // (the rule hearth validate's estimate_gpu_bytes uses).
    bytes: /f16/i.test(config.quantization ?? "") ? 2 : 4,
  };
  const shards = Array.isArray(tensorCache.records) ? tensorCache.records : [];
  const tensors = shards.flatMap((shard) => (Array.isArray(shard.records) ? shard.records : []));
  const largest = tensors.reduce((big, tensor) => ((tensor.nbytes ?? 0) > big.bytes
    ? { name: tensor.name, bytes: tensor.nbytes } : big), { name: null, bytes: 0 });
  return {
    weights: shards.reduce((sum, shard) => sum + (shard.nbytes ?? 0), 0),
    largestTensor: largest,
    kv: kv.layers && kv.kvHeads && kv.headDim ? kv : null,
    contextWindow: positive(config.context_window_size),
    slidingWindow: positive(config.sliding_window_size),
  };
}

/**
 * The estimate for a context window (the chosen one, else the model's): {tokens (what the KV cache
 * holds: the sliding window when the model has one, as WebLLM sizes it), sliding, weights,
 * kvPerLayer, kv, total, largestBuffer}, in bytes.
 */
export function estimateGpuMemory(shape, contextWindow = null) {
  const sliding = shape.slidingWindow;
  const tokens = sliding ?? contextWindow ?? shape.contextWindow;
  const kvPerLayer = shape.kv && tokens ? kvLayerBytes(shape.kv, tokens, Boolean(sliding)) : null;
  const kv = kvPerLayer === null ? null : kvPerLayer * shape.kv.layers;
  return {
    tokens,
    sliding: Boolean(sliding),
    weights: shape.weights,
    kvPerLayer,
    kv,
    total: shape.weights + (kv ?? 0),
    largestBuffer: Math.max(kvPerLayer ?? 0, shape.largestTensor.bytes),
  };
}

/**
 * Why this model cannot load on this GPU at this window, before anything downloads: {message,
 * detail (what was compared, figure by figure), window (a context window that fits, or null)};
 * null when its largest buffer fits.
 */
export function gpuMemoryProblem(name, shape, estimate, limit) {
  if (estimate.largestBuffer <= limit.bytes) return null;
  const allowed = `WebGPU lets WebLLM create buffers of at most ${formatBytes(limit.bytes)} here (${limit.limit})`;
  const compared = `Compared: the largest buffer the model needs, ${estimate.largestBuffer} bytes, with the engine's `
    + `${limit.limit} of ${limit.bytes} bytes (the adapter offers ${limit.adapter}; WebLLM asks for at most 1 GiB).`;
  if (estimate.kvPerLayer !== estimate.largestBuffer) {
    return {
      message: `${name} cannot run on this GPU: its largest weight (${shape.largestTensor.name}) takes `
        + `${formatBytes(shape.largestTensor.bytes)} in one GPU buffer, and ${allowed}. Nothing was downloaded. `
        + `Pick a smaller model. ${totalSentence(estimate, "In all it")}`,
      detail: compared,
      window: null,
    };
  }
  const { layers, kvHeads, headDim, bytes } = shape.kv;
  const window = estimate.sliding ? null : windowThatFits(shape, limit.bytes);
  const advice = window
    ? `Pick a context window of ${tokenCount(window)} or fewer (Chat settings → Context window), or a smaller model. `
      + totalSentence(estimateGpuMemory(shape, window), "At that window it")
    : `Pick a smaller model. ${totalSentence(estimate, "In all it")}`;
  return {
    message: `${name} cannot run on this GPU with a ${estimate.sliding ? "sliding" : "context"} window of `
      + `${tokenCount(estimate.tokens)}: its KV cache keeps each of its ${layers} layers in one GPU buffer of `
      + `${formatBytes(estimate.kvPerLayer)}, and ${allowed}. Nothing was downloaded. ${advice}`,
    detail: `${compared} One layer's KV cache: ${estimate.tokens} tokens in pages of ${PAGE_TOKENS} (plus TVM's spare `
      + `pages) × 2 (keys and values) × ${kvHeads} KV heads × ${headDim} values per head × ${bytes} bytes.`,
    window,
  };
}

function totalSentence(estimate, start) {
  return `${start} needs at least ${formatBytes(estimate.total)} of GPU memory `
    + `(weights ${formatBytes(estimate.weights)}`
    + `${estimate.kv === null ? "" : `, KV cache ${formatBytes(estimate.kv)}`}); WebGPU does not tell a page how much `
    + "memory the GPU has, so only the largest buffer is compared.";
}

function tokenCount(count) {
  return `${count.toLocaleString("en")} tokens`;
}

// TVM's PagedAttentionKVCache: (ceil(tokens / page) + 1 [+ 2 with a sliding window]) pages per layer.
function kvLayerBytes({ kvHeads, headDim, bytes }, tokens, sliding) {
  const pages = Math.ceil(tokens / PAGE_TOKENS) + 1 + (sliding ? 2 : 0);
  return pages * PAGE_TOKENS * 2 * kvHeads * headDim * bytes;
}

// The largest power of two tokens whose KV cache layer fits the limit, within the settings' range; else null.
function windowThatFits(shape, limitBytes) {
  let window = LARGEST_WINDOW;
  while (window >= SMALLEST_WINDOW && kvLayerBytes(shape.kv, window, false) > limitBytes) window /= 2;
  return window >= SMALLEST_WINDOW && shape.largestTensor.bytes <= limitBytes ? window : null;
}

function isObject(value) {
  return Boolean(value) && typeof value === "object" && !Array.isArray(value);
}

function firstNumber(...values) {
  return values.find((value) => Number.isFinite(value) && value > 0) ?? null;
}

function positive(value) {
  return Number.isFinite(value) && value > 0 ? value : null;
}

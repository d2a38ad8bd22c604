/** The model catalogue: WebLLM's prebuilt models, the models this server hosts and the user's own. */

import { ModelType, prebuiltAppConfig } from "/static/vendor/web-llm/index.js";
import { SHADER_F16, gpuProblems } from "./gpu.js";
import { runsInBrowser } from "./runtimes/index.js";
import { validIntegrity } from "./integrity.js";
import { chooseLibrary } from "./library-choice.js";
import { absoluteUrl } from "./urls.js";

const HOSTED_INDEX_URL = "/models/index.json";
// The last listing this server gave: offline, its models can still load from the browser's caches.
const REMEMBERED_HOSTED_KEY = "hearthHostedModels";
// A quantization token inside a model id, e.g. "q4f16_1" in "Llama-3.2-1B-Instruct-q4f16_1-MLC".
const QUANTIZATION_IN_ID = /(?:^|[-.])(q\d+b?f(?:16|32)(?:_\d+)?)(?=$|[-.])/i;
const MB = 1_000_000;

/** The models this server hosts, from /models/index.json; throws with a plain message. */
export async function fetchHostedModels() {
  let response;
  try {
    response = await fetch(HOSTED_INDEX_URL, { cache: "no-cache" });
  } catch {
    throw new Error("Could not list the models on this server (is it running, or are you offline?).");
  }
  if (!response.ok) throw new Error(`Could not list the models on this server (it answered ${response.status}).`);
  const index = await response.json();
  return Array.isArray(index.models) ? index.models : [];
}

/** Keep the server's listing for the next time it cannot be reached. */
export function rememberHostedModels(models) {
  try {
    localStorage.setItem(REMEMBERED_HOSTED_KEY, JSON.stringify(models));
  } catch {
    // Storage full or disabled: the page works the same online, it only forgets offline.
  }
}

/** The listing kept by rememberHostedModels, or null; an unreadable copy is kept aside, not used. */
export function rememberedHostedModels() {
  const saved = localStorage.getItem(REMEMBERED_HOSTED_KEY);
  if (saved === null) return null;
  try {
    const models = JSON.parse(saved);
    if (Array.isArray(models)) return models;
  } catch {
    // fall through: set aside below
  }
  localStorage.setItem(`${REMEMBERED_HOSTED_KEY}.unreadable`, saved);
  localStorage.removeItem(REMEMBERED_HOSTED_KEY);
  return null;
}

/** The quantization a model id names, or "" (e.g. "q0f16" from "SmolLM2-135M-Instruct-q0f16-MLC"). */
export function quantizationFromId(modelId) {
  return QUANTIZATION_IN_ID.exec(modelId)?.[1] ?? "";
}

/** Any f16 quantization computes in 16-bit floats, whether or not a record lists shader-f16. */
export function needsF16(quantization) {
  return /f16/i.test(quantization);
}

/** The same model with 32-bit float compute, e.g. q4f16_1 → q4f32_1, q0f16 → q0f32. */
export function f32Variant(modelId) {
  return modelId.replace(/(q\d+)b?f16/i, "$1f32");
}

function requiredFeatures(listed, quantization) {
  const features = new Set(listed ?? []);
  if (needsF16(quantization)) features.add(SHADER_F16);
  return [...features];
}

function prebuiltEntry(record) {
  const quantization = quantizationFromId(record.model_id);
  const features = requiredFeatures(record.required_features, quantization);
  return {
    id: record.model_id,
    name: record.model_id,
    source: "prebuilt",
    runtime: "webllm",
    quantization,
    size: record.vram_required_MB ? { bytes: record.vram_required_MB * MB, kind: "GPU memory", download: false } : null,
    needs: { features, bufferBytes: record.buffer_size_required_bytes },
    description: "",
    // Listing shader-f16 makes WebLLM refuse clearly (ShaderF16SupportError) instead of failing later.
    record: features.length ? { ...record, required_features: features } : record,
  };
}

function hostedEntry(model, gpu) {
  const quantization = model.quantization ?? "";
  const features = requiredFeatures(model.required_features, quantization);
  // Servers before the GPU library listed one library, as model_lib_url.
  const library = model.libraries
    ? chooseLibrary(model.libraries, gpu)
    : { schedule: "fallback", url: model.model_lib_url, integrity: model.integrity, reason: "" };
  return {
    id: model.id,
    name: model.display_name || model.id,
    source: "hosted",
    runtime: "webllm",
    quantization,
    size: { bytes: model.total_bytes, kind: "download", download: true },
    needs: { features, bufferBytes: 0 },
    description: model.description ?? "",
    library: { schedule: library.schedule, reason: library.reason },
    record: {
      model: absoluteUrl(model.model_url),
      model_id: model.id,
      model_lib: absoluteUrl(library.url),
      required_features: features,
      // The self-hosting kit's manifest hashes: WebLLM refuses a config, library or tokenizer that differs.
      ...withIntegrity(library.integrity),
    },
  };
}

function withIntegrity(integrity) {
  const block = validIntegrity(integrity);
  return block ? { integrity: block } : {};
}

function customEntry(model) {
  const quantization = model.checked?.quantization || quantizationFromId(model.model_id);
  const features = requiredFeatures(model.required_features, quantization);
  const record = {
    model: absoluteUrl(model.model_url),
    model_id: model.model_id,
    model_lib: absoluteUrl(model.model_lib_url),
    required_features: features,
  };
  Object.assign(record, withIntegrity(model.checked?.integrity));
  if (model.context_window_size) record.overrides = { context_window_size: model.context_window_size };
  return {
    id: model.model_id,
    name: model.display_name,
    source: "custom",
    runtime: "webllm",
    quantization,
    size: customSize(model),
    needs: { features, bufferBytes: 0 },
    description: model.description,
    record,
  };
}

function customSize(model) {
  if (model.checked) return { bytes: model.checked.total_bytes, kind: "download, checked", download: true };
  if (model.estimated_size_mb !== null) {
    return { bytes: model.estimated_size_mb * MB, kind: "estimated", download: false };
  }
  return null;
}

/**
 * Everything the picker and the engine need (remote: providers' entries, from providers/catalogue.js): entries (with problems on this GPU and an f32
 * alternative where one runs), a lookup by id, and WebLLM's appConfig with every record.
 */
export function buildCatalogue({ hosted = [], custom = [], remote = [], gpu, prebuilt = prebuiltAppConfig }) {
  const chatModels = prebuilt.model_list.filter((record) => record.model_type !== ModelType.embedding);
  const candidates = [...hosted.map((model) => hostedEntry(model, gpu)), ...custom.map(customEntry), ...remote, ...chatModels.map(prebuiltEntry)];
  const byId = new Map();
  for (const entry of candidates) {
    // A hosted copy of a prebuilt model wins: the point of hosting it is not to need the internet.
    // The GPU check is for models that run here; a runtime elsewhere brings its own checks.
    const problems = runsInBrowser(entry) ? gpuProblems(entry.needs, gpu) : [];
    if (!byId.has(entry.id)) byId.set(entry.id, { ...entry, problems });
  }
  const entries = [...byId.values()];
  for (const entry of entries) entry.alternative = runnableAlternative(entry, byId);
  return {
    entries,
    byId,
    // The first hosted model whose server marks it default (hearth-model.json "default": true).
    defaultId: hosted.find((model) => model.default && byId.has(model.id))?.id ?? null,
    appConfig: { ...prebuilt, model_list: entries.filter((entry) => entry.record).map((entry) => entry.record) },
  };
}

function runnableAlternative(entry, byId) {
  if (!entry.problems.length || !entry.needs.features.includes(SHADER_F16)) return null;
  const candidate = byId.get(f32Variant(entry.id));
  return candidate && candidate.id !== entry.id && !candidate.problems.length ? candidate.id : null;
}

/** Every id in use, for the duplicate-id rule of custom models. */
export function takenIds(catalogue, exceptId = null) {
  const ids = new Set(catalogue.byId.keys());
  for (const record of prebuiltAppConfig.model_list) ids.add(record.model_id);
  ids.delete(exceptId);
  return ids;
}

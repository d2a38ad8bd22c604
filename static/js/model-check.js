/**
 * The custom-model Check: fetch a model's config and tensor cache from this browser, exactly as
 * WebLLM will (CORS included), and say what the model is or what is wrong, in plain words.
 */

import { SHADER_F16 } from "./gpu.js";
import { sriOf } from "./integrity.js";
import { needsF16 } from "./models.js";
import { absoluteUrl, modelBaseUrl } from "./urls.js";

const CHAT_CONFIG = "mlc-chat-config.json";
const TENSOR_CACHE = "tensor-cache.json";
// A host that answers nothing within this time is reported as too slow rather than waited on forever.
const CHECK_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 10_000;
// The page's own content-policy violations, newest last; a failed fetch is matched against them.
const violations = [];
document.addEventListener("securitypolicyviolation", (event) => violations.push(event.blockedURI));

/** Raised for a check that failed; the message is for people. */
class CheckFailure extends Error {}

/**
 * Check a model. Returns {ok, problem, warnings, facts, urls}: facts = {architecture, quantization,
 * context_window_size, conv_template, total_bytes, shard_count, lib_bytes, integrity} when ok; integrity
 * is WebLLM's ModelRecord.integrity for the files it verifies (config, library, tokenizer), as fetched now.
 */
export async function checkModel({ modelUrl, libUrl, gpu }) {
  const base = modelBaseUrl(modelUrl);
  const urls = { config: base + CHAT_CONFIG, tensorCache: base + TENSOR_CACHE, lib: absoluteUrl(libUrl) };
  try {
    const configFile = await fetchJson(urls.config, CHAT_CONFIG);
    const config = chatConfigFacts(configFile.json, urls.config);
    const shards = shardBytes((await fetchJson(urls.tensorCache, TENSOR_CACHE)).json, urls.tensorCache);
    const lib = await libraryFile(urls.lib);
    const tokenizer = await tokenizerHash(base, configFile.json);
    const integrity = { config: await sriOf(configFile.bytes), model_lib: await sriOf(lib), tokenizer };
    const facts = { ...config, shard_count: shards.length, lib_bytes: lib.byteLength, integrity,
                    total_bytes: shards.reduce((sum, n) => sum + n, 0) + lib.byteLength };
    return { ok: true, problem: null, warnings: gpuWarnings(facts, gpu), facts, urls };
  } catch (error) {
    if (!(error instanceof CheckFailure)) throw error;
    return { ok: false, problem: error.message, warnings: [], facts: null, urls };
  }
}

const MODEL_URL_FIX = "Check the model URL: it should be the folder that holds mlc-chat-config.json "
  + "(WebLLM adds resolve/main/ unless the URL already has /resolve/<revision>/).";

async function fetchJson(url, name) {
  const response = await fetchOrExplain(url, name, MODEL_URL_FIX);
  let bytes;
  try {
    bytes = await response.arrayBuffer();
  } catch (error) {
    throw new CheckFailure(`The download of ${url} broke off (${error.name}). Try Check again; if it keeps `
      + "failing, the host or the connection is too slow.");
  }
  try {
    return { json: JSON.parse(new TextDecoder().decode(bytes)), bytes };
  } catch {
    throw new CheckFailure(`Not an MLC model: ${name} at ${url} is not JSON. Check that the model URL points `
      + "at a folder made by MLC (mlc_llm convert_weight / gen_config).");
  }
}

async function fetchOrExplain(url, name, fix) {
  let response;
  try {
    const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
    response = await fetch(url, { cache: "no-store", credentials: "omit", signal });
  } catch (error) {
    if (error.name === "TimeoutError") {
      throw new CheckFailure(`Host too slow: ${new URL(url).origin} did not answer within `
        + `${CHECK_TIMEOUT_MS / 1000} seconds. Check the address, or try again later.`);
    }
    throw new CheckFailure(await explainFetchFailure(url, name));
  }
  if (response.status === 404) {
    throw new CheckFailure(`File missing: ${url} answered 404 Not Found. ${fix}`);
  }
  if (!response.ok) {
    throw new CheckFailure(`The host answered ${response.status} ${response.statusText} for ${url}. `
      + "Check the URL, or whether the host needs a login (WebLLM cannot send one).");
  }
  return response;
}

/**
 * fetch() hides why it failed. The page's content policy reports its own refusals; for the rest, an
 * EventSource tells them apart: Chromium closes it for good on a CORS refusal, and keeps trying to
 * reconnect when the host cannot be reached at all.
 */
async function explainFetchFailure(url, name) {
  const origin = new URL(url).origin;
  await nextTask(); // the violation event is queued after fetch rejects
  if (violations.some((blocked) => blocked.startsWith(origin))) {
    return `Blocked by this page's content policy: Hearth only lets the page download from hosts it was told `
      + `about. Start Hearth with --model-host ${origin} and reload the page.`;
  }
  if (origin !== location.origin && await corsRefused(url)) {
    return `CORS refused: ${origin} answered, but does not let other sites' pages read ${name} `
      + "(no Access-Control-Allow-Origin header). Ask its owner to send Access-Control-Allow-Origin: * on "
      + "model files, or host the model on this Hearth.";
  }
  return `Host unreachable: nothing answered at ${origin}. Check the address, that the host is running, `
    + "and your network connection.";
}

function corsRefused(url) {
  return new Promise((resolve) => {
    const probe = new EventSource(url);
    const finish = (refused) => {
      probe.close();
      resolve(refused);
    };
    probe.onopen = () => finish(false);
    probe.onerror = () => finish(probe.readyState === EventSource.CLOSED);
    setTimeout(() => finish(false), PROBE_TIMEOUT_MS);
  });
}

function nextTask() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function chatConfigFacts(config, url) {
  if (!config || typeof config !== "object" || typeof config.model_type !== "string"
      || typeof config.quantization !== "string") {
    throw new CheckFailure(`Not an MLC model: ${url} has no model_type and quantization, so it is not an `
      + "mlc-chat-config.json. Check the model URL.");
  }
  const template = config.conv_template;
  return {
    architecture: config.model_type,
    quantization: config.quantization,
    context_window_size: Number.isFinite(config.context_window_size) ? config.context_window_size : null,
    conv_template: typeof template === "string" ? template : template?.name ?? null,
  };
}

function shardBytes(cache, url) {
  const records = cache?.records;
  const valid = Array.isArray(records) && records.length > 0
    && records.every((r) => typeof r?.dataPath === "string" && Number.isInteger(r?.nbytes) && r.nbytes >= 0);
  if (!valid) {
    throw new CheckFailure(`Not an MLC model: ${url} has no list of weight shards (records with dataPath and `
      + "nbytes). Convert the weights again with a recent mlc_llm.");
  }
  return records.map((record) => record.nbytes);
}

// WebLLM fetches the library like the other files; its bytes are hashed for the integrity record.
async function libraryFile(url) {
  const response = await fetchOrExplain(url, "the model library", "Check the model library URL (.wasm).");
  try {
    return await response.arrayBuffer();
  } catch (error) {
    throw new CheckFailure(`The download of ${url} broke off (${error.name}). Try Check again.`);
  }
}

// The tokenizer file WebLLM will read (tokenizer.json first, as it does), hashed; {} when there is none.
async function tokenizerHash(base, config) {
  const name = ["tokenizer.json", "tokenizer.model"].find((file) => config.tokenizer_files?.includes(file));
  if (!name) return {};
  const response = await fetchOrExplain(base + name, name, MODEL_URL_FIX);
  return { [name]: await sriOf(await response.arrayBuffer()) };
}

function gpuWarnings(facts, gpu) {
  if (!needsF16(facts.quantization) || gpu.features.includes(SHADER_F16)) return [];
  return [`This is an f16 model (${facts.quantization}) and this GPU has no ${SHADER_F16}, so it cannot run `
    + "here. You can still save it (for another device); a q4f32 conversion of the same model would run here."];
}

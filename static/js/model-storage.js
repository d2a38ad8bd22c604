/**
 * What the browser holds of each model: WebLLM's Cache API entries (webllm/config, webllm/wasm,
 * webllm/model) read per ModelRecord, their bytes, whether every file a load needs is there, and
 * deleting one model's entries. No DOM here.
 */

import { matchesIntegrity, refusedUrl } from "./integrity.js";

export const MODEL_CACHES = ["webllm/config", "webllm/wasm", "webllm/model"];
const LAST_USED_KEY = "hearth.modelsLastUsed";
const TENSOR_CACHE = "tensor-cache.json";
const CHAT_CONFIG = "mlc-chat-config.json";

/** WebLLM's own rule (cleanModelUrl): a model URL without /resolve/<rev>/ gets resolve/main/. */
export function modelBaseUrl(record) {
  let url = new URL(record.model, location.href).href;
  if (!url.endsWith("/")) url += "/";
  if (!/.+\/resolve\/.+\//.test(url)) url += "resolve/main/";
  return url;
}

/** Every URL in WebLLM's caches now, cache name by URL (one listing per cache, not a lookup per file). */
async function cachedUrls() {
  const where = new Map();
  for (const name of MODEL_CACHES) {
    if (!(await caches.has(name))) continue;
    const cache = await caches.open(name);
    for (const request of await cache.keys()) where.set(request.url, name);
  }
  return where;
}

async function cachedJson(cacheName, url) {
  const response = await (await caches.open(cacheName)).match(url);
  try {
    return response ? await response.json() : null;
  } catch {
    return null; // a damaged entry: WebLLM fetches it again, and so it counts as missing
  }
}

async function cachedBytes(cacheName, url) {
  const response = await (await caches.open(cacheName)).match(url);
  if (!response) return 0;
  const length = Number(response.headers.get("content-length"));
  return Number.isFinite(length) && length > 0 ? length : (await response.blob()).size;
}

/** The files a load of this record needs, as {url, cache, kind}; null parts are not known until cached. */
async function neededFiles(record, where) {
  const base = modelBaseUrl(record);
  const files = [
    { url: new URL(CHAT_CONFIG, base).href, cache: "webllm/config", kind: "config" },
    { url: new URL(record.model_lib, location.href).href, cache: "webllm/wasm", kind: "library" },
    { url: new URL(TENSOR_CACHE, base).href, cache: "webllm/model", kind: "weights" },
  ];
  const config = where.has(files[0].url) ? await cachedJson("webllm/config", files[0].url) : null;
  const tokenizer = config?.tokenizer_files?.includes("tokenizer.json") ? "tokenizer.json"
    : config?.tokenizer_files?.includes("tokenizer.model") ? "tokenizer.model" : null;
  // Until the config is cached the tokenizer's name is unknown; tokenizer.json is WebLLM's first choice.
  files.push({ url: new URL(tokenizer ?? "tokenizer.json", base).href, cache: "webllm/model", kind: "tokenizer" });
  const tensors = where.has(files[2].url) ? await cachedJson("webllm/model", files[2].url) : null;
  const shards = new Set((tensors?.records ?? []).map((shard) => new URL(shard.dataPath, base).href));
  for (const url of shards) files.push({ url, cache: "webllm/model", kind: "weights" });
  return { files, complete: Boolean(config && tensors) };
}

/**
 * What the browser holds of one catalogue entry: {bytes: {weights, library, config, tokenizer},
 * total, offlineReady, urls (the cached ones)}; null when nothing of it is stored.
 */
async function storedEntry(entry, where) {
  const { files, complete } = await neededFiles(entry.record, where);
  const held = files.filter((file) => where.get(file.url) === file.cache);
  // A library alone is usually another model's (models share libraries): not this model stored.
  if (!held.some((file) => file.kind !== "library")) return null;
  const bytes = { weights: 0, library: 0, config: 0, tokenizer: 0 };
  for (const file of held) bytes[file.kind] += await cachedBytes(file.cache, file.url);
  const total = Object.values(bytes).reduce((sum, part) => sum + part, 0);
  return { bytes, total, offlineReady: complete && held.length === files.length, urls: held.map((f) => f.url),
    lastUsed: lastUsed()[entry.id] ?? null };
}

/** Map of entry id → storedEntry for every catalogue entry with files in the browser. */
export async function storedModels(entries) {
  const where = await cachedUrls();
  const stored = new Map();
  if (!where.size) return stored;
  for (const entry of entries) {
    if (!entry.record?.model || !entry.record?.model_lib) continue;
    const held = await storedEntry(entry, where);
    if (held) stored.set(entry.id, held);
  }
  return stored;
}

/** Bytes of an entry's download not yet in the browser (0 when offline-ready); null when its size is unknown. */
export async function bytesToDownload(entry) {
  if (!entry.size?.download) return null;
  const held = (await storedModels([entry])).get(entry.id);
  if (held?.offlineReady) return 0;
  return Math.max(0, entry.size.bytes - (held?.total ?? 0));
}

/**
 * A model's mlc-chat-config.json and tensor-cache.json as WebLLM's load reads them: from its caches,
 * else fetched into them as WebLLM's ArtifactCache does (Cache.add), so the load finds them there and
 * asks the host once. Resolves {config, tensorCache, forget()} (forget deletes what this call stored);
 * null when they cannot be read now (offline, the host fails, a config that fails its recorded hash:
 * the load then says why in WebLLM's words).
 */
export async function modelDescription(record) {
  const base = modelBaseUrl(record);
  const added = [];
  const forget = async () => {
    for (const { cache, url } of added) await cache.delete(url);
  };
  const read = async (cacheName, name) => {
    const url = new URL(name, base).href;
    const cache = await caches.open(cacheName);
    if (!(await cache.match(url))) {
      await cache.add(new Request(url));
      added.push({ cache, url });
    }
    return (await cache.match(url)).arrayBuffer();
  };
  try {
    const configBytes = await read("webllm/config", CHAT_CONFIG);
    const expected = record.integrity?.config;
    if (expected && !(await matchesIntegrity(configBytes, expected))) throw new Error("config does not match its hash");
    const config = JSON.parse(new TextDecoder().decode(configBytes));
    const tensorCache = JSON.parse(new TextDecoder().decode(await read("webllm/model", TENSOR_CACHE)));
    return { config, tensorCache, forget };
  } catch {
    await forget().catch(() => {});
    return null;
  }
}

/**
 * Delete one model's cache entries, except files another stored model also uses (models that share
 * a library or weights URL); returns the URLs deleted.
 */
export async function deleteStoredModel(id, stored) {
  const mine = stored.get(id);
  if (!mine) return [];
  const shared = new Set([...stored].filter(([other]) => other !== id).flatMap(([, held]) => held.urls));
  const doomed = mine.urls.filter((url) => !shared.has(url));
  for (const name of MODEL_CACHES) {
    const cache = await caches.open(name);
    for (const url of doomed) await cache.delete(url);
  }
  forgetUse(id);
  return doomed;
}

/**
 * Delete what a failed download of this entry left (a QuotaExceededError midway): its cached files
 * that no other stored model uses, the library too. Returns the URLs deleted.
 */
export async function dropPartialDownload(entry, entries) {
  const where = await cachedUrls();
  const { files } = await neededFiles(entry.record, where);
  const others = await storedModels(entries.filter((other) => other.id !== entry.id));
  const shared = new Set([...others.values()].flatMap((held) => held.urls));
  const doomed = files.filter((file) => where.get(file.url) === file.cache && !shared.has(file.url));
  for (const file of doomed) await (await caches.open(file.cache)).delete(file.url);
  return doomed.map((file) => file.url);
}

/** Drop a refused file's cached copy (WebLLM caches before it verifies), so the next load fetches it again. */
export async function forgetRefusedFile(detail) {
  const url = refusedUrl(detail);
  if (!url) return;
  for (const name of MODEL_CACHES) {
    if (await caches.has(name)) await (await caches.open(name)).delete(url);
  }
}

/** Delete every model file this site keeps (WebLLM's three caches); conversations are untouched. */
export async function clearStoredModels() {
  for (const name of MODEL_CACHES) await caches.delete(name);
  localStorage.removeItem(LAST_USED_KEY);
}

/** Remember that a model was loaded now (for the storage view's "last used"). */
export function markUsed(id, now = Date.now()) {
  saveLastUsed({ ...lastUsed(), [id]: now });
}

function forgetUse(id) {
  const { [id]: _gone, ...rest } = lastUsed();
  saveLastUsed(rest);
}

function lastUsed() {
  const saved = localStorage.getItem(LAST_USED_KEY);
  if (saved === null) return {};
  try {
    const times = JSON.parse(saved);
    if (times && typeof times === "object" && !Array.isArray(times)) return times;
  } catch {
    // fall through: set aside below
  }
  localStorage.setItem(`${LAST_USED_KEY}.unreadable`, saved);
  localStorage.removeItem(LAST_USED_KEY);
  return {};
}

function saveLastUsed(times) {
  try {
    localStorage.setItem(LAST_USED_KEY, JSON.stringify(times));
  } catch {
    // storage full or off: the view only loses "last used"
  }
}

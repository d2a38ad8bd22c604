/**
 * A provider as Hearth saves it: checked field by field (from the form, storage or an imported file)
 * with one plain message per wrong field. Keys are not part of it: keys.js keeps them apart.
 */

import { FORMATS } from "./formats/index.js";

export const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MODEL_ID = /^[^\s/?#][^\s?#]{0,199}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Headers the browser or the relay sets itself; a provider cannot override them.
const RESERVED_HEADERS = new Set(["host", "content-length", "cookie", "origin", "referer", "connection"]);
const MAX_TEXT = 200;
export const DEFAULT_TIMEOUT_S = 60;

/** Check a provider; returns {provider, errors} (errors: field → message; empty when it is good). */
export function validateProvider(input, takenIds = new Set()) {
  const errors = {};
  const text = (name) => (typeof input?.[name] === "string" ? input[name].trim() : "");
  const provider = {
    id: text("id"),
    name: text("name"),
    type: text("type") || "openai",
    baseUrl: text("baseUrl").replace(/\/+$/, ""),
    apiVersion: text("apiVersion"),
    azureMode: text("azureMode") === "v1" ? "v1" : "classic",
    headers: [],
    enabled: input?.enabled !== false,
    via: input?.via === "relay" ? "relay" : "direct",
    // How long to wait for a first byte, and between pieces of a reply.
    timeoutSeconds: input?.timeoutSeconds === undefined || input?.timeoutSeconds === "" ? DEFAULT_TIMEOUT_S : Number(input.timeoutSeconds),
    dropParams: [],
    addParams: {},
    learnedDrops: learnedDrops(input?.learnedDrops),
    models: [],
    modelList: modelList(input?.modelList),
  };
  if (!provider.id) errors.id = "Give the provider an id, e.g. my-llama.";
  else if (/\s/.test(provider.id)) errors.id = "The id cannot contain spaces.";
  else if (!PROVIDER_ID.test(provider.id)) errors.id = "Use lowercase letters, digits, - and _ in the id (at most 64).";
  else if (takenIds.has(provider.id)) errors.id = "A provider with this id exists already: pick another.";
  if (!provider.name) provider.name = provider.id;
  if (provider.name.length > MAX_TEXT) errors.name = `Keep the name under ${MAX_TEXT} characters.`;
  if (!FORMATS[provider.type]) errors.type = `Pick a type: ${Object.values(FORMATS).map((f) => f.label).join(", ")}.`;
  const urlProblem = baseUrlProblem(provider.baseUrl, FORMATS[provider.type]);
  if (urlProblem) errors.baseUrl = urlProblem;
  if (provider.type === "azure" && provider.azureMode === "classic" && !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(provider.apiVersion)) {
    errors.apiVersion = "Give the api-version Azure expects, e.g. 2024-10-21.";
  }
  if (!(Number.isInteger(provider.timeoutSeconds) && provider.timeoutSeconds >= 1 && provider.timeoutSeconds <= 600)) {
    errors.timeoutSeconds = "The timeout is a whole number of seconds from 1 to 600.";
  }
  const headers = headerList(input?.headers);
  if (headers === null) errors.headers = "Each header needs a name (letters, digits, -) and a value; Host, Cookie and Origin cannot be set.";
  else provider.headers = headers;
  const drops = stringList(input?.dropParams);
  if (drops === null) errors.dropParams = "List parameter names to drop, separated by commas (e.g. stop, frequency_penalty).";
  else provider.dropParams = drops;
  const adds = typeof input?.addParams === "string" ? parseObject(input.addParams) : input?.addParams ?? {};
  if (!adds || typeof adds !== "object" || Array.isArray(adds)) errors.addParams = 'Parameters to add are a JSON object, e.g. {"top_k": 40}.';
  else provider.addParams = adds;
  const models = (Array.isArray(input?.models) ? input.models : []).map(validateModel);
  const badModel = models.find((m) => m.error);
  if (badModel) errors.models = badModel.error;
  provider.models = models.filter((m) => !m.error).map((m) => m.model);
  const ids = provider.models.map((m) => m.id);
  if (!errors.models && new Set(ids).size !== ids.length) errors.models = "Two models have the same id.";
  return { provider, errors };
}

/** The problem with a base URL, in words (with the fix), or null. */
export function baseUrlProblem(url, format) {
  if (!url) return "Give the base URL, e.g. " + (format?.basePlaceholder ?? "http://127.0.0.1:8080/v1") + ".";
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return "That is not a URL: it starts with http:// or https://, e.g. " + (format?.basePlaceholder ?? "") + ".";
  }
  if (!["http:", "https:"].includes(parsed.protocol)) return "The base URL starts with http:// or https://.";
  if (parsed.username || parsed.password) return "Put keys in the key field, not in the URL.";
  if (parsed.search || parsed.hash || url.includes("#") || url.includes("?")) {
    return "The base URL has no ? or #: Hearth adds the path itself (see the request URL below).";
  }
  return null;
}

/** Check one model of a provider: {model} or {error}. */
export function validateModel(input) {
  const id = typeof input?.id === "string" ? input.id.trim() : "";
  if (!MODEL_ID.test(id)) return { error: `Model id ${JSON.stringify(id)} is empty or has spaces, ? or #.` };
  const number = (name) => {
    const value = input?.[name];
    if (value === undefined || value === null || value === "") return null;
    const n = Number(value);
    return Number.isFinite(n) && n >= 0 ? n : NaN;
  };
  const model = {
    id,
    label: typeof input?.label === "string" && input.label.trim() ? input.label.trim().slice(0, MAX_TEXT) : id,
    type: input?.type === "embedding" ? "embedding" : "chat",
    contextLength: number("contextLength"),
    maxOutputTokens: number("maxOutputTokens"),
    vision: input?.vision === true,
    priceInput: number("priceInput"),
    priceOutput: number("priceOutput"),
  };
  const bad = ["contextLength", "maxOutputTokens", "priceInput", "priceOutput"].find((name) => Number.isNaN(model[name]));
  if (bad) return { error: `Model ${id}: ${bad} must be a number of 0 or more, or empty.` };
  return { model };
}

function headerList(value) {
  const list = Array.isArray(value) ? value : [];
  const headers = list
    .map((h) => ({ name: String(h?.name ?? "").trim(), value: String(h?.value ?? "") }))
    .filter((h) => h.name || h.value);
  const fine = headers.every((h) => HEADER_NAME.test(h.name) && !RESERVED_HEADERS.has(h.name.toLowerCase())
    && !/[\r\n]/.test(h.value));
  return fine ? headers : null;
}

function stringList(value) {
  const names = typeof value === "string" ? value.split(/[\s,]+/) : value ?? [];
  if (!Array.isArray(names)) return null;
  const clean = names.map((n) => String(n).trim()).filter(Boolean);
  return clean.every((n) => /^[A-Za-z_][A-Za-z0-9_.]*$/.test(n)) ? [...new Set(clean)] : null;
}

function parseObject(text) {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function learnedDrops(value) {
  if (!value || typeof value !== "object") return {};
  const clean = {};
  for (const [model, params] of Object.entries(value)) {
    if (Array.isArray(params)) clean[model] = params.filter((p) => typeof p === "string");
  }
  return clean;
}

function modelList(value) {
  if (!value || !Array.isArray(value.ids)) return null;
  return { ids: value.ids.filter((id) => typeof id === "string"), fetchedAt: Number(value.fetchedAt) || 0,
    stale: typeof value.stale === "string" ? value.stale : null };
}

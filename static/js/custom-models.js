/** The user's custom models: checked entries kept in localStorage as one versioned JSON document. */

import { validIntegrity } from "./integrity.js";
import { isModelLocation } from "./urls.js";

export const STORAGE_KEY = "customModels";
export const FORMAT_VERSION = 1;
export const DUPLICATE_ID = "A model with this ID already exists";
// Model ids become cache keys and URL segments in WebLLM: keep them plain (the server's rule too).
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const FEATURE = /^[a-z0-9][a-z0-9-]*$/;
const MAX_TEXT = 500;
const MAX_CONTEXT_WINDOW = 1 << 20;

/**
 * Check one entry (from the form, a file or storage) against the rules and the ids already taken.
 * Returns {model, errors}: a clean entry when errors (field → message) is empty.
 */
export function validateModel(input, takenIds = new Set()) {
  const errors = {};
  const text = (name) => (typeof input?.[name] === "string" ? input[name].trim() : "");
  const model = {
    model_id: text("model_id"),
    display_name: text("display_name"),
    model_url: text("model_url"),
    model_lib_url: text("model_lib_url"),
    estimated_size_mb: optionalNumber(input?.estimated_size_mb),
    description: text("description"),
    context_window_size: optionalNumber(input?.context_window_size),
    required_features: featureList(input?.required_features),
    checked: checkedFacts(input?.checked),
  };
  const idProblem = modelIdProblem(model.model_id, takenIds);
  if (idProblem) errors.model_id = idProblem;
  if (!model.display_name) errors.display_name = "Give the model a display name.";
  else if (model.display_name.length > MAX_TEXT) {
    errors.display_name = `Keep the display name under ${MAX_TEXT} characters.`;
  }
  const urlProblem = locationProblem(model.model_url, "model URL");
  if (urlProblem) errors.model_url = urlProblem;
  const libProblem = locationProblem(model.model_lib_url, "model library URL") ?? wasmProblem(model.model_lib_url);
  if (libProblem) errors.model_lib_url = libProblem;
  if (Number.isNaN(model.estimated_size_mb) || model.estimated_size_mb < 0) {
    errors.estimated_size_mb = "The estimated size is a number of megabytes (e.g. 950), or leave it empty.";
  }
  const ctx = model.context_window_size;
  if (ctx !== null && !(Number.isInteger(ctx) && ctx > 0 && ctx <= MAX_CONTEXT_WINDOW)) {
    errors.context_window_size = "The context window is a whole number of tokens from 1 to "
      + `${MAX_CONTEXT_WINDOW}, or leave it empty.`;
  }
  if (model.description.length > MAX_TEXT * 4) {
    errors.description = `Keep the description under ${MAX_TEXT * 4} characters.`;
  }
  if (model.required_features === null) {
    errors.required_features = "List WebGPU features as names separated by commas, e.g. shader-f16.";
  }
  return { model, errors };
}

function modelIdProblem(id, takenIds) {
  if (!id) return "Give the model an ID, e.g. MyModel-q4f32_1-MLC.";
  if (/\s/.test(id)) return "The model ID cannot contain spaces.";
  if (!MODEL_ID.test(id)) {
    return "Use only letters, digits, '.', '_' and '-' in the model ID (starting with a letter or digit, at most 128).";
  }
  if (takenIds.has(id)) return `${DUPLICATE_ID}: pick another ID.`;
  return null;
}

function locationProblem(value, label) {
  if (!value) return `The ${label} is required.`;
  if (!isModelLocation(value)) {
    return `The ${label} must start with https://, http:// or / (a path on this server).`;
  }
  if (/[?#]/.test(value)) {
    return `The ${label} cannot have a query (?…) or fragment (#…): WebLLM appends paths to it.`;
  }
  return null;
}

function wasmProblem(value) {
  return new URL(value, "http://x/").pathname.endsWith(".wasm") ? null : "The model library URL must end in .wasm.";
}

// "" and null mean "not given"; anything else must be a number (NaN reports the mistake).
function optionalNumber(value) {
  if (value === null || value === undefined || (typeof value === "string" && value.trim() === "")) return null;
  return typeof value === "number" || typeof value === "string" ? Number(value) : NaN;
}

function featureList(value) {
  const names = typeof value === "string" ? value.split(/[\s,]+/) : value ?? [];
  if (!Array.isArray(names)) return null;
  const clean = names.filter((name) => name !== "");
  if (!clean.every((name) => typeof name === "string" && FEATURE.test(name))) return null;
  return [...new Set(clean)];
}

// What a Check found is a cache of facts: keep it when it looks right, drop it otherwise.
function checkedFacts(value) {
  if (!value || typeof value !== "object" || !Number.isFinite(value.total_bytes)) return null;
  const pick = (name, type) => (typeof value[name] === type ? value[name] : null);
  return {
    architecture: pick("architecture", "string"),
    quantization: pick("quantization", "string"),
    context_window_size: pick("context_window_size", "number"),
    conv_template: pick("conv_template", "string"),
    total_bytes: value.total_bytes,
    checked_at: pick("checked_at", "string"),
    integrity: validIntegrity(value.integrity),
  };
}

/**
 * Read the saved list. A value that cannot be read is kept under a backup key, never lost,
 * and the page starts from what could be read. Returns {models, notice} (notice: a message or null).
 */
export function loadCustomModels(storage = localStorage, now = Date.now()) {
  const raw = storage.getItem(STORAGE_KEY);
  if (raw === null) return { models: [], notice: null };
  const { models, problem } = parseDocument(raw);
  if (!problem) return { models, notice: null };
  const backupKey = `${STORAGE_KEY}.corrupt-${now}`;
  storage.setItem(backupKey, raw);
  storage.setItem(STORAGE_KEY, serialize(models));
  const outcome = models.length
    ? `could not all be read (${problem}). The saved text was copied to "${backupKey}" in this browser's `
      + `storage, and the ${models.length} that could be read were kept.`
    : `could not be read (${problem}). The saved text was copied to "${backupKey}" in this browser's `
      + "storage, and the list starts empty.";
  return { models, notice: `Your saved custom models ${outcome}` };
}

function parseDocument(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch {
    return { models: [], problem: "it is not valid JSON" };
  }
  if (!doc || typeof doc !== "object" || !Array.isArray(doc.models)) {
    return { models: [], problem: "it has no list of models" };
  }
  if (doc.version !== FORMAT_VERSION) {
    return { models: [], problem: `it has format version ${JSON.stringify(doc.version)}, not ${FORMAT_VERSION}` };
  }
  const { models, skipped } = acceptEntries(doc.models, new Set());
  return { models, problem: skipped.length ? `${skipped.length} entries are invalid` : null };
}

/** Save the list; throws an Error with a plain message when the browser refuses. */
export function saveCustomModels(models, storage = localStorage) {
  try {
    storage.setItem(STORAGE_KEY, serialize(models));
  } catch (error) {
    throw new Error(`Could not save custom models: the browser refused (${error.name}). `
      + "Free some site storage, or leave private browsing, and try again.");
  }
}

function serialize(models) {
  return JSON.stringify({ version: FORMAT_VERSION, models });
}

/** The export file's text: the same versioned document as storage, indented for people. */
export function exportDocument(models) {
  return `${JSON.stringify({ version: FORMAT_VERSION, models }, null, 2)}\n`;
}

/**
 * Read an exported file. Returns {models, skipped: [{entry, reason}]}, or throws an Error
 * whose message says why the whole file is unusable.
 */
export function importDocument(text, takenIds) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("This file is not JSON: pick a file exported from Hearth's custom models.");
  }
  const entries = Array.isArray(doc) ? doc : doc?.models;
  if (!Array.isArray(entries)) throw new Error("This file has no \"models\" list: it is not a Hearth export.");
  if (!Array.isArray(doc) && doc.version !== undefined && doc.version > FORMAT_VERSION) {
    throw new Error(`This file has format version ${doc.version}, made by a newer Hearth: update Hearth to import it.`);
  }
  return acceptEntries(entries, new Set(takenIds));
}

// Valid entries with fresh ids are accepted in order; each other one says why it was skipped.
function acceptEntries(entries, takenIds) {
  const models = [];
  const skipped = [];
  entries.forEach((entry, index) => {
    const { model, errors } = validateModel(entry, takenIds);
    const reasons = Object.values(errors);
    if (reasons.length) {
      const label = typeof entry?.model_id === "string" && entry.model_id ? entry.model_id : `entry ${index + 1}`;
      skipped.push({ label, reason: reasons.join(" ") });
      return;
    }
    takenIds.add(model.model_id);
    models.push(model);
  });
  return { models, skipped };
}

/** The saved list in memory: every change is saved first, then listeners hear of it. */
export class CustomModelStore {
  #storage;
  #listeners = [];

  constructor(storage = localStorage) {
    this.#storage = storage;
    const { models, notice } = loadCustomModels(storage);
    this.models = models;
    this.notice = notice;
  }

  onChange(listener) {
    this.#listeners.push(listener);
  }

  find(id) {
    return this.models.find((model) => model.model_id === id) ?? null;
  }

  /** Add a model, or replace the one called replacingId (an edit may rename it). */
  put(model, replacingId = null) {
    const index = this.models.findIndex((m) => m.model_id === replacingId);
    const models = [...this.models];
    if (index >= 0) models[index] = model;
    else models.push(model);
    this.#commit(models);
  }

  addAll(models) {
    this.#commit([...this.models, ...models]);
  }

  remove(id) {
    this.#commit(this.models.filter((model) => model.model_id !== id));
  }

  #commit(models) {
    saveCustomModels(models, this.#storage);
    this.models = models;
    for (const listener of this.#listeners) listener(models);
  }
}

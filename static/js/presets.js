/** Presets: a name, a model, a system prompt and parameters, kept in IndexedDB; each starts a new chat. */

import { allEntries, requested, transact } from "./db.js";
import { validateParams } from "./params.js";
import { newId } from "./thread.js";

const MAX_NAME = 100;

/** Check one preset (from the form, storage or a file): {preset, problem}. */
export function readPreset(value) {
  const fail = (problem) => ({ preset: null, problem });
  if (!value || typeof value !== "object" || Array.isArray(value)) return fail("it is not a preset object");
  const name = typeof value.name === "string" ? value.name.trim() : "";
  if (!name) return fail("it has no name");
  if (name.length > MAX_NAME) return fail(`its name is longer than ${MAX_NAME} characters`);
  const { params, errors } = validateParams(value.params);
  if (Object.keys(errors).length) return fail(Object.values(errors)[0]);
  return {
    problem: null,
    preset: {
      id: typeof value.id === "string" && value.id ? value.id : newId("p"),
      name,
      model: typeof value.model === "string" && value.model ? value.model : null,
      systemPrompt: typeof value.systemPrompt === "string" ? value.systemPrompt : "",
      params,
    },
  };
}

export class PresetStore {
  #presets = [];

  /** Read the saved presets; an unreadable one is moved aside. Returns how many were. */
  async load() {
    const entries = await transact(["presets"], "readonly", (stores) => allEntries(stores.presets));
    const bad = [];
    this.#presets = [];
    for (const [key, value] of entries) {
      const { preset, problem } = readPreset(value);
      if (preset && preset.id === key) this.#presets.push(preset);
      else bad.push({ key, value, problem: problem ?? "its id does not match its key" });
    }
    if (bad.length) {
      await transact(["presets", "unreadable"], "readwrite", (stores) => Promise.all(bad.map(async (entry) => {
        await requested(stores.unreadable.add({ store: "presets", ...entry, at: Date.now() }));
        await requested(stores.presets.delete(entry.key));
      })));
    }
    return bad.length;
  }

  list() {
    return [...this.#presets].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(id) {
    return this.#presets.find((preset) => preset.id === id) ?? null;
  }

  /** Save checked presets (new or changed). */
  async save(...presets) {
    for (const preset of presets) {
      this.#presets = this.#presets.filter((other) => other.id !== preset.id);
      this.#presets.push(preset);
    }
    await transact(["presets"], "readwrite", (stores) => Promise.all(presets.map((p) => requested(stores.presets.put(p)))));
  }

  async delete(id) {
    this.#presets = this.#presets.filter((preset) => preset.id !== id);
    await transact(["presets"], "readwrite", (stores) => requested(stores.presets.delete(id)));
  }
}

/**
 * The Providers dialog's list: the server's providers (read-only) and the person's own (edit,
 * remove), export and import (keys only when asked for), forget all keys; and `hearth.providers`,
 * the same operations for scripts in the browser console.
 */

import { confirmAction } from "../dialog.js";
import { downloadFile } from "../files.js";
import { listModels } from "./doctor.js";
import { allowDirectCalls } from "./origins.js";
import { modelsUrl } from "./requests.js";
import { validateProvider } from "./records.js";

const $ = (id) => document.getElementById(id);
export const EXPORT_FORMAT = "hearth-providers";
export const EXPORT_VERSION = 1;

export class ProviderPanel {
  #store;
  #keys;
  #form;

  constructor({ store, keys, form }) {
    this.#store = store;
    this.#keys = keys;
    this.#form = form;
    $("provider-add").addEventListener("click", () => form.open());
    $("provider-export").addEventListener("click", () => this.#export());
    $("provider-import").addEventListener("change", (event) => this.#import(event.target));
    $("provider-forget-keys").addEventListener("click", async () => {
      await keys.forgetAll();
      this.#report("Every provider key is forgotten, in this session and in what was remembered.");
      this.render();
    });
    store.onChange(() => this.render());
    $("open-providers").addEventListener("click", () => this.refreshLists());
  }

  /**
   * Fetch each provider's model list on its own, with a timeout, never holding up the page or each
   * other; a list that cannot be fetched keeps the last good one, marked stale with the reason.
   */
  refreshLists() {
    return Promise.all(this.#store.own.filter((p) => p.enabled && modelsUrl(p)).map(async (provider) => {
      try {
        await allowDirectCalls(provider);
        const listed = await listModels(provider, this.#keys.keys(provider.id)[0] ?? null);
        this.#store.update(provider.id, () => ({ modelList: { ids: listed.map((m) => m.id), fetchedAt: Date.now(), stale: null } }));
      } catch (error) {
        this.#store.update(provider.id, (p) => ({ modelList: p.modelList ? { ...p.modelList, stale: error.message }
          : { ids: [], fetchedAt: 0, stale: error.message } }));
      }
    }));
  }

  render() {
    const providers = this.#store.all;
    $("provider-empty").hidden = providers.length > 0;
    $("provider-list").replaceChildren(...providers.map((provider) => this.#item(provider)));
  }

  #item(provider) {
    const li = document.createElement("li");
    li.dataset.providerId = provider.id;
    const title = document.createElement("strong");
    title.textContent = provider.name;
    const facts = document.createElement("span");
    facts.className = "hint";
    const where = provider.source === "server" ? "defined by this server, keys kept there"
      : { remembered: "keys remembered, encrypted", session: "keys for this session" }[this.#keys.where(provider.id)] ?? "no key";
    const chat = provider.models.filter((m) => m.type === "chat").length;
    facts.textContent = ` · ${provider.type} · ${chat} chat model${chat === 1 ? "" : "s"} · `
      + `${provider.via === "relay" || provider.source === "server" ? "through Hearth" : "direct"} · ${where}`
      + (provider.enabled ? "" : " · disabled");
    li.append(title, facts);
    if (provider.modelList) li.append(listNote(provider.modelList));
    if (provider.source === "server") return li;
    const edit = button("Edit", () => this.#form.open(provider));
    const remove = button("Remove", async () => {
      if (!(await confirmAction(`Remove the provider ${provider.name}? Its keys are forgotten too; conversations stay.`, "Remove"))) return;
      await this.#keys.remove(provider.id);
      this.#store.remove(provider.id);
    });
    li.append(" ", edit, " ", remove);
    return li;
  }

  #export() {
    const withKeys = $("provider-export-keys").checked;
    const providers = this.#store.own.map((p) => (withKeys ? { ...p, keys: this.#keys.keys(p.id) } : p));
    downloadFile(`hearth-providers${withKeys ? "-with-keys" : ""}.json`,
      JSON.stringify({ format: EXPORT_FORMAT, version: EXPORT_VERSION, providers }, null, 2), "application/json");
  }

  async #import(input) {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    const text = await file.text();
    const result = await importProviders(this.#store, this.#keys, text);
    this.#report(result.message);
  }

  #report(message) {
    $("provider-report").textContent = message;
  }
}

/** Import an exported file: valid providers are added, the rest reported; returns {added, skipped, message}. */
export async function importProviders(store, keys, text) {
  let document;
  try {
    document = JSON.parse(text);
  } catch {
    return { added: 0, skipped: [], message: "That file is not JSON: export providers from Hearth to get one." };
  }
  if (document?.format !== EXPORT_FORMAT || !Array.isArray(document.providers)) {
    return { added: 0, skipped: [], message: "That file is not a Hearth providers export (format hearth-providers)." };
  }
  let added = 0;
  const skipped = [];
  for (const record of document.providers) {
    const { provider, errors } = validateProvider(record, store.takenIds());
    if (Object.keys(errors).length) {
      skipped.push(`${record?.id ?? "?"}: ${Object.values(errors)[0]}`);
      continue;
    }
    store.save(provider);
    if (Array.isArray(record.keys)) await keys.set(provider.id, record.keys.map(String));
    await allowDirectCalls(provider).catch(() => {});
    added += 1;
  }
  const message = `Imported ${added} provider${added === 1 ? "" : "s"}.`
    + (skipped.length ? ` Skipped ${skipped.length}: ${skipped.join("; ")}` : "");
  return { added, skipped, message };
}

/** The console API: hearth.providers.register(definition, {keys, remember}), list(), remove(id). */
export function consoleApi(store, keys) {
  return {
    /** Add or replace a provider; resolves it, or rejects with what is wrong. */
    async register(definition, { keys: given = [], remember = false } = {}) {
      const existing = store.get(definition?.id);
      if (existing?.source === "server") throw new Error(`${definition.id} is defined by the server and cannot be changed here`);
      const { provider, errors } = validateProvider(definition, store.takenIds(definition?.id));
      if (Object.keys(errors).length) throw new Error(Object.values(errors).join(" "));
      if (given.length) await keys.set(provider.id, given, { remember });
      store.save(provider);
      await allowDirectCalls(provider);
      return provider;
    },
    list: () => store.all.map((p) => ({ ...p, keysKept: keys.where(p.id) })),
    async remove(id) {
      await keys.remove(id);
      store.remove(id);
    },
  };
}

function listNote({ ids, fetchedAt, stale }) {
  const note = document.createElement("span");
  note.className = "hint model-list-note";
  const when = fetchedAt ? ` (fetched ${new Date(fetchedAt).toLocaleString()})` : "";
  note.textContent = stale
    ? ` · model list stale: ${stale}${fetchedAt ? `; the last good one had ${ids.length} model${ids.length === 1 ? "" : "s"}${when}` : ""}`
    : ` · the endpoint lists ${ids.length} model${ids.length === 1 ? "" : "s"}${when}`;
  if (stale) note.dataset.stale = "true";
  return note;
}

function button(label, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

/**
 * The providers the page knows: the person's own (one versioned JSON document in localStorage, each
 * record checked on read; what cannot be read is kept aside under a backup key, never lost) and the
 * ones this server's owner defined (read-only, from /api/server-providers).
 */

import { validateProvider } from "./records.js";

export const STORAGE_KEY = "hearth.providers";
export const FORMAT_VERSION = 1;
const SERVER_PROVIDERS_URL = "/api/server-providers";

export class ProviderStore {
  #own = [];
  #server = [];
  #listeners = new Set();
  notice = null;

  constructor(storage = localStorage) {
    this.storage = storage;
    this.#own = this.#read();
  }

  /** Fetch the server's providers (none when it has none or cannot be reached). */
  async loadServerProviders() {
    try {
      const response = await fetch(SERVER_PROVIDERS_URL, { cache: "no-store" });
      const listed = response.ok ? (await response.json()).providers : [];
      this.#server = listed.map((p) => ({ ...validateProvider(p).provider, source: "server", hasKey: Boolean(p.hasKey),
        headerNames: p.headerNames ?? [] }));
    } catch {
      this.#server = [];
    }
    this.#changed();
  }

  /** Every provider: the server's first, then the person's own. */
  get all() {
    return [...this.#server, ...this.#own];
  }

  /** The person's own providers. */
  get own() {
    return [...this.#own];
  }

  get(id) {
    return this.all.find((p) => p.id === id) ?? null;
  }

  /** Ids in use (for the form's duplicate check), leaving out the one being edited. */
  takenIds(exceptId = null) {
    return new Set(this.all.map((p) => p.id).filter((id) => id !== exceptId));
  }

  /** Add or replace one of the person's providers (already validated). */
  save(provider, replacesId = provider.id) {
    const rest = this.#own.filter((p) => p.id !== replacesId && p.id !== provider.id);
    const at = this.#own.findIndex((p) => p.id === replacesId);
    rest.splice(at === -1 ? rest.length : at, 0, provider);
    this.#own = rest;
    this.#write();
  }

  remove(id) {
    this.#own = this.#own.filter((p) => p.id !== id);
    this.#write();
  }

  /** Change one provider in place (learned drops, a fetched model list). */
  update(id, change) {
    const provider = this.#own.find((p) => p.id === id);
    if (!provider) return;
    Object.assign(provider, change(provider));
    this.#write();
  }

  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #read() {
    const raw = this.storage.getItem(STORAGE_KEY);
    if (raw === null) return [];
    let document = null;
    try {
      document = JSON.parse(raw);
    } catch {
      // set aside below
    }
    if (!document || document.version !== FORMAT_VERSION || !Array.isArray(document.providers)) {
      this.#setAside(raw, "it is not a provider list this page can read");
      return [];
    }
    const kept = [];
    const bad = [];
    for (const record of document.providers) {
      const { provider, errors } = validateProvider(record, new Set(kept.map((p) => p.id)));
      if (Object.keys(errors).length) bad.push(record);
      else kept.push(provider);
    }
    if (bad.length) this.#setAside(JSON.stringify({ version: FORMAT_VERSION, providers: bad }), `${bad.length} could not be read`);
    return kept;
  }

  #setAside(raw, why) {
    this.storage.setItem(`${STORAGE_KEY}.unreadable.${Date.now()}`, raw);
    this.notice = `Some saved providers were set aside (${why}); they are kept in this browser's localStorage `
      + `under ${STORAGE_KEY}.unreadable.*.`;
  }

  #write() {
    this.storage.setItem(STORAGE_KEY, JSON.stringify({ version: FORMAT_VERSION, providers: this.#own }));
    this.#changed();
  }

  #changed() {
    for (const listener of this.#listeners) listener(this.all);
  }
}

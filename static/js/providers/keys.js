/**
 * Provider keys, kept apart from the providers themselves. By default a key lives for the browser
 * session only (sessionStorage: gone when the browser closes). A key the person asks to remember is
 * encrypted with AES-GCM under a non-extractable WebCrypto key that stays in this origin's IndexedDB:
 * what localStorage holds is ciphertext, and no script can read the wrapping key's bytes — though a
 * script running in this page can still ask the browser to decrypt (see the README's threat model).
 * Several keys for one provider are used in turn. Keys never go into URLs, logs or exports by default.
 */

import { openDatabase, requested, transact } from "../db.js";

const SESSION_KEY = "hearth.providerKeys";
const SEALED_KEY = "hearth.providerKeys.sealed";
const CRYPTO_MARKER = "provider-keys-crypto-key";

export class KeyStore {
  #session = {};
  #remembered = {};
  #turn = new Map();
  notice = null;

  /** Read both kinds; a sealed value that cannot be opened is kept aside and said in `notice`. */
  async load() {
    this.#session = readJson(sessionStorage.getItem(SESSION_KEY)) ?? {};
    const sealed = localStorage.getItem(SEALED_KEY);
    if (!sealed) return;
    try {
      this.#remembered = await unseal(sealed);
    } catch {
      localStorage.setItem(`${SEALED_KEY}.unreadable`, sealed);
      localStorage.removeItem(SEALED_KEY);
      this.notice = "The remembered provider keys could not be decrypted (this browser's storage was partly "
        + "cleared); they were set aside. Enter the keys again.";
    }
  }

  /** The keys of a provider (remembered ones first). */
  keys(providerId) {
    return this.#remembered[providerId] ?? this.#session[providerId] ?? [];
  }

  /** The key for the next call: the provider's keys in turn, or null when it has none. */
  next(providerId) {
    const keys = this.keys(providerId);
    if (!keys.length) return null;
    const turn = this.#turn.get(providerId) ?? 0;
    this.#turn.set(providerId, turn + 1);
    return keys[turn % keys.length];
  }

  /** "remembered", "session" or null: where this provider's keys are kept (the form says it). */
  where(providerId) {
    if (this.#remembered[providerId]?.length) return "remembered";
    if (this.#session[providerId]?.length) return "session";
    return null;
  }

  /** Set a provider's keys (empty: none), for the session or remembered (encrypted). */
  async set(providerId, keys, { remember = false } = {}) {
    const clean = keys.map((k) => k.trim()).filter(Boolean);
    this.#turn.delete(providerId); // new keys start from the first
    delete this.#session[providerId];
    delete this.#remembered[providerId];
    if (clean.length) (remember ? this.#remembered : this.#session)[providerId] = clean;
    await this.#save();
  }

  async remove(providerId) {
    await this.set(providerId, []);
  }

  /** Forget every key, of every provider, in both kinds of storage. */
  async forgetAll() {
    this.#session = {};
    this.#remembered = {};
    await this.#save();
  }

  async #save() {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.#session));
    if (Object.keys(this.#remembered).length) localStorage.setItem(SEALED_KEY, await seal(this.#remembered));
    else localStorage.removeItem(SEALED_KEY);
  }
}

function readJson(text) {
  try {
    const value = JSON.parse(text ?? "null");
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

// The wrapping key: made once, non-extractable, stored as a CryptoKey object (never as bytes).
async function cryptoKey() {
  await openDatabase();
  const found = await transact(["markers"], "readonly", ({ markers }) => requested(markers.get(CRYPTO_MARKER)));
  if (found?.key) return found.key;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await transact(["markers"], "readwrite", ({ markers }) => requested(markers.put({ name: CRYPTO_MARKER, key })));
  return key;
}

async function seal(value) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(JSON.stringify(value));
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await cryptoKey(), data);
  return JSON.stringify({ v: 1, iv: toBase64(iv), data: toBase64(new Uint8Array(sealed)) });
}

async function unseal(text) {
  const { iv, data } = JSON.parse(text);
  const found = await transact(["markers"], "readonly", ({ markers }) => requested(markers.get(CRYPTO_MARKER)));
  if (!found?.key) throw new Error("the key that sealed them is gone");
  const opened = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv) }, found.key, fromBase64(data));
  return JSON.parse(new TextDecoder().decode(opened));
}

const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * The Models dialog's storage section: the site's usage against its quota, whether the browser keeps
 * it for good, and each stored model (bytes by kind, offline-ready, last used) with Delete and Delete all.
 */

import { confirmAction } from "./dialog.js";
import { formatBytes, relativeTime } from "./format.js";
import { clearStoredModels, deleteStoredModel } from "./model-storage.js";

const $ = (id) => document.getElementById(id);

export class StorageView {
  #stored = new Map();
  #entries = new Map();
  #onChanged;

  /** onChanged(): files were deleted, so whoever shows stored state should look again. */
  constructor({ onChanged }) {
    this.#onChanged = onChanged;
    $("stored-models").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action=delete]");
      if (button) this.#delete(button.closest("li").dataset.modelId);
    });
    $("stored-clear").addEventListener("click", () => this.#clear());
    $("storage-persist").addEventListener("click", () => this.#askToPersist());
  }

  /** Show what is stored: stored = Map(id → storedEntry), entries = Map(id → catalogue entry). */
  async render(stored, entries) {
    this.#stored = stored;
    this.#entries = entries;
    const items = [...stored].map(([id, held]) => storedItem(entries.get(id), held));
    $("stored-models").replaceChildren(...items);
    $("stored-empty").hidden = items.length > 0;
    $("stored-clear").disabled = items.length === 0;
    await showQuota();
  }

  async #delete(id) {
    const held = this.#stored.get(id);
    const name = this.#entries.get(id)?.name ?? id;
    if (!held) return;
    const confirmed = await confirmAction(`Delete the ${formatBytes(held.total)} of ${name}'s files from this `
      + "browser? It will download again the next time it loads; other models are kept.", "Delete files");
    if (!confirmed) return;
    await deleteStoredModel(id, this.#stored);
    $("storage-status").textContent = `Deleted ${name}'s files.`;
    this.#onChanged();
  }

  async #clear() {
    const confirmed = await confirmAction("Delete every model file stored in this browser? Conversations are "
      + "kept; each model downloads again when it next loads.", "Delete all");
    if (!confirmed) return;
    await clearStoredModels();
    $("storage-status").textContent = "Deleted every stored model file.";
    this.#onChanged();
  }

  async #askToPersist() {
    const granted = await navigator.storage.persist();
    $("storage-status").textContent = granted ? "The browser will keep the models when space runs low."
      : "The browser said no: it decides by how often you use this site (bookmarking it can help).";
    await showQuota();
  }
}

async function showQuota() {
  if (!navigator.storage?.estimate) {
    $("storage-usage").textContent = "This browser does not say how much room the site has.";
    return;
  }
  const { usage, quota } = await navigator.storage.estimate();
  $("storage-quota").max = quota || 1;
  $("storage-quota").value = usage;
  $("storage-usage").textContent = `${formatBytes(usage)} used of ${formatBytes(quota)} `
    + `(${formatBytes(Math.max(0, quota - usage))} free)`;
  const persisted = await navigator.storage.persisted?.();
  $("storage-persisted").textContent = persisted ? "Stored for good: the browser keeps it when space runs low."
    : "Not persistent: the browser may delete models when space runs low.";
  $("storage-persist").hidden = Boolean(persisted) || !navigator.storage.persist;
}

function storedItem(entry, held) {
  const item = document.createElement("li");
  item.dataset.modelId = entry?.id ?? "";
  item.dataset.bytes = String(held.total);
  item.dataset.offlineReady = String(held.offlineReady);
  const name = document.createElement("strong");
  name.className = "stored-name";
  name.textContent = entry?.name ?? "";
  const facts = document.createElement("span");
  facts.className = "stored-facts";
  const { weights, library, config, tokenizer } = held.bytes;
  facts.textContent = [
    formatBytes(held.total),
    `weights ${formatBytes(weights)}, library ${formatBytes(library)}, config and tokenizer ${formatBytes(config + tokenizer)}`,
    held.offlineReady ? "offline-ready" : "partly downloaded",
    held.lastUsed ? `last used ${relativeTime(held.lastUsed)}` : "not used yet",
  ].join(" · ");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.dataset.action = "delete";
  remove.textContent = "Delete files";
  remove.setAttribute("aria-label", `Delete ${entry?.name ?? "this model"}'s files`);
  item.append(name, " ", facts, " ", remove);
  return item;
}

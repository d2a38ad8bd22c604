/**
 * The model selector in the conversation's header (grouped by where models come from, with size and
 * state), the Load button for preloading, the engine's state line, and the note under the header when
 * the selected model cannot run here. It reads the session's state; it never writes it.
 */

import { formatBytes } from "./format.js";
import { runsInBrowser } from "./runtimes/index.js";

const SELECTED_KEY = "hearth.selectedModel";
export const GROUP_LABELS = { hosted: "On this server", custom: "Your custom models", prebuilt: "WebLLM prebuilt" };
const $ = (id) => document.getElementById(id);

export class ModelPicker {
  #catalogue = null;
  #state = { name: "idle", entry: null };
  #stored = new Map();
  #offline = false;
  #onLoad;
  #onChange;

  /** onLoad(entry): the person asked to load the selected model; onChange(entry): they picked another. */
  constructor({ onLoad, onChange }) {
    this.#onLoad = onLoad;
    this.#onChange = onChange;
    $("model-select").addEventListener("change", () => this.#selectionChanged());
    $("load-model").addEventListener("click", () => {
      const entry = this.selected;
      if (entry && !entry.problems.length && !this.#busy() && !this.#unreachable(entry)) this.#onLoad(entry);
    });
  }

  get selected() {
    return this.#catalogue?.byId.get($("model-select").value) ?? null;
  }

  /** Fill the selector from a catalogue, keeping the selection when the model still exists. */
  render(catalogue) {
    this.#catalogue = catalogue;
    const select = $("model-select");
    // The person's own choice first; else the model this server offers by default (its built-in one).
    const wanted = [select.value, localStorage.getItem(SELECTED_KEY), catalogue.defaultId]
      .find((id) => id && catalogue.byId.has(id));
    select.replaceChildren(...this.#groups());
    if (wanted) select.value = wanted;
    select.disabled = false;
    this.#update();
  }

  /** Select a model (as if the person had); false when the catalogue does not have it. */
  select(modelId) {
    if (!this.#catalogue?.byId.has(modelId)) return false;
    $("model-select").value = modelId;
    this.#selectionChanged();
    return true;
  }

  /**
   * Mark the models the browser holds (Map id → {offlineReady}); offline, only offline-ready ones can
   * be picked.
   */
  markStored(stored, offline) {
    this.#stored = stored;
    this.#offline = offline;
    if (this.#catalogue) this.render(this.#catalogue);
  }

  /** Follow the session: {name, entry, progress, error}. */
  showState(state) {
    const changedModel = state.entry?.id !== this.#state.entry?.id || state.name !== this.#state.name;
    this.#state = state;
    if (changedModel && this.#catalogue) this.render(this.#catalogue);
    this.#update();
  }

  #busy() {
    return ["loading", "generating"].includes(this.#state.name);
  }

  #unreachable(entry) {
    // A provider on this machine or the LAN may still answer; only in-browser models need the cache.
    return this.#offline && entry.runtime === "webllm" && !this.#stored.get(entry.id)?.offlineReady;
  }

  #selectionChanged() {
    localStorage.setItem(SELECTED_KEY, $("model-select").value);
    this.#update();
    this.#onChange(this.selected);
  }

  #update() {
    const entry = this.selected;
    const loaded = ["ready", "generating"].includes(this.#state.name) && this.#state.entry?.id === entry?.id;
    const unreachable = Boolean(entry) && this.#unreachable(entry) && !loaded;
    $("load-model").disabled = this.#busy() || !entry || entry.problems.length > 0 || unreachable;
    $("load-model").hidden = loaded;
    $("model-note").replaceChildren(...(entry ? note(entry, (id) => this.select(id)) : []),
      ...(unreachable ? [offlineNote()] : []));
    $("model-note").hidden = !entry?.problems.length && !unreachable;
    const status = $("engine-status");
    status.dataset.state = this.#state.name;
    status.textContent = statusText(this.#state);
  }

  // This server's, the person's, each provider's (under its display name), then WebLLM's.
  #groups() {
    const entries = this.#catalogue.entries;
    const of = (test) => entries.filter(test);
    const providers = [...new Set(of((e) => e.source === "provider").map((e) => e.group))];
    return [
      this.#group(GROUP_LABELS.hosted, of((e) => e.source === "hosted")),
      this.#group(GROUP_LABELS.custom, of((e) => e.source === "custom")),
      ...providers.map((name) => this.#group(name, of((e) => e.source === "provider" && e.group === name))),
      this.#group(GROUP_LABELS.prebuilt, of((e) => e.source === "prebuilt")),
    ].filter(Boolean);
  }

  #group(label, entries) {
    if (!entries.length) return null;
    const optgroup = document.createElement("optgroup");
    optgroup.label = label;
    optgroup.append(...entries.map((entry) => this.#option(entry)));
    return optgroup;
  }

  #option(entry) {
    const item = document.createElement("option");
    item.value = entry.id;
    const held = this.#stored.get(entry.id);
    const ready = held?.offlineReady;
    const size = runsInBrowser(entry) && !ready ? ` · ${downloadSize(entry, held)}` : "";
    const warning = entry.problems.length ? " · can't run on this GPU" : "";
    const loaded = this.#state.entry?.id === entry.id && ["ready", "generating"].includes(this.#state.name)
      ? " · loaded" : "";
    item.textContent = `${entry.name}${ready ? " · offline-ready" : size}${warning}${loaded}`;
    if (entry.problems.length) item.className = "unrunnable";
    if (ready) item.dataset.offlineReady = "true";
    item.disabled = this.#unreachable(entry) && item.value !== $("model-select").value;
    if (entry.alternative) item.dataset.alternative = entry.alternative;
    return item;
  }
}

// What loading the model would download: known for hosted models (the server's listing) and checked
// custom ones; an estimate someone typed is said to be one; WebLLM's prebuilt records give only GPU memory.
function downloadSize(entry, held) {
  if (!entry.size) return "size unknown";
  if (!entry.size.download) {
    return entry.size.kind === "estimated" ? `about ${formatBytes(entry.size.bytes)} (estimated)` : "size unknown";
  }
  if (!held?.total) return formatBytes(entry.size.bytes);
  const left = Math.max(0, entry.size.bytes - held.total);
  return `${formatBytes(left)} of ${formatBytes(entry.size.bytes)} left to download`;
}

function statusText({ name, entry }) {
  if (name === "loading") return `Loading ${entry.name}…`;
  if (name === "ready") return `${entry.name} is loaded. Ready to chat.`;
  if (name === "generating") return `${entry.name} is writing…`;
  if (name === "error") return "No model loaded.";
  return "No model loaded: sending a message loads the selected one.";
}

function offlineNote() {
  const text = document.createElement("p");
  text.id = "offline-note";
  text.textContent = "You are offline, and this model's files are not all in the browser: only models marked "
    + "offline-ready can load until the connection is back.";
  return text;
}

function note(entry, select) {
  if (!entry.problems.length) return [];
  const list = document.createElement("ul");
  list.className = "problems";
  list.id = "model-problems";
  list.append(...entry.problems.map((problem) => {
    const item = document.createElement("li");
    item.textContent = problem;
    return item;
  }));
  if (!entry.alternative) return [list];
  const offer = document.createElement("p");
  offer.className = "alternative";
  offer.textContent = "This GPU can run the same model with 32-bit floats: ";
  const button = document.createElement("button");
  button.type = "button";
  button.id = "use-alternative";
  button.dataset.modelId = entry.alternative;
  button.textContent = `Use ${entry.alternative}`;
  button.addEventListener("click", () => select(entry.alternative));
  offer.append(button);
  return [list, offer];
}

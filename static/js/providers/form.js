/**
 * The provider form: type, base URL with the exact request URL previewed live (and a pasted endpoint
 * trimmed on request), keys and where they are kept, headers, direct or through Hearth, parameter
 * shaping (with what servers refused, undoable), models by hand or from the endpoint's list, Verify.
 */

import { verify, listModels } from "./doctor.js";
import { formatOf } from "./formats/index.js";
import { allowDirectCalls } from "./origins.js";
import { validateProvider } from "./records.js";
import { chatUrl } from "./requests.js";

const $ = (id) => document.getElementById(id);
const WHERE = {
  remembered: "Keys are remembered in this browser, encrypted (see the README for what that protects against).",
  session: "Keys are kept for this browser session only: closing the browser forgets them.",
};
const MODEL_COLUMNS = ["id", "label", "type", "contextLength", "maxOutputTokens", "vision", "priceInput", "priceOutput"];

export class ProviderForm {
  #store;
  #keys;
  #editingId = null;
  #onSaved;

  /** store: providers/store.js; keys: providers/keys.js; onSaved(provider) after a save. */
  constructor({ store, keys, onSaved }) {
    this.#store = store;
    this.#keys = keys;
    this.#onSaved = onSaved;
    $("provider-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    for (const id of ["pv-base", "pv-type", "pv-azure-mode", "pv-api-version"]) {
      $(id).addEventListener("input", () => this.#preview());
    }
    $("pv-trim").addEventListener("click", () => this.#trim());
    $("pv-add-model").addEventListener("click", () => this.#addModelRow({}));
    $("pv-fetch-models").addEventListener("click", () => this.fetchModels());
    $("pv-verify").addEventListener("click", () => this.verify());
    $("pv-cancel").addEventListener("click", () => this.close());
  }

  /** Open the form empty (a new provider) or on a saved one. */
  open(provider = null) {
    this.#editingId = provider?.id ?? null;
    const p = provider ?? { type: "openai", enabled: true, via: "direct", models: [], headers: [], dropParams: [], addParams: {} };
    $("pv-id").value = p.id ?? "";
    $("pv-name").value = p.name ?? "";
    $("pv-type").value = p.type;
    $("pv-base").value = p.baseUrl ?? "";
    $("pv-azure-mode").value = p.azureMode ?? "classic";
    $("pv-api-version").value = p.apiVersion ?? "";
    $("pv-keys").value = provider ? this.#keys.keys(provider.id).join("\n") : "";
    $("pv-remember").checked = provider ? this.#keys.where(provider.id) === "remembered" : false;
    $("pv-key-where").textContent = (provider && WHERE[this.#keys.where(provider.id)]) || WHERE.session;
    $("pv-headers").value = p.headers.map((h) => `${h.name}: ${h.value}`).join("\n");
    $("pv-via").value = p.via;
    $("pv-timeout").value = p.timeoutSeconds ?? 60;
    $("pv-enabled").checked = p.enabled;
    $("pv-drop").value = p.dropParams.join(", ");
    $("pv-add").value = Object.keys(p.addParams).length ? JSON.stringify(p.addParams) : "";
    $("pv-models").replaceChildren();
    for (const model of p.models) this.#addModelRow(model);
    this.#learned(p);
    $("pv-doctor").replaceChildren();
    $("pv-models-note").textContent = "";
    this.#showErrors({});
    $("provider-form-title").textContent = provider ? `Edit ${provider.name}` : "Add a provider";
    $("provider-form-box").hidden = false;
    this.#preview();
    $(provider ? "pv-name" : "pv-id").focus();
  }

  close() {
    $("provider-form-box").hidden = true;
    this.#editingId = null;
  }

  /** The provider as the form stands: {provider, errors}. */
  read() {
    const taken = this.#store.takenIds(this.#editingId);
    return validateProvider({
      id: $("pv-id").value, name: $("pv-name").value, type: $("pv-type").value, baseUrl: $("pv-base").value,
      azureMode: $("pv-azure-mode").value, apiVersion: $("pv-api-version").value,
      headers: $("pv-headers").value.split("\n").filter((l) => l.trim()).map(headerLine),
      via: $("pv-via").value, timeoutSeconds: $("pv-timeout").value, enabled: $("pv-enabled").checked, dropParams: $("pv-drop").value,
      addParams: $("pv-add").value, models: this.#models(),
      learnedDrops: this.#editingId ? this.#store.get(this.#editingId)?.learnedDrops : {},
      modelList: this.#editingId ? this.#store.get(this.#editingId)?.modelList : null,
    }, taken);
  }

  /** The keys typed in the form. */
  typedKeys() {
    return $("pv-keys").value.split(/\n|,/).map((k) => k.trim()).filter(Boolean);
  }

  /** Save (after the checks); registers the provider's origin so calls work at once. */
  async save() {
    const { provider, errors } = this.read();
    this.#showErrors(errors);
    if (Object.keys(errors).length) return null;
    await this.#keys.set(provider.id, this.typedKeys(), { remember: $("pv-remember").checked });
    if (this.#editingId && this.#editingId !== provider.id) await this.#keys.remove(this.#editingId);
    this.#store.save(provider, this.#editingId ?? provider.id);
    try {
      await allowDirectCalls(provider);
    } catch (error) {
      $("pv-errors").textContent = error.message;
    }
    this.#editingId = provider.id;
    this.#onSaved(provider);
    $("pv-key-where").textContent = WHERE[this.#keys.where(provider.id)] ?? "No key is kept for this provider.";
    return provider;
  }

  /** Run the connection doctor on the form's provider and its first chat model. */
  async verify() {
    const { provider, errors } = this.read();
    const list = $("pv-doctor");
    list.replaceChildren(item({ ok: null, text: "Checking…" }));
    if (errors.baseUrl || errors.type) {
      list.replaceChildren(item({ ok: false, text: errors.baseUrl ?? errors.type }));
      return;
    }
    const model = provider.models.find((m) => m.type === "chat") ?? null;
    const key = this.typedKeys()[0] ?? null;
    const steps = await verify(provider, model, key);
    list.replaceChildren(...steps.map(item));
  }

  /** Fetch the endpoint's model list into the table (models already there keep their settings). */
  async fetchModels() {
    const { provider } = this.read();
    const note = $("pv-models-note");
    note.textContent = "Fetching the model list…";
    try {
      await allowDirectCalls(provider);
      const listed = await listModels(provider, this.typedKeys()[0] ?? null);
      const have = new Set(this.#models().map((m) => m.id));
      for (const model of listed) if (!have.has(model.id)) this.#addModelRow(model);
      if (this.#editingId) this.#store.update(this.#editingId, () => ({ modelList: { ids: listed.map((m) => m.id), fetchedAt: Date.now() } }));
      note.textContent = `The endpoint lists ${listed.length} model${listed.length === 1 ? "" : "s"}.`;
    } catch (error) {
      const last = this.#editingId ? this.#store.get(this.#editingId)?.modelList : null;
      note.textContent = `The model list could not be fetched: ${error.message}.`
        + (last ? ` The last good list (${last.ids.length} models, ${new Date(last.fetchedAt).toLocaleString()}) is kept, marked stale.` : "");
    }
  }

  #preview() {
    const type = $("pv-type").value;
    const format = formatOf(type);
    $("pv-azure").hidden = type !== "azure";
    $("pv-base").placeholder = format.basePlaceholder;
    const base = $("pv-base").value.trim().replace(/\/+$/, "");
    const firstModel = this.#models()[0] ?? { id: "MODEL" };
    const provider = { type, baseUrl: base, azureMode: $("pv-azure-mode").value, apiVersion: $("pv-api-version").value };
    $("pv-url-preview").textContent = base ? chatUrl(provider, firstModel) : "(give the base URL)";
    $("pv-trim-box").hidden = !format.pastedSuffix.test(base);
  }

  #trim() {
    const format = formatOf($("pv-type").value);
    $("pv-base").value = $("pv-base").value.trim().replace(format.pastedSuffix, "");
    this.#preview();
  }

  #addModelRow(model) {
    const row = document.createElement("tr");
    for (const column of MODEL_COLUMNS) {
      const cell = document.createElement("td");
      let control;
      if (column === "type") {
        control = document.createElement("select");
        control.append(new Option("chat", "chat"), new Option("embedding", "embedding"));
        control.value = model.type ?? "chat";
      } else {
        control = document.createElement("input");
        if (column === "vision") {
          control.type = "checkbox";
          control.checked = Boolean(model.vision);
        } else {
          control.type = ["id", "label"].includes(column) ? "text" : "number";
          control.value = model[column] ?? "";
          if (control.type === "number") control.min = "0";
        }
      }
      control.dataset.column = column;
      control.setAttribute("aria-label", `Model ${column}`);
      cell.append(control);
      row.append(cell);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      row.remove();
      this.#preview();
    });
    const cell = document.createElement("td");
    cell.append(remove);
    row.append(cell);
    row.querySelector('[data-column="id"]').addEventListener("input", () => this.#preview());
    $("pv-models").append(row);
    this.#preview();
  }

  #models() {
    return [...$("pv-models").rows].map((row) => Object.fromEntries([...row.querySelectorAll("[data-column]")]
      .map((control) => [control.dataset.column, control.type === "checkbox" ? control.checked : control.value])))
      .filter((m) => m.id.trim());
  }

  // What servers refused, per model, with a way to send it again.
  #learned(provider) {
    const box = $("pv-learned");
    box.replaceChildren();
    for (const [modelId, params] of Object.entries(provider.learnedDrops ?? {})) {
      for (const param of params) {
        const line = document.createElement("p");
        line.className = "hint learned-drop";
        line.textContent = `Not sending ${param} to ${modelId}: the server refused it. `;
        const undo = document.createElement("button");
        undo.type = "button";
        undo.textContent = "Send it again";
        undo.addEventListener("click", () => {
          this.#store.update(provider.id, (p) => ({
            learnedDrops: { ...p.learnedDrops, [modelId]: p.learnedDrops[modelId].filter((x) => x !== param) },
          }));
          line.remove();
        });
        line.append(undo);
        box.append(line);
      }
    }
  }

  #showErrors(errors) {
    const fields = { id: "pv-id", name: "pv-name", type: "pv-type", baseUrl: "pv-base", apiVersion: "pv-api-version",
      headers: "pv-headers", dropParams: "pv-drop", addParams: "pv-add", timeoutSeconds: "pv-timeout" };
    for (const [field, id] of Object.entries(fields)) {
      const slot = $(`${id}-error`);
      if (slot) slot.textContent = errors[field] ?? "";
      $(id).toggleAttribute("aria-invalid", Boolean(errors[field]));
    }
    $("pv-errors").textContent = Object.keys(errors).length
      ? `Fix ${Object.keys(errors).length === 1 ? "this" : "these"} first: ${Object.values(errors).join(" ")}` : "";
  }
}

function headerLine(line) {
  const colon = line.indexOf(":");
  return colon === -1 ? { name: line.trim(), value: "" } : { name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() };
}

function item({ step = "", ok, text, fixes = [] }) {
  const li = document.createElement("li");
  li.dataset.ok = String(ok);
  li.dataset.step = step;
  li.textContent = `${ok === true ? "✓" : ok === false ? "✗" : ok === "warn" ? "!" : "…"} ${text}`;
  if (fixes.length) {
    const list = document.createElement("ul");
    list.append(...fixes.map((fix) => {
      const entry = document.createElement("li");
      entry.textContent = fix;
      return entry;
    }));
    li.append(list);
  }
  return li;
}

/** The custom-model form: add or edit a model, Check it from this browser, save it. */

import { validateModel } from "./custom-models.js";
import { formatBytes } from "./format.js";
import { SHADER_F16 } from "./gpu.js";
import { checkModel } from "./model-check.js";
import { needsF16, quantizationFromId } from "./models.js";

// Form control id → field of a custom model entry.
const FIELDS = {
  "cm-id": "model_id",
  "cm-name": "display_name",
  "cm-url": "model_url",
  "cm-lib": "model_lib_url",
  "cm-size": "estimated_size_mb",
  "cm-context": "context_window_size",
  "cm-features": "required_features",
  "cm-description": "description",
};
const $ = (id) => document.getElementById(id);

export class CustomModelForm {
  #store;
  #takenIds;
  #gpu;
  #editingId = null;
  #lastCheck = null;
  #featuresTouched = false;

  /** takenIds(exceptId) gives every model id in use; gpu is the capability check's answer. */
  constructor({ store, takenIds, gpu }) {
    this.#store = store;
    this.#takenIds = takenIds;
    this.#gpu = gpu;
    const form = $("custom-model-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
    $("cm-check").addEventListener("click", () => this.#check());
    $("cm-cancel").addEventListener("click", () => this.#reset());
    $("cm-id").addEventListener("input", () => this.#suggestFeatures(quantizationFromId($("cm-id").value)));
    $("cm-features").addEventListener("input", () => { this.#featuresTouched = true; });
  }

  /** Open the form on a saved model, to change it. */
  edit(model) {
    this.#reset();
    this.#editingId = model.model_id;
    for (const [controlId, field] of Object.entries(FIELDS)) $(controlId).value = displayValue(model[field]);
    this.#featuresTouched = true;
    this.#lastCheck = model.checked ? { urls: this.#locations(), facts: model.checked } : null;
    $("custom-form-title").textContent = `Edit ${model.display_name}`;
    $("cm-save").textContent = "Save changes";
    $("cm-cancel").hidden = false;
    $("custom-form-box").open = true;
    $("cm-name").focus();
  }

  #read() {
    return Object.fromEntries(Object.entries(FIELDS).map(([controlId, field]) => [field, $(controlId).value]));
  }

  #locations() {
    return { modelUrl: $("cm-url").value.trim(), libUrl: $("cm-lib").value.trim() };
  }

  #save() {
    $("cm-status").textContent = "";
    const input = this.#read();
    input.checked = this.#checkStillValid() ? this.#lastCheck.facts : null;
    const { model, errors } = validateModel(input, this.#takenIds(this.#editingId));
    if (!this.#showErrors(errors)) return;
    try {
      this.#store.put(model, this.#editingId);
    } catch (error) {
      $("cm-errors").textContent = error.message;
      return;
    }
    const verb = this.#editingId ? "Saved changes to" : "Added";
    this.#reset();
    $("cm-status").textContent = `${verb} ${model.display_name}. It is in the model list under "Your custom models".`;
  }

  async #check() {
    const { model, errors } = validateModel(this.#read(), new Set());
    if (!this.#showErrors(errors, ["model_url", "model_lib_url"])) {
      showCheck("", []);
      return;
    }
    const button = $("cm-check");
    button.disabled = true;
    showCheck("checking", [text("p", "Checking: fetching the model's files from this browser…")]);
    try {
      const result = await checkModel({ modelUrl: model.model_url, libUrl: model.model_lib_url, gpu: this.#gpu });
      this.#lastCheck = result.ok ? { urls: this.#locations(), facts: checkedFacts(result.facts) } : null;
      if (result.ok) this.#suggestFeatures(result.facts.quantization);
      showCheck(result.ok ? "ok" : "failed", result.ok ? describeCheck(result) : [text("p", result.problem)]);
    } finally {
      button.disabled = false;
    }
  }

  #checkStillValid() {
    const now = this.#locations();
    return this.#lastCheck !== null && this.#lastCheck.urls.modelUrl === now.modelUrl
      && this.#lastCheck.urls.libUrl === now.libUrl;
  }

  // An f16 quantization needs shader-f16: fill it in, unless the person has chosen features themselves.
  #suggestFeatures(quantization) {
    const features = $("cm-features");
    if (this.#featuresTouched || !needsF16(quantization) || features.value.includes(SHADER_F16)) return;
    features.value = [features.value.trim(), SHADER_F16].filter(Boolean).join(", ");
  }

  /** Mark the problems of these fields (all by default); true when there is none. Focus the first. */
  #showErrors(errors, fields = Object.values(FIELDS)) {
    let first = null;
    for (const [controlId, field] of Object.entries(FIELDS)) {
      if (!fields.includes(field)) continue;
      const message = errors[field] ?? "";
      const control = $(controlId);
      control.setAttribute("aria-invalid", String(Boolean(message)));
      $(`${controlId}-error`).textContent = message;
      if (message && !first) first = control;
    }
    const count = fields.filter((field) => errors[field]).length;
    const summary = count === 1 ? "One field needs fixing: see below." : `${count} fields need fixing: see below.`;
    $("cm-errors").textContent = count ? summary : "";
    first?.focus();
    return count === 0;
  }

  #reset() {
    $("custom-model-form").reset();
    this.#showErrors({});
    this.#editingId = null;
    this.#lastCheck = null;
    this.#featuresTouched = false;
    showCheck("", []);
    $("cm-status").textContent = "";
    $("custom-form-title").textContent = "Add a custom model";
    $("cm-save").textContent = "Save model";
    $("cm-cancel").hidden = true;
  }
}

function displayValue(value) {
  if (Array.isArray(value)) return value.join(", ");
  return value === null || value === undefined ? "" : String(value);
}

function checkedFacts(facts) {
  const { architecture, quantization, context_window_size, conv_template, total_bytes, integrity } = facts;
  const checked_at = new Date().toISOString();
  return { architecture, quantization, context_window_size, conv_template, total_bytes, checked_at, integrity };
}

function showCheck(state, parts) {
  const box = $("cm-check-result");
  box.dataset.state = state;
  box.replaceChildren(...parts);
}

function describeCheck({ facts, warnings }) {
  const list = document.createElement("dl");
  list.className = "facts";
  const rows = [
    ["Architecture", facts.architecture],
    ["Quantization", facts.quantization],
    ["Context window", facts.context_window_size ? `${facts.context_window_size} tokens` : "not set"],
    ["Conversation template", facts.conv_template ?? "not set"],
    ["Download size", `${formatBytes(facts.total_bytes)} (${facts.shard_count} weight files`
      + `${facts.lib_bytes ? ` and a ${formatBytes(facts.lib_bytes)} library` : ""})`],
  ];
  for (const [term, value] of rows) list.append(text("dt", term), text("dd", value));
  const parts = [text("p", "The model answered from this browser, as WebLLM will fetch it:"), list];
  for (const warning of warnings) parts.push(text("p", warning, "check-warning"));
  return parts;
}

function text(tag, content, className = "") {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

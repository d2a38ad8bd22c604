/** The model panel: pick a model (marked when this GPU cannot run it), load it, watch it load. */

import { formatBytes } from "./format.js";
import { describeProgress } from "./progress.js";

const SELECTED_KEY = "hearth.selectedModel";
const GROUP_LABELS = { hosted: "On this server", custom: "Your custom models", prebuilt: "WebLLM prebuilt" };
const SOURCE_LABELS = { hosted: "Hosted by this server", custom: "Your custom model", prebuilt: "WebLLM prebuilt" };
const $ = (id) => document.getElementById(id);

export class ModelPicker {
  #catalogue = null;
  #busy = false;
  #onLoad;

  /** onLoad(entry) is called when the person asks to load the selected, runnable model. */
  constructor({ onLoad }) {
    this.#onLoad = onLoad;
    $("model-select").addEventListener("change", () => this.#selectionChanged());
    $("load-model").addEventListener("click", () => this.#requestLoad());
  }

  get selected() {
    return this.#catalogue?.byId.get($("model-select").value) ?? null;
  }

  /** Fill the picker from a catalogue, keeping the selection when the model still exists. */
  render(catalogue) {
    this.#catalogue = catalogue;
    const select = $("model-select");
    // The person's own choice first; else the model this server offers by default (its built-in one).
    const wanted = [select.value, localStorage.getItem(SELECTED_KEY), catalogue.defaultId]
      .find((id) => id && catalogue.byId.has(id));
    select.replaceChildren(...Object.keys(GROUP_LABELS).map((source) => group(catalogue, source)).filter(Boolean));
    if (wanted) select.value = wanted;
    select.disabled = false;
    this.#showDetails();
  }

  /** While a model loads or a reply streams, the picker cannot start another load. */
  setBusy(busy) {
    this.#busy = busy;
    this.#updateLoadButton();
  }

  select(modelId) {
    $("model-select").value = modelId;
    this.#selectionChanged();
  }

  showLoading(entry) {
    $("engine-error").hidden = true;
    $("load-progress-box").hidden = false;
    this.showProgress({ progress: 0, text: "" });
    setEngineStatus("loading", `Loading ${entry.name}…`);
  }

  /** Show one of WebLLM's InitProgressReports. */
  showProgress(report) {
    const { phase, fraction, detail } = describeProgress(report);
    $("load-phase").textContent = phase;
    $("load-progress").value = fraction;
    $("load-detail").textContent = detail;
  }

  showLoaded(entry) {
    $("load-progress-box").hidden = true;
    setEngineStatus("ready", `${entry.name} is loaded. Ready to chat.`);
  }

  /** Show why loading failed: {message, detail} (see errors.js). */
  showLoadError(explained) {
    $("load-progress-box").hidden = true;
    setEngineStatus("error", "No model loaded.");
    showError(explained);
  }

  #selectionChanged() {
    localStorage.setItem(SELECTED_KEY, $("model-select").value);
    this.#showDetails();
  }

  #requestLoad() {
    const entry = this.selected;
    if (entry && !entry.problems.length && !this.#busy) this.#onLoad(entry);
  }

  #showDetails() {
    const entry = this.selected;
    $("model-details").replaceChildren(...(entry ? details(entry, (id) => this.select(id)) : []));
    this.#updateLoadButton();
  }

  #updateLoadButton() {
    const entry = this.selected;
    $("load-model").disabled = this.#busy || !entry || entry.problems.length > 0;
  }
}

function group(catalogue, source) {
  const entries = catalogue.entries.filter((entry) => entry.source === source);
  if (!entries.length) return null;
  const optgroup = document.createElement("optgroup");
  optgroup.label = GROUP_LABELS[source];
  optgroup.append(...entries.map(option));
  return optgroup;
}

function option(entry) {
  const item = document.createElement("option");
  item.value = entry.id;
  const size = entry.size ? ` · ${formatBytes(entry.size.bytes)}` : "";
  const warning = entry.problems.length ? " · can't run on this GPU" : "";
  item.textContent = `${entry.name}${size}${warning}`;
  if (entry.problems.length) item.className = "unrunnable";
  if (entry.alternative) item.dataset.alternative = entry.alternative;
  return item;
}

function details(entry, select) {
  const facts = document.createElement("dl");
  facts.className = "facts";
  addFact(facts, "Model ID", entry.id, "code");
  addFact(facts, "Source", SOURCE_LABELS[entry.source]);
  if (entry.quantization) addFact(facts, "Quantization", entry.quantization);
  addFact(facts, "Size", entry.size ? `${formatBytes(entry.size.bytes)} (${entry.size.kind})` : "unknown");
  addFact(facts, "Needs", entry.needs.features.length ? entry.needs.features.join(", ") : "no special GPU features");
  const parts = [facts];
  if (entry.description) parts.push(paragraph(entry.description, "description"));
  if (entry.problems.length) parts.push(problemList(entry.problems));
  if (entry.alternative) parts.push(alternativeOffer(entry.alternative, select));
  return parts;
}

function addFact(list, term, value, tag = "span") {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  const text = document.createElement(tag);
  text.textContent = value;
  dd.append(text);
  list.append(dt, dd);
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

function problemList(problems) {
  const list = document.createElement("ul");
  list.className = "problems";
  list.id = "model-problems";
  list.append(...problems.map((problem) => {
    const item = document.createElement("li");
    item.textContent = problem;
    return item;
  }));
  return list;
}

function alternativeOffer(alternativeId, select) {
  const offer = paragraph("This GPU can run the same model with 32-bit floats: ", "alternative");
  const button = document.createElement("button");
  button.type = "button";
  button.id = "use-alternative";
  button.dataset.modelId = alternativeId;
  button.textContent = `Use ${alternativeId}`;
  button.addEventListener("click", () => select(alternativeId));
  offer.append(button);
  return offer;
}

function setEngineStatus(state, text) {
  const status = $("engine-status");
  status.dataset.state = state;
  status.textContent = text;
}

function showError({ message, detail }) {
  $("engine-error-message").textContent = message;
  $("engine-error-detail").textContent = detail;
  $("engine-error-more").hidden = !detail;
  $("engine-error").hidden = false;
}

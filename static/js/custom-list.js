/** The list of custom models: edit, delete (after asking), export to a file and import from one. */

import { exportDocument, importDocument } from "./custom-models.js";
import { confirmAction } from "./dialog.js";
import { downloadFile } from "./files.js";
import { formatBytes } from "./format.js";

export const EXPORT_FILE_NAME = "hearth-custom-models.json";
const $ = (id) => document.getElementById(id);

export class CustomModelList {
  #store;
  #takenIds;

  /** onEdit(model) opens the form on a model; takenIds() gives every model id in use. */
  constructor({ store, takenIds, onEdit }) {
    this.#store = store;
    this.#takenIds = takenIds;
    $("custom-model-list").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const model = button && this.#store.find(button.closest("li").dataset.modelId);
      if (!model) return;
      if (button.dataset.action === "edit") onEdit(model);
      else this.#delete(model);
    });
    $("custom-export").addEventListener("click", () => this.#export());
    $("custom-import").addEventListener("change", (event) => this.#import(event.target));
  }

  render(models) {
    $("custom-model-list").replaceChildren(...models.map(listItem));
    $("custom-empty").hidden = models.length > 0;
    $("custom-export").disabled = models.length === 0;
  }

  async #delete(model) {
    const confirmed = await confirmAction(
      `Delete the custom model "${model.display_name}" (${model.model_id}) from this browser? `
        + "Files it already downloaded stay in the browser's cache.", "Delete");
    if (!confirmed) return;
    this.#report(() => {
      this.#store.remove(model.model_id);
      return `Deleted ${model.display_name}.`;
    });
  }

  #export() {
    downloadFile(EXPORT_FILE_NAME, exportDocument(this.#store.models), "application/json");
  }

  async #import(input) {
    const file = input.files[0];
    input.value = ""; // choosing the same file again must fire another change
    if (!file) return;
    const text = await file.text();
    this.#report(() => {
      const { models, skipped } = importDocument(text, this.#takenIds());
      if (models.length) this.#store.addAll(models);
      return importSummary(file.name, models, skipped);
    });
  }

  #report(action) {
    const report = $("custom-import-report");
    try {
      report.replaceChildren(...[].concat(action()));
      report.dataset.state = "ok";
    } catch (error) {
      report.textContent = error.message;
      report.dataset.state = "failed";
    }
  }
}

function listItem(model) {
  const item = document.createElement("li");
  item.dataset.modelId = model.model_id;
  const name = element("span", "custom-name", model.display_name);
  const id = element("code", "custom-id", model.model_id);
  const size = element("span", "custom-size", sizeText(model));
  const actions = element("span", "actions", "");
  actions.append(actionButton("edit", "Edit", model), actionButton("delete", "Delete", model));
  item.append(name, " ", id, " ", size, actions);
  return item;
}

function sizeText(model) {
  if (model.checked) return `${formatBytes(model.checked.total_bytes)} (checked)`;
  if (model.estimated_size_mb !== null) return `about ${formatBytes(model.estimated_size_mb * 1e6)}`;
  return "not checked yet";
}

function actionButton(action, label, model) {
  const button = element("button", action === "delete" ? "danger" : "", label);
  button.type = "button";
  button.dataset.action = action;
  button.setAttribute("aria-label", `${label} ${model.display_name}`);
  return button;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

function importSummary(fileName, models, skipped) {
  const parts = [element("p", "", `From ${fileName}: imported ${models.length} `
    + `model${models.length === 1 ? "" : "s"}${skipped.length ? `, skipped ${skipped.length}:` : "."}`)];
  if (skipped.length) {
    const list = element("ul", "skipped", "");
    list.append(...skipped.map(({ label, reason }) => element("li", "", `${label}: ${reason}`)));
    parts.push(list);
  }
  return parts;
}

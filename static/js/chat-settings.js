/**
 * The chat settings dialog: the open conversation's system prompt and parameters (beside the model's
 * own defaults), presets, whether the model names new chats, and export / import of everything.
 */

import { archiveJson, archiveMarkdown, readArchive } from "./archive.js";
import { confirmAction } from "./dialog.js";
import { downloadFile } from "./files.js";
import { PARAMS, validateParams } from "./params.js";
import { readPreset } from "./presets.js";

const $ = (id) => document.getElementById(id);
const AUTO_TITLES_KEY = "hearth.autoTitles";
const TITLE_MODEL_KEY = "hearth.titleModel";

/** Whether a model names new chats (a setting kept in localStorage; on unless turned off). */
export function autoTitles() {
  return localStorage.getItem(AUTO_TITLES_KEY) !== "off";
}

/** The catalogue id of the model that writes titles, or null: the chat's own model. */
export function titleModelId() {
  return localStorage.getItem(TITLE_MODEL_KEY) || null;
}

export class ChatSettings {
  #chat;
  #store;
  #presets;
  #defaults = {};
  #hooks;

  /** hooks: onSaved(conversation), startPreset(preset), selectedModelId(), modelName(id). */
  constructor({ chat, store, presets, hooks }) {
    this.#chat = chat;
    this.#store = store;
    this.#presets = presets;
    this.#hooks = hooks;
    $("param-fields").replaceChildren(...PARAMS.map(paramField));
    $("open-settings").addEventListener("click", () => this.open());
    $("settings-save").addEventListener("click", () => this.#save());
    $("settings-cancel").addEventListener("click", () => $("settings-dialog").close());
    $("preset-save").addEventListener("click", () => this.#savePreset());
    $("preset-list").addEventListener("click", (event) => this.#presetClicked(event));
    $("auto-titles").checked = autoTitles();
    $("auto-titles").addEventListener("change", () => {
      localStorage.setItem(AUTO_TITLES_KEY, $("auto-titles").checked ? "on" : "off");
    });
    $("title-model").addEventListener("change", () => {
      localStorage.setItem(TITLE_MODEL_KEY, $("title-model").value);
    });
    $("export-current-json").addEventListener("click", () => this.#export([this.#chat.current], "json"));
    $("export-current-md").addEventListener("click", () => this.#export([this.#chat.current], "md"));
    $("export-all-json").addEventListener("click", () => this.#export(this.#store.list(), "json"));
    $("export-all-md").addEventListener("click", () => this.#export(this.#store.list(), "md"));
    $("archive-import").addEventListener("change", (event) => this.#import(event.target));
  }

  /** Offer these entries (providers' models) as title writers, beside the chat's own model. */
  setTitleModels(entries) {
    const select = $("title-model");
    const chosen = titleModelId();
    select.replaceChildren(new Option("the model the chat is with", ""),
      ...entries.map((entry) => new Option(entry.name, entry.id)));
    select.value = entries.some((entry) => entry.id === chosen) ? chosen : "";
  }

  /** The loaded model's own defaults (its mlc-chat-config.json), shown beside each parameter. */
  setDefaults(defaults) {
    this.#defaults = defaults ?? {};
    for (const param of PARAMS) {
      const value = this.#defaults[param.name];
      $(`param-${param.name}`).placeholder = Number.isFinite(value) ? String(value) : "model default";
      $(`param-${param.name}-default`).textContent = Number.isFinite(value) ? `Model default: ${value}.` : "";
    }
  }

  open() {
    const conversation = this.#chat.current;
    $("system-prompt").value = conversation.systemPrompt;
    for (const param of PARAMS) {
      $(`param-${param.name}`).value = conversation.params[param.name] ?? "";
      showError(param.name, "");
    }
    $("export-current-json").disabled = !conversation.messages.length;
    $("export-current-md").disabled = !conversation.messages.length;
    this.#renderPresets();
    $("settings-dialog").showModal();
  }

  #formValues() {
    const raw = Object.fromEntries(PARAMS.map((param) => [param.name, $(`param-${param.name}`).value]));
    return { systemPrompt: $("system-prompt").value, ...validateParams(raw) };
  }

  async #save() {
    const { systemPrompt, params, errors } = this.#formValues();
    for (const param of PARAMS) showError(param.name, errors[param.name] ?? "");
    const first = PARAMS.find((param) => errors[param.name]);
    if (first) {
      $(`param-${first.name}`).focus();
      return;
    }
    const conversation = this.#chat.current;
    Object.assign(conversation, { systemPrompt, params });
    if (conversation.messages.length) await this.#store.save(conversation, { touch: false });
    $("settings-dialog").close();
    this.#hooks.onSaved(conversation);
  }

  async #savePreset() {
    const { systemPrompt, params, errors } = this.#formValues();
    const { preset, problem } = readPreset({ name: $("preset-name").value, model: this.#hooks.selectedModelId(),
      systemPrompt, params });
    const fieldProblem = Object.values(errors)[0];
    $("preset-status").textContent = fieldProblem ?? (problem ? `Not saved: ${problem}.` : `Saved the preset “${preset.name}”.`);
    if (fieldProblem || problem) return;
    await this.#presets.save(preset);
    $("preset-name").value = "";
    this.#renderPresets();
  }

  async #presetClicked(event) {
    const control = event.target.closest("button[data-action]");
    if (!control) return;
    const preset = this.#presets.get(control.closest("[data-id]").dataset.id);
    if (control.dataset.action === "start") {
      $("settings-dialog").close();
      this.#hooks.startPreset(preset);
    } else if (control.dataset.action === "delete"
      && await confirmAction(`Delete the preset “${preset.name}”?`, "Delete")) {
      await this.#presets.delete(preset.id);
      this.#renderPresets();
    }
  }

  #renderPresets() {
    const presets = this.#presets.list();
    $("preset-list").replaceChildren(...presets.map((preset) => {
      const item = $("preset-template").content.firstElementChild.cloneNode(true);
      item.dataset.id = preset.id;
      item.querySelector(".preset-name").textContent = preset.name;
      item.querySelector(".preset-model").textContent = preset.model ? this.#hooks.modelName(preset.model) ?? preset.model : "";
      for (const control of item.querySelectorAll("button")) {
        control.setAttribute("aria-label", `${control.textContent} “${preset.name}”`);
      }
      return item;
    }));
    $("preset-empty").hidden = presets.length > 0;
  }

  #export(conversations, kind) {
    const stamp = new Date().toISOString().slice(0, 10);
    const one = conversations.length === 1 ? `-${slug(conversations[0].title)}` : "";
    if (kind === "json") {
      const presets = one ? [] : this.#presets.list();
      downloadFile(`hearth-chats${one}-${stamp}.json`, archiveJson(conversations, presets), "application/json");
    } else {
      downloadFile(`hearth-chats${one}-${stamp}.md`, archiveMarkdown(conversations, this.#hooks.modelName), "text/markdown");
    }
  }

  async #import(input) {
    const file = input.files[0];
    input.value = ""; // choosing the same file again must fire another change
    if (!file) return;
    const report = $("archive-report");
    const { conversations, presets, skipped, problem } = readArchive(await file.text());
    if (problem) {
      report.dataset.state = "failed";
      report.textContent = problem;
      return;
    }
    await this.#store.addAll(conversations);
    await this.#presets.save(...presets);
    this.#renderPresets();
    report.dataset.state = "ok";
    const lines = [`Imported ${conversations.length} conversation${conversations.length === 1 ? "" : "s"}`
      + ` and ${presets.length} preset${presets.length === 1 ? "" : "s"}.`];
    for (const { what, problem: why } of skipped) lines.push(`Skipped ${what}: ${why}.`);
    report.replaceChildren(...lines.map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    }));
  }
}

function paramField(param) {
  const id = `param-${param.name}`;
  const field = document.createElement("div");
  field.className = "field param-field";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = param.label;
  const input = document.createElement("input");
  Object.assign(input, { id, type: "number", min: param.min, max: param.max, step: param.step, inputMode: "decimal",
    placeholder: "model default" });
  input.setAttribute("aria-describedby", `${id}-hint ${id}-default ${id}-error`);
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.id = `${id}-hint`;
  hint.textContent = param.hint;
  const defaults = document.createElement("p");
  defaults.className = "hint model-default";
  defaults.id = `${id}-default`;
  const error = document.createElement("p");
  error.className = "field-error";
  error.id = `${id}-error`;
  field.append(label, input, hint, defaults, error);
  return field;
}

function showError(name, message) {
  $(`param-${name}-error`).textContent = message;
  if (message) $(`param-${name}`).setAttribute("aria-invalid", "true");
  else $(`param-${name}`).removeAttribute("aria-invalid");
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "chat";
}

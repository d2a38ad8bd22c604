/** The chat page: wires the GPU check, the catalogue, the engine and the panels together. */

import { ChatView } from "./chat-ui.js";
import { CustomModelForm } from "./custom-form.js";
import { CustomModelList } from "./custom-list.js";
import { CustomModelStore } from "./custom-models.js";
import { ChatEngine } from "./engine.js";
import { explainError } from "./errors.js";
import { probeGpu } from "./gpu.js";
import { renderGpuStatus } from "./gpu-status.js";
import {
  buildCatalogue, fetchHostedModels, rememberedHostedModels, rememberHostedModels, takenIds,
} from "./models.js";
import { showNotice } from "./notices.js";
import { ModelPicker } from "./picker.js";
import { askToKeepFiles, roomProblem } from "./storage.js";

const engine = new ChatEngine();
const store = new CustomModelStore();
const picker = new ModelPicker({ onLoad: load });
const chat = new ChatView({ engine, onBusy: (busy) => picker.setBusy(busy) });
let catalogue = null;

async function start() {
  if (store.notice) showNotice(store.notice, "warning");
  const [gpu, hosted] = await Promise.all([probeGpu(), hostedModels()]);
  renderGpuStatus(gpu);
  const idsInUse = (exceptId = null) => takenIds(catalogue, exceptId);
  const form = new CustomModelForm({ store, takenIds: idsInUse, gpu });
  const list = new CustomModelList({ store, takenIds: idsInUse, onEdit: (model) => form.edit(model) });
  const refresh = () => {
    catalogue = buildCatalogue({ hosted, custom: store.models, gpu });
    picker.render(catalogue);
    list.render(store.models);
  };
  store.onChange(refresh);
  refresh();
  // For tests and the curious: the live objects behind the page.
  globalThis.hearth = { engine, store, gpu, get catalogue() { return catalogue; } };
  document.documentElement.dataset.hearth = "ready";
}

async function hostedModels() {
  try {
    const models = await fetchHostedModels();
    rememberHostedModels(models);
    return models;
  } catch (error) {
    const remembered = rememberedHostedModels();
    if (remembered) {
      showNotice(`${error.message} Its models are listed as it last listed them: those in the browser's `
        + "cache still load.", "warning");
      return remembered;
    }
    showNotice(`${error.message} Prebuilt and custom models are still listed.`, "warning");
    return [];
  }
}

async function load(entry) {
  picker.setBusy(true);
  chat.setReady(false);
  picker.showLoading(entry);
  try {
    const problem = entry.size?.download ? await roomProblem(entry.size.bytes) : null;
    if (problem) {
      picker.showLoadError({ message: problem, detail: "" });
      return;
    }
    await askToKeepFiles();
    await engine.load(entry.id, catalogue.appConfig, (report) => picker.showProgress(report));
    picker.showLoaded(entry);
    chat.setReady(true);
  } catch (error) {
    picker.showLoadError(explainError(error));
  } finally {
    picker.setBusy(false);
  }
}

start();

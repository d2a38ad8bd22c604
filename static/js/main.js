/** The chat page: wires the catalogue, the session, the conversations and the views together. */

import { ChatController } from "./chat.js";
import { Attachments } from "./attachments.js";
import { autoTitles, ChatSettings, titleModelId } from "./chat-settings.js";
import { bindShortcuts, Composer } from "./composer.js";
import { ConversationStore } from "./conversations.js";
import { CustomModelForm } from "./custom-form.js";
import { CustomModelList } from "./custom-list.js";
import { CustomModelStore } from "./custom-models.js";
import { explainError, isDownloadFailure } from "./errors.js";
import { formatCost } from "./format.js";
import { probeGpu } from "./gpu.js";
import { gpuRoomProblem } from "./gpu-memory.js";
import { renderGpuStatus } from "./gpu-status.js";
import { offerReload, offerResume, offerWindowThatFits, showEngineError } from "./load-recovery.js";
import { renderModelDetails } from "./model-details.js";
import {
  bytesToDownload, dropPartialDownload, forgetRefusedFile, markUsed, storedModels,
} from "./model-storage.js";
import {
  buildCatalogue, fetchHostedModels, rememberedHostedModels, rememberHostedModels, takenIds,
} from "./models.js";
import { showNotice } from "./notices.js";
import { ModelPicker } from "./picker.js";
import { PresetStore } from "./presets.js";
import { remoteEntries } from "./providers/catalogue.js";
import { ProviderForm } from "./providers/form.js";
import { KeyStore } from "./providers/keys.js";
import { consoleApi, ProviderPanel } from "./providers/panel.js";
import { ProviderStore } from "./providers/store.js";
import { RemoteRuntime } from "./runtimes/remote.js";
import { describeProgress } from "./progress.js";
import { Session } from "./session.js";
import { Sidebar } from "./sidebar.js";
import { askToKeepFiles, ranOutOfRoom, roomProblem } from "./storage.js";
import { StorageView } from "./storage-view.js";
import { TranscriptView } from "./transcript-view.js";

const $ = (id) => document.getElementById(id);
const OPEN_KEY = "hearth.openConversation";

const session = new Session();
const customModels = new CustomModelStore();
const conversations = new ConversationStore();
const presets = new PresetStore();
const providers = new ProviderStore();
const providerKeys = new KeyStore();
let catalogue = null;
let gpu = null;
RemoteRuntime.services = { keys: providerKeys, provider: (id) => providers.get(id), onRefusedParam: parameterRefused };

const modelName = (id) => catalogue?.byId.get(id)?.name ?? null;
const picker = new ModelPicker({ onLoad: (entry) => loadModel(entry).catch(() => {}), onChange: () => refreshControls() });
const transcript = new TranscriptView({ onAction: messageAction, modelName });
const chat = new ChatController({
  session,
  store: conversations,
  view: transcript,
  hooks: {
    selectedEntry: () => picker.selected,
    load: (entry) => loadModel(entry),
    onOpen: conversationOpened,
    onError: replyFailed,
    onContext: (context) => composer.showContext(context),
    autoTitles,
    titleWriter,
    restoreImages: (images) => attachments.restore(images),
  },
});
const composer = new Composer({ onSend: (text) => send(text), onStop: () => chat.stop() });
const attachments = new Attachments({ onProblem: (message) => showNotice(message, "warning") });
const sidebar = new Sidebar({ store: conversations, onOpen: (id) => chat.open(id), onNew: () => chat.newChat(), modelName });
const storageView = new StorageView({ onChanged: () => refreshStored() });
const settings = new ChatSettings({
  chat,
  store: conversations,
  presets,
  hooks: {
    onSaved: () => refreshControls(),
    startPreset: (preset) => {
      if (preset.model) picker.select(preset.model);
      chat.newChat(preset);
    },
    selectedModelId: () => picker.selected?.id ?? null,
    modelName,
  },
});

async function start() {
  if (customModels.notice) showNotice(customModels.notice, "warning");
  if (providers.notice) showNotice(providers.notice, "warning");
  let hosted;
  [gpu, hosted] = await Promise.all([probeGpu(), hostedModels(), providerKeys.load(), providers.loadServerProviders()]);
  if (providerKeys.notice) showNotice(providerKeys.notice, "warning");
  renderGpuStatus(gpu);
  const idsInUse = (exceptId = null) => takenIds(catalogue, exceptId);
  const form = new CustomModelForm({ store: customModels, takenIds: idsInUse, gpu });
  const list = new CustomModelList({ store: customModels, takenIds: idsInUse, onEdit: (model) => form.edit(model) });
  const refresh = () => {
    catalogue = buildCatalogue({ hosted, custom: customModels.models, remote: remoteEntries(providers.all), gpu });
    picker.render(catalogue);
    settings.setTitleModels(catalogue.entries.filter((entry) => entry.runtime === "remote"));
    list.render(customModels.models);
    refreshControls();
    refreshStored();
  };
  customModels.onChange(refresh);
  providers.onChange(refresh);
  const providerForm = new ProviderForm({ store: providers, keys: providerKeys, onSaved: () => panel.render() });
  const panel = new ProviderPanel({ store: providers, keys: providerKeys, form: providerForm });
  panel.render();
  conversations.onChange(() => refreshControls());
  refresh();
  session.subscribe(sessionChanged);
  await openSavedChats();
  bindShortcuts({ onStop: () => chat.stop(), onNewChat: () => chat.newChat() });
  $("cancel-load").addEventListener("click", () => session.cancelLoad());
  $("open-models").addEventListener("click", () => {
    $("models-dialog").showModal();
    refreshStored();
  });
  $("open-providers").addEventListener("click", () => $("providers-dialog").showModal());
  for (const change of ["online", "offline"]) window.addEventListener(change, () => refreshStored());
  for (const button of document.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  // For tests and the curious: the live objects behind the page.
  globalThis.hearth = {
    session, chat, conversations, presets, customModels, gpu, providers: consoleApi(providers, providerKeys),
    get catalogue() { return catalogue; },
  };
  document.documentElement.dataset.hearth = "ready";
}

async function openSavedChats() {
  try {
    const { unreadable, problems, migrated } = await conversations.load();
    if (unreadable) {
      showNotice(`${unreadable} saved conversation${unreadable === 1 ? "" : "s"} could not be read (${problems[0]}) `
        + "and were set aside in the browser's storage; the others are here.", "warning");
    }
    const skippedPresets = await presets.load();
    if (skippedPresets) showNotice(`${skippedPresets} saved preset(s) could not be read and were set aside.`, "warning");
    if (migrated) showNotice("Your earlier conversation is now in the list of saved chats.", "info");
  } catch (error) {
    showNotice(`Saved conversations are not available: ${error.message ?? error} Chats still work, unsaved.`, "warning");
  }
  const remembered = localStorage.getItem(OPEN_KEY);
  const id = conversations.get(remembered) ? remembered : conversations.list()[0]?.id ?? null;
  chat.open(id);
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

/** Load an entry with its progress shown in the conversation; rejects (after showing why) on failure. */
async function loadModel(entry) {
  $("engine-error").hidden = true;
  const problem = await roomProblem(await bytesToDownload(entry));
  if (problem) {
    showEngineError({ message: problem, detail: "" });
    throw new Error(`QuotaExceededError: ${problem}`);
  }
  const contextWindow = chat.current?.params.context_window_size ?? null;
  const tooBig = await gpuRoomProblem(entry, contextWindow, gpu);
  if (tooBig) {
    offerWindowThatFits(entry, tooBig, loadWithWindow);
    throw new Error(`GPUBufferLimitError: ${tooBig.message}`);
  }
  await askToKeepFiles();
  try {
    await session.load(entry, { contextWindow });
    markUsed(entry.id);
  } catch (error) {
    const explained = explainError(error);
    if (explained.detail.startsWith("CancelledError")) throw error; // the person asked: nothing to explain
    await forgetRefusedFile(explained.detail);
    if (/QuotaExceeded|Quota exceeded/i.test(explained.detail)) {
      await dropPartialDownload(entry, catalogue.entries);
      explained.message = await ranOutOfRoom(entry.size?.download ? entry.size.bytes : null);
    }
    showEngineError(explained);
    if (!navigator.onLine || isDownloadFailure(explained.detail)) {
      const resume = (again) => loadModel(again).catch(() => {});
      offerResume(entry, explained.detail, resume, { offline: !navigator.onLine });
    }
    throw error;
  } finally {
    refreshStored();
  }
}

/** Look again at what the browser stores: the storage view and the selector's offline-ready marks. */
async function refreshStored() {
  if (!catalogue || !globalThis.caches) return;
  const stored = await storedModels(catalogue.entries);
  picker.markStored(stored, !navigator.onLine);
  await storageView.render(stored, catalogue.byId);
}

async function send(text) {
  $("chat-error").hidden = true;
  if (!conversations.get(chat.current.id)) chat.current.model = picker.selected?.id ?? null;
  await chat.send(text, attachments.take());
}

function messageAction(action, id, extra) {
  const message = chat.current.messages.find((m) => m.id === id);
  if (!message) return;
  if (action === "copy") {
    navigator.clipboard?.writeText(message.content).then(() => showNotice("Copied the message as markdown."),
      () => showNotice("The browser did not allow copying.", "warning"));
  } else if (chat.generating || ["loading", "generating"].includes(session.state.name)) {
    showNotice("Wait for the reply to finish, or stop it first.", "info");
  } else if (action === "regenerate") chat.regenerate(id);
  else if (action === "edit") chat.edit(id, extra.trim());
  else if (action === "continue") chat.continueReply(id);
  else if (action === "delete") chat.deleteMessage(id);
  else if (action === "version" && extra) chat.showVersion(extra);
}

function conversationOpened(conversation) {
  if (conversations.get(conversation.id)) localStorage.setItem(OPEN_KEY, conversation.id);
  sidebar.setCurrent(conversation.id);
  $("chat-error").hidden = true;
  $("conversation-title").textContent = conversation.title;
  composer.showContext({ tokens: null, window: null, dropped: 0 });
  const loaded = ["ready", "generating"].includes(session.state.name) ? session.state.entry : null;
  const answeredBy = conversation.model;
  if (answeredBy && !loaded && answeredBy !== picker.selected?.id) picker.select(answeredBy);
  showModelMismatch(conversation, loaded);
  refreshControls();
}

// Another model answered this conversation: say so and offer to switch, never reload on our own.
function showModelMismatch(conversation, loaded) {
  const banner = $("model-mismatch");
  const answeredBy = conversation.model;
  const current = loaded?.id ?? picker.selected?.id;
  banner.hidden = !answeredBy || !current || answeredBy === current || !conversation.messages.length;
  if (banner.hidden) return;
  const known = catalogue?.byId.get(answeredBy);
  $("model-mismatch-text").textContent = known
    ? `This conversation was answered by ${known.name}; new replies will come from ${modelName(current) ?? current}.`
    : `This conversation was answered by ${answeredBy}, which is not available here; new replies will come from `
      + `${modelName(current) ?? current}.`;
  const button = $("switch-model");
  button.hidden = !known || Boolean(known.problems.length);
  button.textContent = `Switch to ${known?.name ?? answeredBy}`;
  button.onclick = () => {
    banner.hidden = true;
    if (picker.select(answeredBy)) loadModel(known).catch(() => {});
  };
}

function sessionChanged(state) {
  picker.showState(state);
  const box = $("load-progress-box");
  box.hidden = state.name !== "loading";
  if (state.progress) {
    const { phase, fraction, detail } = describeProgress(state.progress);
    $("load-model-name").textContent = state.entry.name;
    $("load-phase").textContent = phase;
    $("load-progress").value = fraction;
    $("load-detail").textContent = detail;
  }
  if (state.name === "ready") settings.setDefaults(state.defaults);
  if (state.name === "error" && state.lost) offerReload(state.lost, state.error, loadWithWindow);
  refreshControls();
}

function refreshControls() {
  const entry = picker.selected;
  composer.update({ state: session.state.name, canSend: Boolean(entry && !entry.problems.length), modelName: entry?.name ?? "" });
  attachments.enable(Boolean(entry?.model?.vision));
  renderModelDetails(entry, session.state.entry?.id === entry?.id ? session.state.defaults : null);
  if (chat.current) {
    $("conversation-title").textContent = chat.current.title;
    // What every priced reply in this conversation cost, versions included.
    const costs = chat.current.messages.map((m) => m.cost).filter(Number.isFinite);
    $("conversation-cost").textContent = costs.length ? `This chat: ${formatCost(costs.reduce((a, b) => a + b, 0))}` : "";
    const loaded = ["ready", "generating"].includes(session.state.name) ? session.state.entry : null;
    showModelMismatch(chat.current, loaded);
  }
}

function replyFailed(error, { restoreText }) {
  // A failed load has said why in the engine's error box already.
  if (!$("engine-error").hidden) {
    composer.restore(restoreText);
    return;
  }
  const { message, detail } = explainError(error);
  $("chat-error-message").textContent = restoreText ? `${message} Your message is back in the box.` : message;
  $("chat-error-detail").textContent = detail;
  $("chat-error").hidden = false;
  composer.restore(restoreText);
}

// A provider's model chosen to write titles: its own runtime, so a title never waits on the chat's.
function titleWriter() {
  const entry = catalogue?.byId.get(titleModelId());
  if (!entry || entry.runtime !== "remote") return null;
  return {
    async reply(messages, params, onText) {
      const runtime = new RemoteRuntime();
      await runtime.load(entry);
      return runtime.reply(messages, params, onText);
    },
  };
}

// A server refused a parameter by name: the reply was asked again without it; say so, once per model.
function parameterRefused(provider, modelId, param) {
  providers.update(provider.id, (p) => ({
    learnedDrops: { ...p.learnedDrops, [modelId]: [...new Set([...(p.learnedDrops[modelId] ?? []), param])] },
  }));
  showNotice(`${provider.name} refused the parameter ${param} for ${modelId}, so Hearth asked again without it and `
    + "will leave it out from now on (Providers → Edit shows it, and can send it again).", "info");
}

// After a loss, or for a model too big at its window: a smaller window becomes the conversation's own
// setting, so its next message does not load the larger one.
async function loadWithWindow(entry, contextWindow) {
  const conversation = chat.current;
  if (contextWindow !== (conversation.params.context_window_size ?? null) && contextWindow) {
    conversation.params = { ...conversation.params, context_window_size: contextWindow };
    if (conversation.messages.length) await conversations.save(conversation, { touch: false });
  }
  picker.select(entry.id);
  await loadModel(entry).catch(() => {});
}

start();

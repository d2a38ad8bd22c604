/**
 * Saved conversations: the record format, its checks, and the store that keeps them in IndexedDB.
 * Every record is checked when read; one that fails is moved aside (store "unreadable") and reported,
 * and the others load. The conversation the page kept in localStorage before IndexedDB migrates in once.
 */

import { allEntries, requested, transact } from "./db.js";
import { validateParams } from "./params.js";
import { newId } from "./thread.js";

export const RECORD_FORMAT = 1;
export const LEGACY_KEY = "hearth.conversation";
const LEGACY_MARKER = "migrated:hearth.conversation";
const ROLES = new Set(["user", "assistant"]);
const FINISH = new Set(["stop", "length", "abort"]);
export const UNTITLED = "New chat";
const MAX_TITLE = 200;

/** A new, empty conversation. */
export function newConversation({ model = null, systemPrompt = "", params = {}, now = Date.now() } = {}) {
  return {
    format: RECORD_FORMAT, id: newId("c"), title: UNTITLED, titleSource: "default", pinned: false,
    created: now, updated: now, model, systemPrompt, params: { ...params }, messages: [], leaf: null,
  };
}

/**
 * Check one conversation record (from storage or a file). Returns {conversation, problem}: a clean
 * copy when problem is null, otherwise what is wrong with it in plain words.
 */
export function readConversation(value) {
  const fail = (problem) => ({ conversation: null, problem });
  if (!value || typeof value !== "object" || Array.isArray(value)) return fail("it is not a conversation object");
  if (value.format !== RECORD_FORMAT) return fail(`it has format ${JSON.stringify(value.format)}, not ${RECORD_FORMAT}`);
  if (typeof value.id !== "string" || !value.id) return fail("it has no id");
  if (typeof value.title !== "string") return fail("its title is not text");
  if (!Number.isFinite(value.created) || !Number.isFinite(value.updated)) return fail("its times are not numbers");
  if (!Array.isArray(value.messages)) return fail("it has no list of messages");
  const { params, errors } = validateParams(value.params);
  if (Object.keys(errors).length) return fail(`its parameters are wrong (${Object.values(errors)[0]})`);
  const messages = [];
  const ids = new Set();
  for (const [index, message] of value.messages.entries()) {
    const problem = messageProblem(message, ids);
    if (problem) return fail(`message ${index + 1} ${problem}`);
    ids.add(message.id);
    messages.push(cleanMessage(message));
  }
  if (messages.some((message) => message.parent !== null && !ids.has(message.parent))) {
    return fail("a message answers one that is not there");
  }
  if (value.leaf !== null && !ids.has(value.leaf)) return fail("it ends at a message that is not there");
  return {
    problem: null,
    conversation: {
      format: RECORD_FORMAT,
      id: value.id,
      title: value.title.slice(0, MAX_TITLE) || UNTITLED,
      titleSource: ["default", "model", "user"].includes(value.titleSource) ? value.titleSource : "default",
      pinned: value.pinned === true,
      created: value.created,
      updated: value.updated,
      model: typeof value.model === "string" ? value.model : null,
      systemPrompt: typeof value.systemPrompt === "string" ? value.systemPrompt : "",
      params,
      messages,
      leaf: value.leaf ?? null,
    },
  };
}

function messageProblem(message, ids) {
  if (!message || typeof message !== "object") return "is not an object";
  if (typeof message.id !== "string" || !message.id) return "has no id";
  if (ids.has(message.id)) return "repeats an id";
  if (!ROLES.has(message.role)) return `has the role ${JSON.stringify(message.role)} (user or assistant expected)`;
  if (typeof message.content !== "string") return "has no text";
  if (message.parent !== null && typeof message.parent !== "string") return "names its parent wrongly";
  if (!Number.isFinite(message.time)) return "has no time";
  return null;
}

function cleanMessage(message) {
  const clean = { id: message.id, parent: message.parent, role: message.role, content: message.content, time: message.time };
  if (message.role === "assistant") {
    clean.model = typeof message.model === "string" ? message.model : null;
    clean.finish = FINISH.has(message.finish) ? message.finish : (message.stopped ? "abort" : "stop");
    clean.stopped = clean.finish === "abort";
    clean.stats = statsOf(message.stats);
    if (Number.isFinite(message.cost)) clean.cost = message.cost;
  }
  // Images attached for a vision model, as data: URLs (never fetched: shown and sent as they are).
  const images = Array.isArray(message.images) ? message.images.filter((url) => typeof url === "string" && url.startsWith("data:image/")) : [];
  if (message.role === "user" && images.length) clean.images = images;
  return clean;
}

function statsOf(stats) {
  if (!stats || typeof stats !== "object") return null;
  const number = (value) => (Number.isFinite(value) ? value : null);
  return { prefill: number(stats.prefill), decode: number(stats.decode), tokens: number(stats.tokens),
    estimated: stats.estimated === true };
}

/** What is saved of a conversation: streaming replies are not (they are saved when they end). */
export function toRecord(conversation) {
  const pending = new Set(conversation.messages.filter((m) => m.pending).map((m) => m.id));
  const messages = conversation.messages.filter((m) => !pending.has(m.id)).map(cleanMessage);
  let leaf = conversation.leaf;
  while (pending.has(leaf)) leaf = conversation.messages.find((m) => m.id === leaf).parent;
  return { ...conversation, messages, leaf };
}

/** The conversations in IndexedDB, all held in memory (they are small next to a model). */
export class ConversationStore {
  #byId = new Map();
  #listeners = new Set();

  /** Read every record; returns {unreadable: n, migrated: bool} for the page to report. */
  async load(storage = localStorage) {
    const migrated = await this.#migrateLegacy(storage);
    const entries = await transact(["conversations"], "readonly", (stores) => allEntries(stores.conversations));
    const bad = [];
    for (const [key, value] of entries) {
      const { conversation, problem } = readConversation(value);
      if (conversation && conversation.id === key) this.#byId.set(key, conversation);
      else bad.push({ key, value, problem: problem ?? "its id does not match its key" });
    }
    if (bad.length) await this.#setAside(bad);
    this.#changed();
    return { unreadable: bad.length, problems: bad.map((entry) => entry.problem), migrated };
  }

  /** Every conversation, pinned first, then newest first. */
  list() {
    return [...this.#byId.values()].sort((a, b) => (b.pinned - a.pinned) || (b.updated - a.updated));
  }

  get(id) {
    return this.#byId.get(id) ?? null;
  }

  /** Keep a conversation in memory and in IndexedDB; touch=true marks it updated now. */
  async save(conversation, { touch = true } = {}) {
    if (touch) conversation.updated = Date.now();
    this.#byId.set(conversation.id, conversation);
    this.#changed();
    const record = toRecord(conversation);
    await transact(["conversations"], "readwrite", (stores) => requested(stores.conversations.put(record)));
  }

  async delete(id) {
    this.#byId.delete(id);
    this.#changed();
    await transact(["conversations"], "readwrite", (stores) => requested(stores.conversations.delete(id)));
  }

  /** Add checked conversations (from an import); an id already here gets a new one, so nothing is overwritten. */
  async addAll(conversations) {
    const added = conversations.map((conversation) => (this.#byId.has(conversation.id)
      ? { ...conversation, id: newId("c") } : conversation));
    for (const conversation of added) this.#byId.set(conversation.id, conversation);
    this.#changed();
    await transact(["conversations"], "readwrite", (stores) => Promise.all(
      added.map((conversation) => requested(stores.conversations.put(toRecord(conversation)))),
    ));
    return added;
  }

  /** listener() runs after any change (the sidebar redraws). */
  onChange(listener) {
    this.#listeners.add(listener);
  }

  #changed() {
    for (const listener of this.#listeners) listener();
  }

  async #setAside(bad) {
    await transact(["conversations", "unreadable"], "readwrite", (stores) => Promise.all(bad.map(async (entry) => {
      await requested(stores.unreadable.add({ store: "conversations", key: entry.key, value: entry.value,
        problem: entry.problem, at: Date.now() }));
      await requested(stores.conversations.delete(entry.key));
    })));
  }

  // The page before IndexedDB kept one conversation in localStorage. It comes in once: the marker is
  // written in the same transaction as the conversation, so a second visit never imports it again.
  async #migrateLegacy(storage) {
    const raw = storage.getItem(LEGACY_KEY);
    if (raw === null) return false;
    const conversation = legacyConversation(raw);
    const done = await transact(["conversations", "markers"], "readwrite", async (stores) => {
      if (await requested(stores.markers.get(LEGACY_MARKER))) return false;
      if (conversation) await requested(stores.conversations.put(toRecord(conversation)));
      await requested(stores.markers.put({ name: LEGACY_MARKER, at: Date.now(), conversation: conversation?.id ?? null }));
      return Boolean(conversation);
    });
    // The old value stays readable under another key (never lost), out of the way of the marker check.
    storage.setItem(`${LEGACY_KEY}.migrated`, raw);
    storage.removeItem(LEGACY_KEY);
    return done;
  }
}

function legacyConversation(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch {
    return null;
  }
  const old = Array.isArray(doc?.messages) ? doc.messages : [];
  const usable = old.filter((m) => ROLES.has(m?.role) && typeof m.content === "string");
  if (!usable.length) return null;
  const now = Date.now();
  const conversation = newConversation({ now });
  conversation.title = usable[0].content.slice(0, 60);
  let parent = null;
  usable.forEach((m, i) => {
    const message = { id: newId("m"), parent, role: m.role, content: m.content, time: now - (usable.length - i) };
    if (m.role === "assistant") {
      Object.assign(message, { model: null, finish: m.stopped ? "abort" : "stop", stopped: Boolean(m.stopped),
        stats: statsOf(m.stats) });
    }
    conversation.messages.push(message);
    parent = message.id;
  });
  conversation.leaf = parent;
  return conversation;
}

/**
 * The chat controller: what sending, regenerating, editing, continuing and deleting do to the open
 * conversation, and how a reply gets from the session into it. A reply belongs to the conversation
 * it was asked in, whichever one is on screen when it arrives.
 */

import { fitToWindow, replyRoom } from "./context.js";
import { newConversation, UNTITLED } from "./conversations.js";
import { requestParams } from "./params.js";
import { withoutReasoning } from "./reasoning.js";
import { addVersion, appendMessage, deleteMessage, newId, pathTo, showVersion, visibleMessages } from "./thread.js";
import { suggestTitle } from "./titles.js";

// What the model is told when asked to go on with a reply that hit the token limit.
export const CONTINUE_PROMPT = "Continue exactly where your last reply stopped, without repeating any of it.";

export class ChatController {
  #session;
  #store;
  #view;
  #current = null;
  #generating = null;
  #hooks;

  /**
   * hooks: selectedEntry() (the picker's entry: replies come from it), load(entry) (loads with
   * progress shown; rejects on failure), onOpen(conversation), onError(error, {restoreText}),
   * onContext({tokens, window, dropped}), autoTitles() (whether to name chats with a model),
   * titleWriter() (what writes titles, with a reply() like the session's; null: the session),
   * restoreImages(images) (a message that got no answer gives its images back to the composer).
   */
  constructor({ session, store, view, hooks }) {
    this.#session = session;
    this.#store = store;
    this.#view = view;
    this.#hooks = hooks;
  }

  /** The open conversation (maybe not saved yet: a new chat is saved with its first message). */
  get current() {
    return this.#current;
  }

  /** The reply streaming now: {conversationId, messageId}, or null. */
  get generating() {
    return this.#generating;
  }

  /** Show a conversation (null: a new, empty one). */
  open(id) {
    this.#current = (id && this.#store.get(id)) || newConversation({ model: this.#hooks.selectedEntry()?.id ?? null });
    this.#view.render(this.#current);
    this.#hooks.onOpen(this.#current);
  }

  /** Start a new chat, from a preset ({model, systemPrompt, params}) when given. */
  newChat(preset = null) {
    this.#current = newConversation({
      model: preset?.model ?? this.#hooks.selectedEntry()?.id ?? null,
      systemPrompt: preset?.systemPrompt ?? "",
      params: preset?.params ?? {},
    });
    this.#view.render(this.#current);
    this.#hooks.onOpen(this.#current);
  }

  /** Send the person's message (with images for a vision model) in the open conversation and stream the reply. */
  async send(text, images = []) {
    const conversation = this.#current;
    const question = { id: newId("m"), role: "user", content: text, time: Date.now() };
    if (images.length) question.images = images;
    appendMessage(conversation, question);
    if (conversation.titleSource === "default" && conversation.title === UNTITLED) {
      conversation.title = text.replace(/\s+/g, " ").slice(0, 60);
    }
    await this.#store.save(conversation);
    this.#view.render(conversation);
    const answered = await this.#reply(conversation, () => {
      // Nothing was answered: take the question back out and give the person their words back.
      deleteMessage(conversation, question.id);
      return text;
    });
    if (answered) this.#nameInBackground(conversation);
    else if (images.length && this.#current === conversation) this.#hooks.restoreImages?.(images);
  }

  /** Write a reply again; the earlier one stays as a version. */
  async regenerate(messageId) {
    const conversation = this.#current;
    const original = conversation.messages.find((m) => m.id === messageId);
    const previousLeaf = conversation.leaf;
    conversation.leaf = original.parent;
    await this.#reply(conversation, () => {
      conversation.leaf = previousLeaf;
    }, original);
  }

  /** Send an edited question from where it stood; the old branch stays as a version. */
  async edit(messageId, text) {
    const conversation = this.#current;
    const original = conversation.messages.find((m) => m.id === messageId);
    const previousLeaf = conversation.leaf;
    const question = { id: newId("m"), role: "user", content: text, time: Date.now() };
    addVersion(conversation, original, question);
    await this.#store.save(conversation);
    this.#view.render(conversation);
    await this.#reply(conversation, () => {
      deleteMessage(conversation, question.id);
      conversation.leaf = previousLeaf;
    });
  }

  /** Ask the model to go on with a reply that stopped at the token limit; the text is added to it. */
  async continueReply(messageId) {
    const conversation = this.#current;
    const message = conversation.messages.find((m) => m.id === messageId);
    const before = { content: message.content, finish: message.finish };
    const history = pathTo(conversation, messageId);
    await this.#stream(conversation, message, engineMessages(conversation, history, CONTINUE_PROMPT), {
      prefix: `${message.content}${/\s$/.test(message.content) ? "" : " "}`,
      undo: () => Object.assign(message, before),
    });
  }

  /** Switch a message to another of its versions. */
  async showVersion(messageId) {
    showVersion(this.#current, messageId);
    await this.#store.save(this.#current, { touch: false });
    this.#view.render(this.#current);
  }

  async deleteMessage(messageId) {
    deleteMessage(this.#current, messageId);
    await this.#store.save(this.#current);
    this.#view.render(this.#current);
  }

  /** Stop the reply being generated (it keeps its text and says it was stopped). */
  stop() {
    if (this.#generating) this.#session.stop();
  }

  // Ask for a reply to the branch as it stands (it ends with a question), as a new message or as a
  // new version of `replaces`. undo() puts the conversation back when no reply could be had.
  async #reply(conversation, undo, replaces = null) {
    const reply = { id: newId("m"), role: "assistant", content: "", time: Date.now(), model: null, pending: true };
    if (replaces) addVersion(conversation, replaces, reply);
    else appendMessage(conversation, reply);
    const history = pathTo(conversation, reply.parent);
    return this.#stream(conversation, reply, engineMessages(conversation, history), {
      undo: () => {
        conversation.messages = conversation.messages.filter((m) => m.id !== reply.id);
        return undo();
      },
    });
  }

  async #stream(conversation, message, messages, { prefix = "", undo }) {
    const entry = this.#hooks.selectedEntry();
    message.pending = true;
    this.#generating = { conversationId: conversation.id, messageId: message.id };
    this.#view.render(conversation);
    try {
      if (!entry) throw new Error("NoModelError: pick a model first");
      if (!this.#session.holds(entry, conversation.params.context_window_size ?? null)) {
        await this.#hooks.load(entry);
      }
      const { fitted, dropped } = await this.#fit(conversation, messages);
      const result = await this.#session.reply(fitted, requestParams(conversation.params), (text) => {
        message.content = prefix + text;
        if (this.#current === conversation) this.#view.streamInto(message.id, message.content);
      });
      Object.assign(message, {
        content: prefix + result.text, finish: result.finishReason ?? "stop", stopped: result.finishReason === "abort",
        stats: result.stats, model: entry.id, time: message.time, pending: false, cost: result.cost ?? null,
      });
      conversation.model = entry.id;
      this.#hooks.onContext({ tokens: result.used, window: this.#session.state.contextWindow, dropped });
      await this.#store.save(conversation);
      return true;
    } catch (error) {
      delete message.pending;
      const restoreText = undo();
      await this.#keepOrForget(conversation);
      this.#hooks.onError(error, { restoreText: this.#current === conversation ? restoreText : null });
      return false;
    } finally {
      this.#generating = null;
      if (this.#current === conversation) this.#view.render(conversation);
    }
  }

  // After a failed first exchange a new chat holds nothing: it leaves no empty entry behind.
  async #keepOrForget(conversation) {
    if (!this.#store.get(conversation.id)) return;
    if (conversation.messages.length) {
      await this.#store.save(conversation, { touch: false });
      return;
    }
    Object.assign(conversation, { title: UNTITLED, titleSource: "default" });
    await this.#store.delete(conversation.id);
  }

  // Leave out the oldest turns the context window cannot hold (never the system prompt).
  async #fit(conversation, messages) {
    const window = this.#session.state.contextWindow;
    const system = messages[0]?.role === "system" ? messages[0] : null;
    const turns = system ? messages.slice(1) : messages;
    const counts = window ? await this.#session.countTokens([system?.content ?? "", ...turns.map((m) => m.content)]) : null;
    if (!counts) return { fitted: messages, dropped: 0 };
    const [systemCount, ...turnCounts] = counts;
    const { start, tokens, fits } = fitToWindow({
      messages: turns.map((m, i) => ({ role: m.role, count: turnCounts[i] })),
      systemCount: system ? systemCount : 0,
      contextWindow: window,
      room: replyRoom(conversation.params, window),
    });
    if (!fits) {
      throw new Error(`ContextWindowSizeExceededError: this message takes about ${tokens} tokens with its `
        + `reply, more than the model's context window of ${window}`);
    }
    this.#hooks.onContext({ tokens, window, dropped: start });
    return { fitted: system ? [system, ...turns.slice(start)] : turns.slice(start), dropped: start };
  }

  // A short title from the model once the first reply is in; it never replaces one the person gave.
  async #nameInBackground(conversation) {
    if (conversation.titleSource !== "default" || !this.#hooks.autoTitles()) return;
    const first = visibleMessages(conversation).find((m) => m.role === "user");
    const title = await suggestTitle(this.#hooks.titleWriter?.() ?? this.#session, first.content);
    if (!title || conversation.titleSource !== "default") return;
    Object.assign(conversation, { title, titleSource: "model" });
    if (this.#store.get(conversation.id)) await this.#store.save(conversation, { touch: false });
  }
}

/** What the engine is given: the system prompt, then the roles and texts of the branch (and an extra question). */
export function engineMessages(conversation, history, extraQuestion = null) {
  const messages = history.map(({ role, content, images }) => ({
    role, content: role === "assistant" ? withoutReasoning(content) : content, ...(images?.length ? { images } : {}),
  }));
  if (conversation.systemPrompt.trim()) messages.unshift({ role: "system", content: conversation.systemPrompt });
  if (extraQuestion) messages.push({ role: "user", content: extraQuestion });
  return messages;
}

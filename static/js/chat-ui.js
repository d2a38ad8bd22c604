/** The conversation panel: the transcript, the composer, Stop, and each reply's speed. */

import { explainError } from "./errors.js";
import { formatRate } from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { engineMessages, loadConversation, saveConversation } from "./transcript.js";

const $ = (id) => document.getElementById(id);

export class ChatView {
  #engine;
  #messages;
  #ready = false;
  #generating = false;
  #onBusy;

  /** onBusy(busy) hears when a reply starts and ends (the model cannot change meanwhile). */
  constructor({ engine, onBusy }) {
    this.#engine = engine;
    this.#onBusy = onBusy;
    this.#messages = loadConversation();
    for (const message of this.#messages) this.#appendMessage(message);
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("stop").addEventListener("click", () => this.#engine.stop());
    $("new-chat").addEventListener("click", () => this.#newChat());
    this.#updateControls();
  }

  /** Whether a model is loaded and replies can be asked for. */
  setReady(ready) {
    this.#ready = ready;
    this.#updateControls();
  }

  async #send() {
    const text = $("prompt").value.trim();
    if (!text || !this.#ready || this.#generating) return;
    $("chat-error").hidden = true;
    $("prompt").value = "";
    // "New chat" swaps in a fresh array: a reply that ends after that belongs to no conversation.
    const messages = this.#messages;
    const question = { role: "user", content: text };
    messages.push(question);
    saveConversation(messages);
    const questionView = this.#appendMessage(question);
    const replyView = this.#appendMessage({ role: "assistant", content: "" });
    // Screen readers announce the reply once it is whole, not token by token.
    replyView.item.setAttribute("aria-busy", "true");
    this.#setGenerating(true);
    try {
      const reply = await this.#engine.reply(engineMessages(messages), throttled(replyView.body));
      if (messages === this.#messages) this.#finishReply(replyView, reply);
    } catch (error) {
      if (messages !== this.#messages) return;
      // The exchange failed: take it back out, and give the person their words back.
      messages.pop();
      saveConversation(messages);
      questionView.item.remove();
      replyView.item.remove();
      $("prompt").value = text;
      this.#showError(error);
    } finally {
      this.#setGenerating(false);
    }
  }

  #finishReply(view, { text, finishReason, usage }) {
    const message = { role: "assistant", content: text, stopped: finishReason === "abort", stats: speeds(usage) };
    this.#messages.push(message);
    saveConversation(this.#messages);
    renderMarkdown(view.body, text);
    view.item.setAttribute("aria-busy", "false");
    view.meta.textContent = metaText(message);
  }

  #appendMessage(message) {
    const item = $("message-template").content.firstElementChild.cloneNode(true);
    item.dataset.role = message.role;
    const body = item.querySelector(".message-body");
    const meta = item.querySelector(".message-meta");
    if (message.role === "assistant") renderMarkdown(body, message.content);
    else body.textContent = message.content;
    meta.textContent = metaText(message);
    $("transcript").append(item);
    item.scrollIntoView({ block: "end" });
    return { item, body, meta };
  }

  #newChat() {
    if (this.#generating) this.#engine.stop();
    this.#messages = [];
    saveConversation(this.#messages);
    $("transcript").replaceChildren();
    $("chat-error").hidden = true;
  }

  #setGenerating(generating) {
    this.#generating = generating;
    this.#onBusy(generating);
    this.#updateControls();
  }

  #updateControls() {
    $("send").disabled = !this.#ready || this.#generating;
    $("stop").hidden = !this.#generating;
    $("prompt").placeholder = this.#ready ? "Type a message (Enter sends, Shift+Enter for a new line)"
      : "Load a model to start chatting";
  }

  #showError(error) {
    const { message, detail } = explainError(error);
    $("chat-error-message").textContent = `${message} Your message is back in the box.`;
    $("chat-error-detail").textContent = detail;
    $("chat-error").hidden = false;
  }
}

// Tokens can come faster than frames: render the latest text at most once per frame.
function throttled(body) {
  let latest = null;
  return (text) => {
    const scheduled = latest !== null;
    latest = text;
    if (scheduled) return;
    requestAnimationFrame(() => {
      renderMarkdown(body, latest);
      latest = null;
    });
  };
}

function speeds(usage) {
  const extra = usage?.extra;
  if (!extra) return null;
  return { prefill: extra.prefill_tokens_per_s, decode: extra.decode_tokens_per_s, tokens: usage.completion_tokens };
}

function metaText(message) {
  if (message.role !== "assistant") return "";
  const parts = [];
  if (message.stopped) parts.push("Stopped");
  if (message.stats) {
    parts.push(`prefill ${formatRate(message.stats.prefill)}`, `decode ${formatRate(message.stats.decode)}`);
    if (Number.isFinite(message.stats.tokens)) parts.push(`${message.stats.tokens} tokens`);
  }
  return parts.join(" · ");
}

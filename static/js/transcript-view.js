/**
 * The transcript: the branch of the open conversation on screen, each message with its actions
 * (copy, edit, regenerate, continue, delete, and ‹ n/m › between versions). It renders and reports
 * clicks; what an action does is the chat controller's business.
 */

import { formatCost, formatRate, relativeTime } from "./format.js";
import { createReasonedRenderer, renderReasonedReply } from "./reasoning.js";
import { versionsOf, visibleMessages } from "./thread.js";

const $ = (id) => document.getElementById(id);
// Drawn messages kept for reuse, oldest dropped first: a few long conversations' worth.
const DRAWN_LIMIT = 2000;

export class TranscriptView {
  #onAction;
  #items = new Map();
  // Messages drawn before, by id: switching back to a conversation reuses them instead of rendering again.
  #drawn = new Map();
  #modelName;

  /** onAction(action, messageId, extra) for the buttons; modelName(id) names the model that answered. */
  constructor({ onAction, modelName }) {
    this.#onAction = onAction;
    this.#modelName = modelName;
    $("transcript").addEventListener("click", (event) => this.#clicked(event));
    $("transcript").addEventListener("keydown", (event) => this.#editKeys(event));
  }

  /**
   * Draw a conversation's visible branch (null: the empty welcome state). Messages already on screen
   * and unchanged keep their elements, so the log (aria-live) announces only what is new or finished.
   */
  render(conversation) {
    const log = $("transcript");
    const messages = conversation ? visibleMessages(conversation) : [];
    const previous = this.#items;
    this.#items = new Map();
    const items = messages.map((message) => {
      const signature = signatureOf(conversation, message);
      const kept = previous.get(message.id) ?? this.#drawn.get(message.id);
      if (kept && kept.signature === signature) {
        this.#items.set(message.id, kept);
        return kept.item;
      }
      // A reply that just finished streaming keeps its element: only its last block is drawn again.
      if (kept?.renderer && !message.pending) return this.#finishStreamed(kept, conversation, message, signature);
      return this.#item(conversation, message, signature);
    });
    this.#remember();
    const current = [...log.children];
    let same = 0;
    while (same < items.length && current[same] === items[same]) same += 1;
    // Another conversation drawn whole is not news to announce: the log is quiet while it changes.
    const quiet = same === 0 && current.length > 0;
    if (quiet) log.setAttribute("aria-live", "off");
    for (const stale of current.slice(same)) stale.remove();
    log.append(...items.slice(same));
    if (quiet) requestAnimationFrame(() => log.setAttribute("aria-live", "polite"));
    $("empty-chat").hidden = messages.length > 0;
    log.lastElementChild?.scrollIntoView({ block: "end" });
  }

  /** Show a streaming reply's text so far (the renderer redraws only what changed, once a frame). */
  streamInto(messageId, text) {
    const view = this.#items.get(messageId);
    if (!view) return;
    view.renderer ??= createReasonedRenderer(view.body);
    view.renderer.update(text);
    if (!view.frame) {
      view.frame = requestAnimationFrame(() => {
        view.frame = 0;
        view.item.scrollIntoView({ block: "end" });
      });
    }
  }

  /** The DOM of a message on screen, or null (for tests and focus). */
  itemOf(messageId) {
    return this.#items.get(messageId)?.item ?? null;
  }

  #item(conversation, message, signature) {
    const item = $("message-template").content.firstElementChild.cloneNode(true);
    item.dataset.role = message.role;
    item.dataset.id = message.id;
    const body = item.querySelector(".message-body");
    const meta = item.querySelector(".message-meta");
    item.querySelector(".message-author").textContent = message.role === "user" ? "You"
      : this.#modelName(message.model) ?? "Assistant";
    const time = item.querySelector(".message-time");
    time.dateTime = new Date(message.time).toISOString();
    time.textContent = relativeTime(message.time);
    time.title = new Date(message.time).toLocaleString();
    if (message.role === "assistant") renderReasonedReply(body, message.content);
    else {
      body.textContent = message.content;
      body.append(...(message.images ?? []).map(attachedImage));
    }
    if (message.pending) {
      item.setAttribute("aria-busy", "true");
      item.classList.add("pending");
    } else {
      meta.textContent = metaText(message);
    }
    item.querySelector(".message-actions").replaceChildren(...this.#actions(conversation, message));
    this.#items.set(message.id, { item, body, meta, signature, renderer: null, frame: 0 });
    return item;
  }

  #remember() {
    for (const [id, view] of this.#items) {
      this.#drawn.delete(id);
      this.#drawn.set(id, view);
    }
    for (const id of this.#drawn.keys()) {
      if (this.#drawn.size <= DRAWN_LIMIT) break;
      this.#drawn.delete(id);
    }
  }

  #finishStreamed(view, conversation, message, signature) {
    view.renderer.finish(message.content);
    view.renderer = null;
    view.item.setAttribute("aria-busy", "false");
    view.item.classList.remove("pending");
    view.meta.textContent = metaText(message);
    view.item.querySelector(".message-author").textContent = this.#modelName(message.model) ?? "Assistant";
    view.item.querySelector(".message-actions").replaceChildren(...this.#actions(conversation, message));
    view.signature = signature;
    this.#items.set(message.id, view);
    return view.item;
  }

  #actions(conversation, message) {
    const buttons = [];
    const versions = versionsOf(conversation, message);
    if (versions.length > 1) buttons.push(versionSwitch(versions, message));
    if (message.pending) return buttons;
    buttons.push(button("copy", "Copy", `Copy this message as markdown`));
    if (message.role === "user") buttons.push(button("edit", "Edit", "Edit this message and send it again"));
    if (message.role === "assistant") {
      buttons.push(button("regenerate", "Regenerate", "Write this reply again (this one is kept as a version)"));
      if (message.finish === "length") buttons.push(button("continue", "Continue", "Continue this reply"));
    }
    buttons.push(button("delete", "Delete", "Delete this message"));
    return buttons;
  }

  #clicked(event) {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const item = target.closest(".message");
    const id = item.dataset.id;
    const action = target.dataset.action;
    if (action === "edit") this.#startEdit(item);
    else if (action === "edit-cancel") this.#endEdit(item);
    else if (action === "edit-send") this.#onAction("edit", id, item.querySelector(".edit-box textarea").value);
    else if (action === "version") this.#onAction("version", id, target.dataset.target);
    else this.#onAction(action, id);
  }

  #startEdit(item) {
    const body = item.querySelector(".message-body");
    const box = $("edit-template").content.firstElementChild.cloneNode(true);
    const field = box.querySelector("textarea");
    field.value = body.textContent;
    body.hidden = true;
    body.after(box);
    item.querySelector(".message-actions").hidden = true;
    field.focus();
  }

  #endEdit(item) {
    item.querySelector(".edit-box")?.remove();
    item.querySelector(".message-body").hidden = false;
    item.querySelector(".message-actions").hidden = false;
    item.querySelector("button[data-action=edit]")?.focus();
  }

  #editKeys(event) {
    const box = event.target.closest(".edit-box");
    if (!box) return;
    if (event.key === "Escape") {
      event.stopPropagation();
      this.#endEdit(box.closest(".message"));
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      box.querySelector("button[data-action=edit-send]").click();
    }
  }
}

// What a message's element shows: when this changes, the element is drawn again.
function signatureOf(conversation, message) {
  const versions = versionsOf(conversation, message).map((version) => version.id).join(",");
  return JSON.stringify([message.content, message.finish, message.pending, message.model, versions]);
}

function button(action, label, title) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "link-button";
  element.dataset.action = action;
  element.textContent = label;
  element.title = title;
  element.setAttribute("aria-label", title);
  return element;
}

function versionSwitch(versions, message) {
  const index = versions.findIndex((version) => version.id === message.id);
  const box = document.createElement("span");
  box.className = "versions";
  const previous = button("version", "‹", "Show the previous version");
  const next = button("version", "›", "Show the next version");
  previous.dataset.target = versions[index - 1]?.id ?? "";
  next.dataset.target = versions[index + 1]?.id ?? "";
  previous.disabled = index === 0;
  next.disabled = index === versions.length - 1;
  const count = document.createElement("span");
  count.className = "version-count";
  count.textContent = `${index + 1}/${versions.length}`;
  count.setAttribute("aria-label", `version ${index + 1} of ${versions.length}`);
  box.append(previous, count, next);
  return box;
}

function attachedImage(url, index) {
  const image = document.createElement("img");
  image.className = "attached-image";
  image.src = url;
  image.alt = `Attached image ${index + 1}`;
  return image;
}

/** The line under a reply: stopped or cut off, speeds, tokens. */
export function metaText(message) {
  const parts = [];
  if (message.role === "assistant") {
    if (message.stopped) parts.push("Stopped");
    else if (message.finish === "length") parts.push("Cut off at the token limit");
    if (message.stats) {
      const estimated = message.stats.estimated ? " (estimated)" : "";
      parts.push(`prefill ${formatRate(message.stats.prefill)}`, `decode ${formatRate(message.stats.decode)}${estimated}`);
      if (Number.isFinite(message.stats.tokens)) parts.push(`${message.stats.tokens} tokens`);
    }
    if (Number.isFinite(message.cost)) parts.push(formatCost(message.cost));
  }
  return parts.join(" · ");
}

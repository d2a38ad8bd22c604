/**
 * The conversations sidebar: New chat, search over titles and message text, and the list grouped
 * Pinned / Today / Previous 7 days / Older, each with rename, pin and delete. Under 768 px it is a
 * drawer. It reads the conversation store and reports what the person chose.
 */

import { confirmAction } from "./dialog.js";
import { relativeTime } from "./format.js";

const $ = (id) => document.getElementById(id);
const DAY = 24 * 60 * 60 * 1000;
const DRAWER = window.matchMedia("(max-width: 767.98px)");

export class Sidebar {
  #store;
  #onOpen;
  #modelName;
  #currentId = null;

  /** onOpen(id) opens a conversation; modelName(id) names a model for the list. */
  constructor({ store, onOpen, onNew, modelName }) {
    this.#store = store;
    this.#onOpen = onOpen;
    this.#modelName = modelName;
    store.onChange(() => this.render());
    $("new-chat").addEventListener("click", () => {
      this.closeDrawer();
      onNew();
    });
    $("chat-search").addEventListener("input", () => this.render());
    $("conversation-list").addEventListener("click", (event) => this.#clicked(event));
    $("sidebar-toggle").addEventListener("click", () => this.#setDrawer(!document.body.classList.contains("drawer-open")));
    $("drawer-backdrop").addEventListener("click", () => this.closeDrawer());
    $("sidebar").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && DRAWER.matches) this.closeDrawer();
    });
  }

  /** Mark which conversation is open (the list is not drawn again for that). */
  setCurrent(id) {
    this.#currentId = id;
    for (const item of $("conversation-list").querySelectorAll(".conversation-item")) {
      const current = item.dataset.id === id;
      item.classList.toggle("current", current);
      const open = item.querySelector("[data-action=open]");
      if (current) open.setAttribute("aria-current", "true");
      else open.removeAttribute("aria-current");
    }
  }

  render() {
    const query = $("chat-search").value.trim().toLowerCase();
    const conversations = this.#store.list().filter((c) => !query || matches(c, query));
    const groups = groupByAge(conversations, Date.now());
    const list = $("conversation-list");
    list.replaceChildren(...groups.map(([label, items]) => this.#group(label, items)));
    $("conversation-empty").hidden = conversations.length > 0;
    $("conversation-empty").textContent = query ? "No conversation matches." : "No conversations yet.";
  }

  closeDrawer() {
    this.#setDrawer(false);
  }

  #setDrawer(open) {
    document.body.classList.toggle("drawer-open", open);
    $("sidebar-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("chat-search").focus();
  }

  #group(label, conversations) {
    const section = document.createElement("li");
    section.className = "conversation-group";
    const heading = document.createElement("h3");
    heading.textContent = label;
    const items = document.createElement("ul");
    items.append(...conversations.map((conversation) => this.#item(conversation)));
    section.append(heading, items);
    return section;
  }

  #item(conversation) {
    const item = $("conversation-template").content.firstElementChild.cloneNode(true);
    item.dataset.id = conversation.id;
    const open = item.querySelector("[data-action=open]");
    if (conversation.id === this.#currentId) {
      open.setAttribute("aria-current", "true");
      item.classList.add("current");
    }
    item.querySelector(".conversation-title").textContent = conversation.title;
    const model = conversation.model ? this.#modelName(conversation.model) ?? conversation.model : "";
    item.querySelector(".conversation-meta").textContent = [model, relativeTime(conversation.updated)]
      .filter(Boolean).join(" · ");
    const pin = item.querySelector("[data-action=pin]");
    pin.textContent = conversation.pinned ? "Unpin" : "Pin";
    pin.setAttribute("aria-pressed", String(conversation.pinned));
    for (const control of item.querySelectorAll("[data-action]:not([data-action=open])")) {
      control.setAttribute("aria-label", `${control.textContent} “${conversation.title}”`);
    }
    return item;
  }

  async #clicked(event) {
    const control = event.target.closest("[data-action]");
    if (!control) return;
    const conversation = this.#store.get(control.closest("[data-id]").dataset.id);
    if (!conversation) return;
    const action = control.dataset.action;
    if (action === "open") {
      this.closeDrawer();
      this.#onOpen(conversation.id);
    } else if (action === "pin") {
      conversation.pinned = !conversation.pinned;
      await this.#store.save(conversation, { touch: false });
    } else if (action === "rename") {
      const title = await askForTitle(conversation.title);
      if (title === null) return;
      Object.assign(conversation, { title, titleSource: "user" });
      await this.#store.save(conversation, { touch: false });
    } else if (action === "delete") {
      const sure = await confirmAction(`Delete “${conversation.title}” and all its messages? This cannot be undone.`, "Delete");
      if (sure) {
        await this.#store.delete(conversation.id);
        if (conversation.id === this.#currentId) this.#onOpen(null);
      }
    }
  }
}

function matches(conversation, query) {
  return conversation.title.toLowerCase().includes(query)
    || conversation.messages.some((message) => message.content.toLowerCase().includes(query));
}

/** [[label, conversations], ...]: pinned first, then by age of the last change. */
export function groupByAge(conversations, now) {
  const startOfToday = new Date(now).setHours(0, 0, 0, 0);
  const groups = [["Pinned", []], ["Today", []], ["Previous 7 days", []], ["Older", []]];
  for (const conversation of conversations) {
    let index = 3;
    if (conversation.pinned) index = 0;
    else if (conversation.updated >= startOfToday) index = 1;
    else if (conversation.updated >= startOfToday - 7 * DAY) index = 2;
    groups[index][1].push(conversation);
  }
  return groups.filter(([, items]) => items.length);
}

/** Ask for a new title in the page's rename dialog; null when cancelled or left empty. */
function askForTitle(current) {
  const box = $("rename-dialog");
  const field = $("rename-title");
  field.value = current;
  box.returnValue = "";
  box.showModal();
  field.select();
  return new Promise((resolve) => {
    box.addEventListener("close", () => {
      const title = field.value.trim();
      resolve(box.returnValue === "save" && title ? title.slice(0, 200) : null);
    }, { once: true });
  });
}

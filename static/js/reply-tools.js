/**
 * The controls a rendered reply gets around its markdown: each code block a bar with its language and a
 * Copy button, each table a frame that scrolls sideways (and takes keyboard focus, so it can be scrolled).
 */

import { languageName } from "./code-highlight.js";

// How long "Copied" stays beside the button.
const STATUS_MS = 2000;
const statusTimers = new WeakMap();

/** Add the tools to every code block and table under root (an element or fragment); safe to repeat. */
export function addReplyTools(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector(":scope > code");
    if (code && !pre.parentElement?.classList.contains("code-block")) frame(pre, "code-block", codeBar(code));
  }
  for (const table of root.querySelectorAll("table")) {
    if (!table.parentElement?.classList.contains("table-scroll")) scrollFrame(table);
  }
}

// Wraps node in a new <div class=className>, with `before` ahead of it.
function frame(node, className, ...before) {
  const wrapper = element("div", className);
  node.replaceWith(wrapper);
  wrapper.append(...before, node);
  return wrapper;
}

function codeBar(code) {
  const language = languageName(code);
  const bar = element("div", "code-tools");
  const label = element("span", "code-language", language || "text");
  const button = element("button", "code-copy", "Copy");
  button.type = "button";
  button.setAttribute("aria-label", language ? `Copy ${language} code` : "Copy code");
  // A polite live region: "Copied" is announced without moving focus.
  const status = element("span", "code-status");
  status.setAttribute("role", "status");
  button.addEventListener("click", () => copyCode(code, status));
  bar.append(label, status, button);
  return bar;
}

function scrollFrame(table) {
  const wrapper = frame(table, "table-scroll");
  wrapper.tabIndex = 0;
  wrapper.setAttribute("role", "region");
  wrapper.setAttribute("aria-label", "Table");
}

async function copyCode(code, status) {
  // Without the closing newline: pasted into a terminal, it would run the last line at once.
  const text = code.textContent.replace(/\n$/, "");
  const copied = (await writeClipboard(text)) || copyBySelection(code);
  status.textContent = copied ? "Copied" : "Selected: press Ctrl+C to copy";
  clearTimeout(statusTimers.get(status));
  statusTimers.set(status, setTimeout(() => { status.textContent = ""; }, STATUS_MS));
}

// The Clipboard API needs a secure context and permission; either may be missing.
async function writeClipboard(text) {
  if (!navigator.clipboard?.writeText) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

// The older way, for plain-http pages: select the code and ask the browser to copy the selection.
// If even that is refused, the code stays selected so the person can copy it themselves.
function copyBySelection(code) {
  const selection = window.getSelection();
  selection.selectAllChildren(code);
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  if (copied) selection.removeAllRanges();
  return copied;
}

function element(tag, className, text = "") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

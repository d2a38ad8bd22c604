/**
 * Export and import of conversations and presets: JSON that imports again losslessly, and Markdown
 * to read. An import checks every conversation on its own and says which were skipped and why.
 */

import { readConversation, toRecord } from "./conversations.js";
import { readPreset } from "./presets.js";
import { pathTo, visibleMessages } from "./thread.js";

export const ARCHIVE_FORMAT = "hearth-archive";
export const ARCHIVE_VERSION = 1;

/** The JSON archive of these conversations and presets. */
export function archiveJson(conversations, presets = []) {
  return JSON.stringify({
    format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, exported: new Date().toISOString(),
    conversations: conversations.map(toRecord), presets,
  }, null, 2);
}

/**
 * Read an archive's text. Returns {conversations, presets, skipped: [{what, problem}], problem}:
 * problem is set (and nothing else) when the file as a whole is not an archive.
 */
export function readArchive(text) {
  const empty = { conversations: [], presets: [], skipped: [] };
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ...empty, problem: "This file is not JSON: export conversations from Hearth to get one it can import." };
  }
  if (doc?.format !== ARCHIVE_FORMAT || !Array.isArray(doc.conversations)) {
    return { ...empty, problem: "This JSON file is not a Hearth conversations export (no \"format\": "
      + `"${ARCHIVE_FORMAT}" with a list of conversations).` };
  }
  if (doc.version !== ARCHIVE_VERSION) {
    return { ...empty, problem: `This export has version ${doc.version}; this Hearth reads version ${ARCHIVE_VERSION}.` };
  }
  const result = { ...empty, problem: null };
  doc.conversations.forEach((value, index) => {
    const { conversation, problem } = readConversation(value);
    if (conversation) result.conversations.push(conversation);
    else result.skipped.push({ what: describe(value, index), problem });
  });
  (Array.isArray(doc.presets) ? doc.presets : []).forEach((value, index) => {
    const { preset, problem } = readPreset(value);
    if (preset) result.presets.push(preset);
    else result.skipped.push({ what: `preset ${index + 1}`, problem });
  });
  return result;
}

function describe(value, index) {
  const title = typeof value?.title === "string" && value.title ? ` “${value.title.slice(0, 60)}”` : "";
  return `conversation ${index + 1}${title}`;
}

/** Markdown for people: each conversation's branch on screen, then its other versions. */
export function archiveMarkdown(conversations, modelName = (id) => id) {
  return conversations.map((conversation) => conversationMarkdown(conversation, modelName)).join("\n\n---\n\n");
}

function conversationMarkdown(conversation, modelName) {
  const lines = [`# ${conversation.title}`, "", `_${new Date(conversation.created).toLocaleString()}_`, ""];
  if (conversation.systemPrompt) lines.push("**System prompt**", "", conversation.systemPrompt, "");
  const shown = visibleMessages(conversation);
  for (const message of shown) lines.push(...messageMarkdown(message, modelName));
  const onScreen = new Set(shown.map((message) => message.id));
  const others = conversation.messages.filter((message) => !onScreen.has(message.id) && !message.pending);
  if (others.length) {
    lines.push("## Other versions", "");
    for (const message of others) {
      const depth = pathTo(conversation, message.id).length;
      lines.push(...messageMarkdown(message, modelName, `, message ${depth} of its branch`));
    }
  }
  return lines.join("\n").trimEnd();
}

function messageMarkdown(message, modelName, where = "") {
  const who = message.role === "user" ? "You" : `Assistant${message.model ? ` (${modelName(message.model) ?? message.model})` : ""}`;
  const stopped = message.stopped ? " — stopped" : "";
  return [`### ${who}${where}${stopped}`, "", message.content, ""];
}

/**
 * The conversation: one OpenAI-style messages array, kept in localStorage so a reload keeps it.
 * Assistant messages may carry `stats` (speeds) and `stopped`; the engine gets {role, content} only.
 */

export const CONVERSATION_KEY = "hearth.conversation";
const ROLES = new Set(["user", "assistant"]);

/** The saved messages; an unreadable value starts a new conversation rather than break the page. */
export function loadConversation(storage = localStorage) {
  try {
    const doc = JSON.parse(storage.getItem(CONVERSATION_KEY) ?? "null");
    const messages = Array.isArray(doc?.messages) ? doc.messages : [];
    return messages.filter((m) => ROLES.has(m?.role) && typeof m.content === "string");
  } catch {
    return [];
  }
}

/** Save the messages; false when the browser refused (the chat goes on, unsaved). */
export function saveConversation(messages, storage = localStorage) {
  try {
    storage.setItem(CONVERSATION_KEY, JSON.stringify({ version: 1, messages }));
    return true;
  } catch {
    return false;
  }
}

/** What the engine is given: the roles and texts, nothing else. */
export function engineMessages(messages) {
  return messages.map(({ role, content }) => ({ role, content }));
}

/**
 * A conversation's messages as a tree: each message names its parent, so a regenerated reply or an
 * edited question is a sibling of the one it replaces (a version) and nothing is ever overwritten.
 * `leaf` is the last message of the branch on screen; the branch is read from it back to the root.
 * Pure functions over plain records: no storage, no DOM.
 */

/** A new id, unique enough to merge exports from several browsers (randomUUID needs a secure page). */
export function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** The branch on screen, root first. */
export function visibleMessages(conversation) {
  return pathTo(conversation, conversation.leaf);
}

/** The messages from the root down to messageId. */
export function pathTo(conversation, messageId) {
  const byId = indexById(conversation);
  const path = [];
  for (let message = byId.get(messageId); message; message = byId.get(message.parent)) path.push(message);
  return path.reverse();
}

/** The versions of a message: itself and its siblings of the same role, oldest first. */
export function versionsOf(conversation, message) {
  return conversation.messages.filter((other) => other.parent === message.parent && other.role === message.role);
}

/** Add a message (this object, given its parent) after the one on screen last; it ends the branch now. */
export function appendMessage(conversation, message) {
  message.parent = conversation.leaf ?? null;
  conversation.messages.push(message);
  conversation.leaf = message.id;
  return message.id;
}

/** Add a new version of `original` (this object, given the same parent), shown from now on instead of it. */
export function addVersion(conversation, original, message) {
  message.parent = original.parent;
  conversation.messages.push(message);
  conversation.leaf = message.id;
  return message.id;
}

/** Show another version: the branch continues below it through the newest child at every step. */
export function showVersion(conversation, messageId) {
  conversation.leaf = newestLeafBelow(conversation, messageId);
}

/**
 * Delete one message. Its replies move up to its parent so the rest of the branch stays; a version
 * with siblings goes with what hangs below it (that is what the version was).
 */
export function deleteMessage(conversation, messageId) {
  const message = indexById(conversation).get(messageId);
  if (!message) return;
  const siblings = versionsOf(conversation, message).filter((other) => other.id !== messageId);
  const onScreen = visibleMessages(conversation).some((other) => other.id === messageId);
  if (siblings.length) {
    const doomed = new Set([messageId, ...descendants(conversation, messageId)]);
    conversation.messages = conversation.messages.filter((other) => !doomed.has(other.id));
    if (onScreen) showVersion(conversation, siblings.at(-1).id);
    return;
  }
  for (const child of conversation.messages) if (child.parent === messageId) child.parent = message.parent;
  conversation.messages = conversation.messages.filter((other) => other.id !== messageId);
  if (conversation.leaf === messageId) conversation.leaf = message.parent;
}

function newestLeafBelow(conversation, messageId) {
  let leaf = messageId;
  for (;;) {
    const children = conversation.messages.filter((other) => other.parent === leaf);
    if (!children.length) return leaf;
    leaf = children.reduce((a, b) => ((b.time ?? 0) >= (a.time ?? 0) ? b : a)).id;
  }
}

function descendants(conversation, messageId) {
  const found = [];
  const queue = [messageId];
  while (queue.length) {
    const parent = queue.shift();
    for (const child of conversation.messages) {
      if (child.parent === parent) {
        found.push(child.id);
        queue.push(child.id);
      }
    }
  }
  return found;
}

function indexById(conversation) {
  return new Map(conversation.messages.map((message) => [message.id, message]));
}

/** A reply on screen: its sanitised markdown, code highlighted, with the reply tools around it. */

import { renderMarkdown } from "./markdown.js";
import { addReplyTools } from "./reply-tools.js";

/** Render a finished reply into target: its sanitised markdown, code highlighted, with the reply tools. */
export function renderReply(target, text) {
  renderMarkdown(target, text);
  addReplyTools(target);
}

/**
 * A reply's reasoning: the <think>…</think> a reasoning model writes before its answer (in-browser
 * models write it in the text; remote runtimes put a provider's reasoning_content / thinking there).
 * On screen it is a collapsed block of plain text above the rendered answer; it is never sent back
 * to a model as history, and never part of a title.
 */

import { createReplyRenderer, renderReply } from "./reply-renderer.js";

const LEADING_THINK = /^\s*<think>([\s\S]*?)(<\/think>\s*|$)/;

/** {reasoning (text or null), answer, thinking (the block is still open)} of a reply's text. */
export function splitReasoning(text) {
  const match = LEADING_THINK.exec(text);
  if (!match) return { reasoning: null, answer: text, thinking: false };
  return { reasoning: match[1], answer: text.slice(match[0].length), thinking: !match[2] };
}

/** The text without its reasoning block (what goes back to a model as history). */
export function withoutReasoning(text) {
  return splitReasoning(text).answer;
}

/** Render a finished reply: its reasoning (collapsed) and its answer. */
export function renderReasonedReply(body, text) {
  const { reasoningBox, answer } = parts(body);
  showReasoning(reasoningBox, splitReasoning(text));
  renderReply(answer, splitReasoning(text).answer);
}

/** A streaming renderer (update / finish, as createReplyRenderer) that keeps the reasoning apart. */
export function createReasonedRenderer(body) {
  const { reasoningBox, answer } = parts(body);
  const renderer = createReplyRenderer(answer);
  return {
    update(text) {
      const split = splitReasoning(text);
      showReasoning(reasoningBox, split);
      renderer.update(split.answer);
    },
    finish(text) {
      const split = splitReasoning(text);
      showReasoning(reasoningBox, split);
      renderer.finish(split.answer);
    },
  };
}

function parts(body) {
  const reasoningBox = document.createElement("details");
  reasoningBox.className = "reasoning";
  reasoningBox.hidden = true;
  reasoningBox.append(document.createElement("summary"), document.createElement("div"));
  reasoningBox.lastElementChild.className = "reasoning-text";
  const answer = document.createElement("div");
  answer.className = "answer";
  body.replaceChildren(reasoningBox, answer);
  return { reasoningBox, answer };
}

function showReasoning(box, { reasoning, thinking }) {
  box.hidden = reasoning === null;
  if (reasoning === null) return;
  box.firstElementChild.textContent = thinking ? "Thinking…" : "Reasoning";
  box.lastElementChild.textContent = reasoning.trim();
}

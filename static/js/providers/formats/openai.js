/**
 * OpenAI-compatible endpoints (vLLM, llama.cpp's server, Ollama, LM Studio, LiteLLM, OpenAI itself):
 * the base URL includes the version (…/v1); chat is POST {base}/chat/completions, streamed as SSE
 * `data:` chunks ending with `data: [DONE]` (or not at all), the usage in a last chunk when asked for.
 */

import { textOf } from "./parts.js";

export const openai = {
  type: "openai",
  label: "OpenAI-compatible",
  basePlaceholder: "http://127.0.0.1:8080/v1",
  // A pasted endpoint rather than a base: offered to be trimmed.
  pastedSuffix: /\/chat\/completions\/?$/,
  keyHeaders: (key) => ({ Authorization: `Bearer ${key}` }),
  chatPath: () => "/chat/completions",
  modelsPath: () => "/models",
  chatBody: (model, messages, params) => ({
    model: model.id, messages: messages.map(openaiMessage), stream: true,
    stream_options: { include_usage: true }, ...params,
  }),
  events: chatCompletionEvents,
  models: (json) => (Array.isArray(json?.data) ? json.data : []).map((m) => ({ id: String(m.id) })),
  errorText,
};

/** Events of one chat.completion.chunk (shared with Azure, whose chunks are the same shape). */
export function chatCompletionEvents({ data }) {
  if (data.trim() === "[DONE]") return [{ type: "done" }];
  const chunk = JSON.parse(data);
  if (chunk.error) return [{ type: "error", message: errorText(chunk) }];
  const events = [];
  for (const choice of chunk.choices ?? []) {
    const delta = choice.delta ?? {};
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (reasoning) events.push({ type: "reasoning", text: reasoning });
    if (delta.content) events.push({ type: "text", text: delta.content });
    if (choice.finish_reason) events.push({ type: "finish", reason: finishReason(choice.finish_reason) });
  }
  if (chunk.usage) {
    events.push({ type: "usage", input: chunk.usage.prompt_tokens ?? null, output: chunk.usage.completion_tokens ?? null });
  }
  return events;
}

function finishReason(reason) {
  return reason === "length" ? "length" : reason === "content_filter" ? "filtered" : "stop";
}

/** The message of an OpenAI-style (or FastAPI / Mistral) error body, or null. */
export function errorText(json) {
  const error = json?.error;
  if (typeof error === "string") return error;
  if (error?.message) return String(error.message);
  if (typeof json?.detail === "string") return json.detail;
  if (Array.isArray(json?.detail)) return json.detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
  if (typeof json?.message === "string") return json.message;
  return null;
}

function openaiMessage({ role, content, images = [] }) {
  if (!images.length) return { role, content: textOf(content) };
  return {
    role,
    content: [{ type: "text", text: textOf(content) }, ...images.map((url) => ({ type: "image_url", image_url: { url } }))],
  };
}
